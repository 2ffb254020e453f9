"""The in-memory snapshots: indexed once, sliced per request, reloaded only when a file changes."""

import json
import os
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stock_pipeline.api.config import ApiConfigError, load_config
from stock_pipeline.api.store import (
    CachedFile,
    FeatureSnapshot,
    FeatureSource,
    UnknownVersion,
    read_features,
)
from stock_pipeline.contract import fingerprint_features
from stock_pipeline.datasets import DeltaTableDataset
from stock_pipeline.db import resolve_db_url
from stock_pipeline.versions import table_versions


def frame() -> pd.DataFrame:
    """Two tickers, out of order, five days each, with a tz-aware date and a NaN."""
    dates = pd.date_range("2026-01-05", periods=5, freq="D", tz="Asia/Kolkata")
    parts = [
        pd.DataFrame({"ticker": t, "date": dates, "close": np.arange(5.0) + i * 10})
        for i, t in enumerate(("TCS.NS", "INFY.NS"))
    ]
    data = pd.concat(parts).iloc[::-1].reset_index(drop=True)
    data["volume"] = np.arange(10)
    data.loc[0, "close"] = np.nan
    return data


def test_snapshot_indexes_tickers_and_dates() -> None:
    snapshot = FeatureSnapshot.from_frame(frame(), "v1")
    assert list(snapshot.spans) == ["INFY.NS", "TCS.NS"]
    span = snapshot.spans["TCS.NS"]
    assert (span.first_date, span.last_date, span.stop - span.start) == (
        date(2026, 1, 5),
        date(2026, 1, 9),
        5,
    )
    assert snapshot.columns == ("close", "volume")


def test_rows_slice_by_range_limit_and_order() -> None:
    snapshot = FeatureSnapshot.from_frame(frame(), "v1")
    rows = snapshot.rows(
        ticker="TCS.NS",
        start=date(2026, 1, 6),
        end=date(2026, 1, 8),
        columns=("close",),
        limit=2,
        descending=True,
    )
    assert rows == [{"date": "2026-01-08", "close": 3.0}, {"date": "2026-01-07", "close": 2.0}]
    ascending = snapshot.rows(
        ticker="TCS.NS", start=None, end=None, columns=("volume",), limit=2, descending=False
    )
    assert [r["date"] for r in ascending] == ["2026-01-05", "2026-01-06"]
    assert all(isinstance(r["volume"], int) for r in ascending)


@pytest.mark.parametrize("columns", [("close", "volume"), ("volume",)])
@pytest.mark.parametrize(
    ("start", "end", "limit", "descending"),
    [
        (None, None, 250, True),
        (None, None, 3, False),
        (date(2026, 1, 6), date(2026, 1, 8), 2, True),
        (date(2026, 1, 6), date(2026, 1, 8), 10, False),
        (None, date(2020, 1, 1), 5, True),
    ],
)
def test_rows_json_is_rows_as_json_with_nan_as_null(
    columns: tuple[str, ...], start: date | None, end: date | None, limit: int, descending: bool
) -> None:
    snapshot = FeatureSnapshot.from_frame(frame(), "v1")
    for ticker in snapshot.spans:
        query = {"start": start, "end": end, "limit": limit, "descending": descending}
        rows = snapshot.rows(ticker=ticker, columns=columns, **query)
        count, body = snapshot.rows_json(ticker=ticker, columns=columns, **query)
        expected = [
            {k: None if isinstance(v, float) and np.isnan(v) else v for k, v in row.items()}
            for row in rows
        ]
        assert (count, json.loads(body)) == (len(rows), expected)
    _, last_infy = snapshot.rows_json(
        ticker="INFY.NS", start=None, end=None, columns=snapshot.columns, limit=1, descending=True
    )
    assert last_infy == b'[{"date":"2026-01-09","close":null,"volume":0}]'


def test_latest_has_one_bar_per_ticker_and_nan_as_float() -> None:
    latest = FeatureSnapshot.from_frame(frame(), "v1").latest()
    assert [bar["ticker"] for bar in latest] == ["INFY.NS", "TCS.NS"]
    assert np.isnan(latest[0]["close"])


def test_select_pages_and_batches_cover_every_row_once_in_order() -> None:
    snapshot = FeatureSnapshot.from_frame(frame(), "v1")
    selections = snapshot.select((), None, None)
    assert [(s.ticker, s.start, s.stop) for s in selections] == [
        ("INFY.NS", 0, 5),
        ("TCS.NS", 5, 10),
    ]
    pages, first_row = [], 0
    while first_row is not None:
        rows, first_row = snapshot.page_json(
            snapshot.select((), None, None, first_row or 0), ("close",), limit=3
        )
        pages.append([json.loads(row) for row in rows])
    assert [len(page) for page in pages] == [3, 3, 3, 1]
    flat = [row for page in pages for row in page]
    assert [(r["ticker"], r["date"]) for r in flat][3:6] == [
        ("INFY.NS", "2026-01-08"),
        ("INFY.NS", "2026-01-09"),
        ("TCS.NS", "2026-01-05"),
    ]
    assert flat[4] == {"ticker": "INFY.NS", "date": "2026-01-09", "close": None}
    tables = list(snapshot.batches(selections, ("volume",), batch_rows=4))
    assert [t.num_rows for t in tables] == [4, 4, 2]
    assert tables[0].column_names == ["ticker", "date", "volume"]


