"""SQLUpsertDataset against SQLite files and the real PostgreSQL server."""

import logging
import threading
import time

import numpy as np
import pandas as pd
import pytest
from kedro.io import DatasetError
from sqlalchemy import create_engine, text

from stock_pipeline.contract import BAR_VALUES, FEATURES_BASE_COLUMNS, INDICATOR_BASE_COLUMNS
from stock_pipeline.contract import KEY as CONTRACT_KEY
from stock_pipeline.datasets import SQLUpsertDataset
from stock_pipeline.db import upgrade_database
from stock_pipeline.recipes import Recipe

KEY = list(CONTRACT_KEY)


def make_features(tickers: tuple[str, ...] = ("AAA.NS", "BBB.NS"), days: int = 5) -> pd.DataFrame:
    """A small valid feature frame, one row per (ticker, date), with one extra indicator column."""
    dates = pd.bdate_range("2024-01-01", periods=days)
    frame = pd.DataFrame([(ticker, date) for ticker in tickers for date in dates], columns=KEY)
    close = 100.0 + np.arange(len(frame), dtype=float)
    volume = np.arange(len(frame), dtype="int64") * 1000
    # open, high, low, close, adj_close, volume
    bar = (close - 0.5, close + 1.0, close - 1.0, close, close, volume)
    frame = frame.assign(
        **dict(zip(BAR_VALUES, bar, strict=True)),
        **dict.fromkeys(INDICATOR_BASE_COLUMNS, 55.5),
        ema_20=close,
    )
    frame.loc[0, "daily_return"] = np.nan
    return frame[[*FEATURES_BASE_COLUMNS, "ema_20"]]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh database migrated to head: a SQLite file, or a private PostgreSQL schema."""
    url = (
        f"sqlite:///{tmp_path / 'stock.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    upgrade_database(url)
    return url


def make_dataset(url: str, **kwargs) -> SQLUpsertDataset:
    """The stock_features dataset as the catalog configures it (a configured indicator's column
    added on save)."""
    return SQLUpsertDataset(
        table="stock_features", keys=KEY, url=url, **{"add_columns": True, **kwargs}
    )


def query(url: str, sql: str) -> list[tuple]:
    """Rows of one SQL query, on a connection of its own."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


