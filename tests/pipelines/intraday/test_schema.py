"""Migration 0003 on SQLite and PostgreSQL: stock_features_intraday, and upserts of intraday rows."""

import pandas as pd
import pytest
from kedro.io import DatasetError
from sqlalchemy import create_engine, inspect, text

from stock_pipeline.datasets import SQLUpsertDataset
from stock_pipeline.db import upgrade_database
from stock_pipeline.pipelines.intraday.nodes import stamp_intraday_rows

TABLE = "stock_features_intraday"
INDEXES = {
    "idx_intraday_timestamp_ticker": ["timestamp", "ticker"],
    "idx_intraday_ticker_timestamp": ["ticker", "timestamp"],
    "idx_intraday_created_at": ["created_at"],
    "idx_intraday_updated_at": ["updated_at"],
}
TRIGGERS = {
    "postgresql": f"SELECT tgname FROM pg_trigger WHERE tgrelid = '{TABLE}'::regclass "
    "AND NOT tgisinternal",
    "sqlite": f"SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = '{TABLE}'",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh database: a SQLite file, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'stock.db'}"
    return request.getfixturevalue("pg_url")


def features(closes: list[float]) -> pd.DataFrame:
    """Intraday feature rows as the features node writes them: naive Asia/Kolkata bar times."""
    stamps = pd.date_range("2024-06-04 09:15", periods=len(closes), freq="5min")
    return pd.DataFrame(
        {
            "ticker": "TCS.NS",
            "date": stamps,
            "open": 100.0,
            "high": 110.0,
            "low": 90.0,
            "close": closes,
            "adj_close": closes,
            "volume": 1000.0,
            "rsi_14": 55.0,
            "obv": 1.0,  # a configured indicator: the save adds its column
        }
    )


def dataset(url: str, tmp_path) -> SQLUpsertDataset:
    upgrade_database(url)
    return SQLUpsertDataset(
        table=TABLE,
        keys=["ticker", "timestamp"],
        url=url,
        add_columns=True,
        report_filepath=str(tmp_path / "report.json"),
    )


def test_table_constraints_indexes_and_trigger(db_url):
    upgrade_database(db_url)
    upgrade_database(db_url)  # a second upgrade finds everything in place
    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            schema = inspect(connection)
            columns = {c["name"]: c for c in schema.get_columns(TABLE)}
            checks = {c["name"] for c in schema.get_check_constraints(TABLE)}
            indexes = {i["name"]: i["column_names"] for i in schema.get_indexes(TABLE)}
            primary_key = schema.get_pk_constraint(TABLE)["constrained_columns"]
            triggers = {row[0] for row in connection.execute(text(TRIGGERS[engine.dialect.name]))}
    finally:
        engine.dispose()
    assert primary_key == ["ticker", "timestamp"]
    assert "date" not in columns
    assert {"open", "close", "rsi_14", "volatility", "created_at", "updated_at"} <= set(columns)
    assert {"valid_ohlc", "valid_rsi", "positive_volume"} <= checks
    assert {name: indexes[name] for name in INDEXES} == INDEXES
    assert triggers == {f"update_{TABLE}_updated_at"}


def test_upsert_is_keyed_on_the_bar_time_and_reruns_change_nothing(db_url, tmp_path):
    target = dataset(db_url, tmp_path)
    rows = stamp_intraday_rows(features([100.0, 101.0, 102.0]))
    target.save(rows)
    target.save(rows)
    assert (tmp_path / "report.json").read_text().count('"unchanged": 3') == 1

    target.save(stamp_intraday_rows(features([100.0, 101.5, 102.0, 103.0])))
    stored = target.load()
    assert len(stored) == 4
    local = stored["timestamp"].dt.tz_convert("Asia/Kolkata").dt.tz_localize(None)
    assert local.tolist() == list(pd.date_range("2024-06-04 09:15", periods=4, freq="5min"))
    changed = stored[stored["updated_at"] > stored["created_at"]]
    assert changed["close"].tolist() == [101.5]


def test_constraints_reject_an_impossible_bar(db_url, tmp_path):
    bad = features([100.0]).assign(high=80.0)
    with pytest.raises(DatasetError, match="valid_ohlc"):
        dataset(db_url, tmp_path).save(stamp_intraday_rows(bad))
