"""DeltaTableDataset's storage policy: per-bucket compaction, retention by saves, checkpoints and a
trimmed log, the storage bound, and readers that never see a half-compacted table."""

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable
from kedro.io import DatasetError, Version

from stock_pipeline.api.store import FeatureSource, UnknownVersion
from stock_pipeline.contract import BUCKET_COLUMN, ticker_bucket
from stock_pipeline.datasets import DeltaTableDataset
from stock_pipeline.datasets.delta_table import CHECKPOINT_INTERVAL, COMPACTION_KEY, TableWrite
from stock_pipeline.recipes import Recipe
from stock_pipeline.versions import load_table

TICKERS = [f"S{number:03d}.NS" for number in range(48)]  # every one of the 16 buckets
DAYS = pd.bdate_range("2024-01-01", periods=60)


def day(number: int, tickers: list[str] = TICKERS) -> pd.DataFrame:
    """One session's rows, its value the session's number (a load shows which saves it holds)."""
    return pd.DataFrame({"ticker": tickers, "date": DAYS[number], "close": float(number)})


def files_per_bucket(path: Path) -> dict[int, list[str]]:
    """The live data files of the table, by bucket."""
    actions = pa.table(DeltaTable(str(path)).get_add_actions(flatten=True)).to_pydict()
    buckets: dict[int, list[str]] = {}
    for name, bucket in zip(actions["path"], actions[f"partition.{BUCKET_COLUMN}"], strict=True):
        buckets.setdefault(int(bucket), []).append(name)
    return buckets


def folder_bytes(path: Path) -> int:
    """Bytes of every file under a folder."""
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())


def test_only_crowded_buckets_are_compacted_and_loads_stay_equal(tmp_path: Path):
    path = tmp_path / "t"
    dataset = DeltaTableDataset(str(path), max_files_per_bucket=3)
    daily = [ticker for ticker in TICKERS if ticker_bucket(ticker) != ticker_bucket(TICKERS[0])]
    dataset.save(day(0))
    quiet = files_per_bucket(path)[ticker_bucket(TICKERS[0])]
    for number in range(1, 12):
        dataset.save(day(number, daily))
        assert all(len(files) <= 3 for files in files_per_bucket(path).values())
    assert files_per_bucket(path)[ticker_bucket(TICKERS[0])] == quiet  # never rewritten
    expected = pd.concat([day(0), *(day(number, daily) for number in range(1, 12))])
    pd.testing.assert_frame_equal(
        dataset.load(),
        expected.sort_values(["ticker", "date"], ignore_index=True),
        check_dtype=False,
    )
    assert any(COMPACTION_KEY in entry for entry in DeltaTable(str(path)).history())


def test_small_files_merge_and_a_bucket_of_large_files_merges_whole(tmp_path: Path):
    path = tmp_path / "t"
    history = pd.concat([day(number) for number in range(40)])
    dataset = DeltaTableDataset(str(path), max_files_per_bucket=4, small_file_kib=1)
    for start in range(0, 40, 8):  # five large files per bucket (each above 1 KiB)
        dataset.save(history[history["date"].isin(DAYS[start : start + 8])])
    assert all(len(files) == 1 for files in files_per_bucket(path).values())  # merged whole
    assert len(dataset.load()) == len(history)


def test_retention_counts_saves_not_compactions_and_older_versions_are_refused(tmp_path: Path):
    path = tmp_path / "t"
    dataset = DeltaTableDataset(str(path), retention_versions=3, max_files_per_bucket=2)
    saves = []  # the version after each save and the compactions and vacuums it ran
    for number in range(30):
        dataset.save(day(number))
        saves.append(dataset.latest_version())
    assert any(COMPACTION_KEY in entry for entry in DeltaTable(str(path)).history())
    for number, version in enumerate(saves[-3:], start=27):  # the last three saves load exactly
        assert load_table(path, version=version)["close"].max() == number
    kept = [int(version) for version in dataset.list_versions()]
    assert min(kept) == saves[-4] + 1 and max(kept) == saves[-1]  # from the 3rd latest save on
    with pytest.raises(DatasetError, match="not loadable"):
        DeltaTableDataset(
            str(path), retention_versions=3, version=Version(str(saves[-4]), None)
        ).load()
    with pytest.raises(DatasetError, match="not loadable"):  # its log entries are gone too
        DeltaTableDataset(
            str(path), retention_versions=3, version=Version(str(saves[0]), None)
        ).load()


def test_checkpoints_keep_the_log_short_and_the_folder_within_its_bound(tmp_path: Path):
    path = tmp_path / "t"
    recipe = Recipe("gold", {"indicators": {"close": {}}}, 1)
    dataset = DeltaTableDataset(str(path), retention_versions=4, max_files_per_bucket=3)
    log_files = []
    for number in range(60):
        dataset.save(TableWrite({"0": lambda number=number: day(number)}, recipe))
        log_files.append(len(list((path / "_delta_log").iterdir())))
        assert folder_bytes(path) <= dataset.storage_bound()
    assert list((path / "_delta_log").glob("*.checkpoint.parquet"))
    assert max(log_files[30:]) <= 3 * CHECKPOINT_INTERVAL  # flat: not one more per save
    assert not (path / "_delta_log" / f"{0:020d}.json").exists()
    stored = DeltaTableDataset(str(path)).load()
    assert stored.attrs["recipe"] == recipe.to_json()  # compactions carry it past the trimmed log
    assert len(stored) == 60 * len(TICKERS)


def test_a_load_during_compaction_and_vacuum_returns_one_whole_version(tmp_path: Path):
    path = tmp_path / "t"
    dataset = DeltaTableDataset(str(path), retention_versions=2, max_files_per_bucket=2)
    dataset.save(day(0))
    done, seen, errors = threading.Event(), [], []

    def read() -> None:
        while not done.is_set():
            try:
                frame = DeltaTableDataset(str(path)).load()
            except Exception as error:  # any failure fails the test
                errors.append(error)
                return
            sessions = int(frame["close"].max()) + 1
            counts = frame.groupby("ticker")["close"].agg(["size", "sum"])
            whole = (counts["size"] == sessions).all() and len(counts) == len(TICKERS)
            seen.append(whole and np.allclose(counts["sum"], sessions * (sessions - 1) / 2))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for number in range(1, 25):
            dataset.save(day(number))
    finally:
        done.set()
        reader.join()
    assert not errors and seen and all(seen)


def test_the_api_serves_kept_versions_and_404s_older_ones_after_compactions(tmp_path: Path):
    path = tmp_path / "features"
    dataset = DeltaTableDataset(str(path), retention_versions=3, max_files_per_bucket=2)
    saves = []
    for number in range(25):
        dataset.save(day(number))
        saves.append(str(dataset.latest_version()))
    source = FeatureSource(path)
    assert source.snapshot(saves[-3]).version == saves[-3]
    assert len(source.snapshot(saves[-3]).table) == 23 * len(TICKERS)
    for pruned in (saves[0], "999"):  # vacuumed and its log trimmed; never written
        with pytest.raises(UnknownVersion, match=pruned):
            source.snapshot(pruned)