def execute(url: str, sql: str) -> None:
    """Run one statement and commit."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(sql))
    finally:
        engine.dispose()


def test_rerun_adds_and_changes_no_row(db_url, tmp_path):
    report = tmp_path / "report.json"
    dataset = make_dataset(db_url, report_filepath=str(report))
    features = make_features()
    dataset.save(features)
    first = dataset.load()
    time.sleep(0.01)
    dataset.save(features)
    second = dataset.load()

    assert len(second) == len(features)
    pd.testing.assert_frame_equal(first, second)
    assert pd.read_json(report, typ="series")[["inserted", "updated", "unchanged"]].tolist() == [
        0,
        0,
        len(features),
    ]


def test_load_returns_what_was_saved(db_url):
    dataset = make_dataset(db_url)
    features = make_features()
    dataset.save(features)
    loaded = dataset.load()

    expected = features
    pd.testing.assert_frame_equal(
        loaded[expected.columns], expected, check_dtype=False, check_datetimelike_compat=True
    )
    assert loaded["daily_return"].isna().sum() == 1
    assert str(loaded["created_at"].dt.tz) == "UTC"


def test_load_filters_rows_and_columns(db_url):
    make_dataset(db_url).save(make_features())
    dataset = make_dataset(
        db_url, load_args={"columns": ["ticker", "date", "close"], "filters": {"ticker": "BBB.NS"}}
    )
    loaded = dataset.load()

    assert list(loaded.columns) == ["ticker", "date", "close"]
    assert set(loaded["ticker"]) == {"BBB.NS"}
    assert len(loaded) == 5


def test_a_column_the_table_lacks_is_an_error_unless_columns_are_added(db_url, caplog):
    features = make_features().assign(obv=1.0)
    with pytest.raises(DatasetError, match=r"stock_features has no columns \['ema_20', 'obv'\]"):
        make_dataset(db_url, add_columns=False).save(features)
    with caplog.at_level(logging.INFO, logger="stock_pipeline.datasets.sql_upsert"):
        make_dataset(db_url).save(features)
    assert "10 inserted, 0 updated, 0 unchanged" in caplog.text
    assert make_dataset(db_url).load()["obv"].eq(1.0).all()


def with_recipe(frame: pd.DataFrame, *indicators: str) -> pd.DataFrame:
    """The frame as persistence gives it: attrs naming the SQL recipe of its indicators."""
    settings = {"indicators": {name: {"talib": name} for name in indicators}}
    frame.attrs["recipe"] = Recipe("sql", settings, 1).to_json()
    return frame


def test_a_new_recipe_empties_dropped_columns_and_deletes_rows_gone_from_the_data(db_url, caplog):
    make_dataset(db_url).save(with_recipe(make_features(days=5), "ema_20"))
    again = make_dataset(db_url)
    again.save(with_recipe(make_features(days=5), "ema_20"))  # the same recipe: nothing removed
    assert len(again.load()) == 10 and again.load()["ema_20"].notna().all()

    fewer = make_features(days=4).drop(columns="ema_20").assign(obv=7.0)
    with caplog.at_level(logging.INFO, logger="stock_pipeline.datasets.sql_upsert"):
        again.save(with_recipe(fewer, "obv"))
    stored = again.load()
    assert len(stored) == 8  # the fifth session is no longer in the data
    assert stored["ema_20"].isna().all() and stored["obv"].eq(7.0).all()
    assert "columns no longer configured emptied: ['ema_20']" in caplog.text
    assert "2 rows no longer in the data deleted" in caplog.text
    assert again.saved_recipe.settings["indicators"] == {"obv": {"talib": "obv"}}


def test_updated_at_moves_only_for_changed_rows(db_url):
    dataset = make_dataset(db_url)
    features = make_features()
    dataset.save(features)
    before = dataset.load().set_index(KEY)
    time.sleep(0.01)
    features.loc[3, "close"] += 0.25
    dataset.save(features)
    after = dataset.load().set_index(KEY)

    moved = after["updated_at"] > before["updated_at"]
    changed_key = (features.loc[3, "ticker"], features.loc[3, "date"])
    assert moved[moved].index.tolist() == [changed_key]
    assert (after["created_at"] == before["created_at"]).all()
    assert after.loc[changed_key, "close"] == features.loc[3, "close"]


def test_row_changed_by_hand_is_restored(db_url, tmp_path):
    report = tmp_path / "report.json"
    dataset = make_dataset(db_url, report_filepath=str(report))
    features = make_features()
    dataset.save(features)
    execute(
        db_url,
        "UPDATE stock_features SET close = close + 0.5, rsi_14 = NULL WHERE ticker = 'AAA.NS'",
    )
    dataset.save(features)

    pd.testing.assert_series_equal(
        dataset.load()["close"], features["close"], check_names=False, check_index=False
    )
    assert pd.read_json(report, typ="series")["updated"] == 5


def test_rejected_row_names_key_and_constraint_and_writes_nothing(db_url):
    dataset = make_dataset(db_url)
    dataset.save(make_features(days=2))
    features = make_features(days=3)
    features.loc[4, "high"] = features.loc[4, "low"] - 1

    with pytest.raises(DatasetError, match="valid_ohlc") as error:
        dataset.save(features)

    assert "ticker=BBB.NS, date=2024-01-02" in str(error.value)
    assert len(dataset.load()) == 4


def test_rejected_null_names_key_and_column(db_url):
    dataset = make_dataset(db_url)
    features = make_features(days=3)
    features.loc[4, "close"] = np.nan

    with pytest.raises(DatasetError, match="close") as error:
        dataset.save(features)

    assert "ticker=BBB.NS, date=2024-01-02" in str(error.value)


def test_rejected_row_is_found_when_the_frame_lacks_columns(db_url):
    dataset = make_dataset(db_url)
    dataset.save(make_features(days=3))
    features = make_features(days=3).drop(columns=["sma_50", "rsi_14"])
    features.loc[1, "high"] = features.loc[1, "low"] - 1

    with pytest.raises(DatasetError, match="valid_ohlc") as error:
        dataset.save(features)

    assert "ticker=AAA.NS, date=2024-01-02" in str(error.value)


def test_missing_table_asks_for_the_migration(tmp_path):
    dataset = make_dataset(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(DatasetError, match="run `make db-upgrade`"):
        dataset.save(make_features())


def test_repeated_or_missing_keys_fail_before_the_database(tmp_path):
    dataset = make_dataset(f"sqlite:///{tmp_path / 'never.db'}")
    features = make_features()
    with pytest.raises(DatasetError, match="repeated key"):
        dataset.save(pd.concat([features, features.head(1)]))
    with pytest.raises(DatasetError, match="lack key columns"):
        dataset.save(features.drop(columns="date"))
    assert not (tmp_path / "never.db").exists()


def test_concurrent_saves_leave_no_duplicate_and_no_error(db_url):
    features = make_features(tickers=tuple(f"T{i:02d}.NS" for i in range(20)), days=50)
    changed = features.assign(close=features["close"] + 0.5, high=features["high"] + 0.5)
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def save(frame: pd.DataFrame) -> None:
        dataset = make_dataset(db_url)
        barrier.wait()
        try:
            dataset.save(frame)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=save, args=(frame,)) for frame in (features, changed)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert query(
        db_url, "SELECT count(*), count(DISTINCT ticker || '|' || date) FROM stock_features"
    )[0] == (len(features), len(features))


def test_generic_key_upserts_model_health_alerts(db_url):
    alerts = pd.DataFrame(
        {
            "ticker": ["AAA.NS", "AAA.NS"],
            "feature": ["rsi_14", "macd"],
            "as_of": pd.to_datetime(["2024-03-01", "2024-03-01"]),
            "p_value": [0.01, 0.02],
            "statistic": [0.5, 0.4],
            "alpha": 0.05,
            "baseline_sample_size": 60,
            "current_sample_size": 7,
            "method": "ks",
        }
    )
    dataset = SQLUpsertDataset(
        table="model_health_alerts", keys=["ticker", "feature", "as_of"], url=db_url
    )
    dataset.save(alerts)
    dataset.save(alerts.assign(p_value=[0.01, 0.03]))

    stored = dataset.load()
    assert len(stored) == 2
    assert stored.set_index("feature")["p_value"].to_dict() == {"macd": 0.03, "rsi_14": 0.01}


def test_unreachable_database_fails_clearly_without_the_password(caplog):
    dataset = make_dataset(
        "postgresql+psycopg2://analyst:s3cr3t-pw@127.0.0.1:1/warehouse",
        connect_attempts=2,
        retry_wait=0.01,
    )
    with caplog.at_level(logging.WARNING), pytest.raises(DatasetError) as error:
        dataset.save(make_features())

    message = str(error.value)
    assert "Cannot reach database 'warehouse' on host 127.0.0.1:1" in message
    assert "after 2 attempts" in message
    assert "attempt 1 of 2" in caplog.text
    assert "s3cr3t-pw" not in message + caplog.text + repr(dataset)


KINDS_TABLE = """
    CREATE TABLE kinds (
        name varchar(12), day date, note text, x double precision, n bigint, i integer,
        s smallint, flag boolean, PRIMARY KEY (name, day)
    )"""


def make_kinds(rows: int = 12) -> pd.DataFrame:
    """Rows covering every column type: nulls, unicode, empty text, float extremes."""
    rng = np.random.default_rng(3)
    names = ["A.NS", "BB.NS", "Ñ€ü.NS", "LONGEST12.NS"]
    frame = pd.DataFrame(
        {
            "name": [names[i % len(names)] for i in range(rows)],
            "day": pd.date_range("1999-12-30", periods=rows, freq="D"),
            "note": [["", None, "naïve ✓", "x" * 300][i % 4] for i in range(rows)],
            "x": rng.normal(size=rows),
            "n": np.arange(rows, dtype="int64") * 2**40,
            "i": np.arange(rows, dtype="int64") - 5,
            "s": np.arange(rows, dtype="int16"),
            "flag": pd.array([[True, False, None][i % 3] for i in range(rows)], dtype="boolean"),
        }
    )
    frame.loc[1, "x"] = np.nan
    frame.loc[2, "x"] = np.inf
    frame.loc[3, "x"] = 1e-308
    frame.loc[4, "x"] = 0.1 + 0.2
    return frame


def test_copy_round_trips_every_column_type(pg_url):
    execute(pg_url, KINDS_TABLE)
    dataset = SQLUpsertDataset(table="kinds", keys=["name", "day"], url=pg_url)
    kinds = make_kinds()
    dataset.save(kinds)
    loaded = dataset.load()

    expected = kinds.sort_values(["name", "day"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        loaded.astype(object).where(loaded.notna(), None),
        expected.astype(object).where(expected.notna(), None),
        check_dtype=False,
    )


def test_rows_too_long_for_the_column_fail_the_save(pg_url):
    execute(pg_url, KINDS_TABLE)
    dataset = SQLUpsertDataset(table="kinds", keys=["name", "day"], url=pg_url)
    with pytest.raises(Exception, match="too long"):
        dataset.save(make_kinds().assign(name="THIRTEEN.CHRS"))
    assert query(pg_url, "SELECT count(*) FROM kinds") == [(0,)]