def test_select_keeps_tickers_and_dates_asked() -> None:
    snapshot = FeatureSnapshot.from_frame(frame(), "v1")
    selections = snapshot.select(("TCS.NS",), date(2026, 1, 6), date(2026, 1, 7))
    assert [(s.ticker, s.stop - s.start) for s in selections] == [("TCS.NS", 2)]
    assert snapshot.select(("TCS.NS",), date(2026, 1, 8), date(2026, 1, 6)) == []


def test_feature_source_serves_the_current_version_and_names_no_other(tmp_path: Path) -> None:
    path = tmp_path / "features.parquet"
    frame().to_parquet(path)
    source = FeatureSource(path)
    current = source.snapshot()
    assert current.version.startswith("features-sha256:")
    assert source.snapshot(current.version) is current
    assert FeatureSource(path).snapshot().version == current.version  # same data, same id
    assert current.version == fingerprint_features(pd.read_parquet(path))  # a model's data_version
    with pytest.raises(UnknownVersion):
        source.snapshot("features-sha256:0000000000000000")


def test_an_unknown_version_reloads_a_changed_file_first(tmp_path: Path) -> None:
    path = tmp_path / "features.parquet"
    frame().to_parquet(path)
    source = FeatureSource(path)
    old = source.snapshot()
    frame().head(5).to_parquet(path)
    newer = read_features(path).version
    assert newer != old.version
    assert source.snapshot(newer).version == newer
    assert list(source.snapshot().spans) == ["INFY.NS"]


def test_cached_file_reloads_only_on_change(tmp_path: Path) -> None:
    path = tmp_path / "features.parquet"
    frame().to_parquet(path)
    cached = CachedFile(path, read_features)
    first = cached.get()
    assert cached.refresh() is False
    assert cached.get() is first
    frame().head(5).to_parquet(path)
    assert cached.refresh() is True
    assert list(cached.get().spans) == ["INFY.NS"]


def test_cached_file_keeps_the_last_good_copy(tmp_path: Path) -> None:
    path = tmp_path / "features.parquet"
    frame().to_parquet(path)
    cached = CachedFile(path, read_features)
    good = cached.get()
    path.write_bytes(b"not parquet at all")
    assert cached.refresh() is False
    assert cached.get() is good
    os.remove(path)
    assert cached.refresh() is True
    assert cached.get() is None


def test_config_reads_catalog_paths_and_parameters(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "conf/local/catalog.yml").write_text(
        "features:\n  type: pandas.ParquetDataset\n  filepath: data/elsewhere/f.parquet\n"
    )
    (project / "conf/local/parameters.yml").write_text("api:\n  max_staleness_hours: 5\n")
    config = load_config(project)
    assert config.files["features"] == project / "data/elsewhere/f.parquet"
    assert config.files["quality_report"].name == "quality_report.json"
    assert config.max_staleness_hours == 5
    assert config.reload_interval_seconds == 0.05


def test_config_without_a_catalog_entry_is_a_clear_error(project: Path) -> None:
    (project / "conf/base/catalog_drift.yml").unlink()
    with pytest.raises(ApiConfigError, match="drift_results"):
        load_config(project)


def test_relative_sqlite_paths_resolve_against_the_project(tmp_path: Path) -> None:
    assert resolve_db_url("sqlite:///data/x.db", tmp_path) == f"sqlite:///{tmp_path}/data/x.db"
    assert resolve_db_url("sqlite:////abs/x.db", tmp_path) == "sqlite:////abs/x.db"
    pg = "postgresql+psycopg2://u:p@h/db"
    assert resolve_db_url(pg, tmp_path) == pg


def test_a_feature_table_is_served_at_its_delta_versions(tmp_path: Path) -> None:
    path = tmp_path / "features"
    table = DeltaTableDataset(str(path), retention_versions=1)
    table.save(frame().assign(date=lambda f: f["date"].dt.tz_localize(None)))
    source = FeatureSource(path)
    first = source.snapshot()
    assert first.version == str(table_versions(path)[0]["version"]) == "0"
    newer = frame().assign(date=lambda f: f["date"].dt.tz_localize(None) + pd.Timedelta(days=7))
    table.save(newer.head(3))  # one more session range for TCS.NS: version 1
    source.current.refresh()
    assert source.snapshot().version == "1"
    pinned = source.snapshot("0")
    assert pinned.version == "0" and len(pinned.table) == len(first.table)
    assert source.snapshot("0") is pinned  # kept in memory
    for unknown in ("7", "features-sha256:0000000000000000"):
        with pytest.raises(UnknownVersion, match=unknown):
            source.snapshot(unknown)
    whole = frame().assign(date=lambda f: f["date"].dt.tz_localize(None), close=1.0)
    table.save(whole)  # version 2 replaces every row: the files of versions 0 and 1 are vacuumed
    with pytest.raises(UnknownVersion):
        FeatureSource(path).snapshot("0")
