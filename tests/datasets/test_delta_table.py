"""DeltaTableDataset: replace-from saves, versions that load back exactly, subsets, retention, kills."""

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, DatasetError

from stock_pipeline.contract import BUCKET_COLUMN, ticker_bucket
from stock_pipeline.datasets import DeltaTableDataset
from stock_pipeline.datasets.delta_table import TableWrite
from stock_pipeline.recipes import Recipe
from stock_pipeline.versions import load_table, table_versions

TICKERS = ("AAA.NS", "BBB.NS", "CCC.NS")


def rows(tickers=TICKERS, start="2024-01-01", sessions=5, value=1.0) -> pd.DataFrame:
    """`sessions` business days per ticker from `start`, with a float column."""
    dates = pd.bdate_range(start, periods=sessions)
    frame = pd.DataFrame(
        {"ticker": np.repeat(tickers, len(dates)), "date": np.tile(dates, len(tickers))}
    )
    frame["close"] = value + np.arange(len(frame), dtype=float)
    return frame


def catalog_with(path: Path, **options) -> DataCatalog:
    """A catalog whose `features` is the table at `path`."""
    return DataCatalog.from_config(
        {
            "features": {
                "type": "stock_pipeline.datasets.DeltaTableDataset",
                "filepath": str(path),
                **options,
            }
        }
    )


def test_new_sessions_append_and_a_whole_history_replaces_the_ticker(tmp_path: Path):
    dataset = DeltaTableDataset(str(tmp_path / "t"))
    dataset.save(rows())
    dataset.save(rows(start="2024-01-08", sessions=2, value=100.0))  # two new sessions each
    refreshed = rows(tickers=("BBB.NS",), sessions=4, value=-1.0)  # shorter: its 5th day goes
    dataset.save(refreshed)
    stored = dataset.load()
    assert stored.groupby("ticker").size().to_dict() == {"AAA.NS": 7, "BBB.NS": 4, "CCC.NS": 7}
    pd.testing.assert_frame_equal(
        stored[stored["ticker"] == "BBB.NS"].reset_index(drop=True), refreshed, check_dtype=False
    )
    assert BUCKET_COLUMN not in stored
    assert dataset.latest_version() == 2


def test_a_version_loads_back_exactly_what_its_save_left(tmp_path: Path):
    catalog = catalog_with(tmp_path / "t")
    first, second = rows(), rows(start="2024-01-08", sessions=1, value=50.0)
    catalog.save("features", first)
    catalog.save("features", second)
    pd.testing.assert_frame_equal(catalog.load("features", version="0"), first, check_dtype=False)
    both = pd.concat([first, second]).sort_values(["ticker", "date"], ignore_index=True)
    pd.testing.assert_frame_equal(catalog.load("features"), both, check_dtype=False)
    assert [entry["version"] for entry in table_versions(tmp_path / "t")] == [1, 0]
    with pytest.raises(DatasetError, match="not loadable"):
        catalog.load("features", version="7")


def test_load_args_read_a_subset_from_the_tickers_buckets_only(tmp_path: Path):
    DeltaTableDataset(str(tmp_path / "t")).save(rows(sessions=10))
    subset = load_table(
        tmp_path / "t", tickers=["BBB.NS"], start="2024-01-03", end="2024-01-05", columns=["close"]
    )
    assert list(subset.columns) == ["ticker", "date", "close"]
    assert set(subset["ticker"]) == {"BBB.NS"}
    assert subset["date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-03",
        "2024-01-04",
        "2024-01-05",
    ]
    folders = {p.name for p in (tmp_path / "t").iterdir() if p.name.startswith(BUCKET_COLUMN)}
    assert f"{BUCKET_COLUMN}={ticker_bucket('BBB.NS')}" in folders


def test_retention_vacuums_versions_beyond_the_setting(tmp_path: Path):
    dataset = DeltaTableDataset(str(tmp_path / "t"), retention_versions=2)
    for value in range(4):  # each save replaces the whole history: the old files are removed
        dataset.save(rows(value=float(value)))
    files = list((tmp_path / "t").rglob("*.parquet"))
    assert load_table(tmp_path / "t", version=2)["close"].iloc[0] == 2.0
    assert len(files) == 2 * len({ticker_bucket(ticker) for ticker in TICKERS})  # two versions
    with pytest.raises(DatasetError):
        load_table(tmp_path / "t", version=0)


def test_optional_table_loads_empty_before_the_first_save(tmp_path: Path):
    stored = DeltaTableDataset(str(tmp_path / "t"), optional=True).load()
    assert list(stored.columns) == ["ticker", "date"] and stored.empty


WRITER = """
import sys, time
import numpy as np, pandas as pd
from stock_pipeline.datasets import DeltaTableDataset
from stock_pipeline.datasets.delta_table import TableWrite
from stock_pipeline.recipes import Recipe

path, marker = sys.argv[1], sys.argv[2]

def chunk(ticker):
    dates = pd.bdate_range("2024-01-08", periods=50_000)
    return pd.DataFrame({"ticker": ticker, "date": dates, "close": np.arange(len(dates), dtype=float)})

def stall():
    open(marker, "w").close()  # the first chunk's files are written: the save is under way
    time.sleep(60)             # and stays under way until the test kills this process

DeltaTableDataset(path).save({"first": lambda: chunk("AAA.NS"), "second": stall})
"""


def test_a_run_killed_mid_write_leaves_the_previous_version(tmp_path: Path):
    path, marker = tmp_path / "t", tmp_path / "writing"
    before = rows()
    DeltaTableDataset(str(path)).save(before)
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(WRITER))
    src = Path(__file__).resolve().parents[2] / "src"
    writer = subprocess.Popen(
        [sys.executable, str(script), str(path), str(marker)], env={"PYTHONPATH": str(src)}
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and writer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the writer never started writing"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    dataset = DeltaTableDataset(str(path))
    assert list((path / f"{BUCKET_COLUMN}={ticker_bucket('AAA.NS')}").glob("*.parquet"))
    assert dataset.latest_version() == 0  # the killed save's files are there, but not committed
    pd.testing.assert_frame_equal(dataset.load(), before, check_dtype=False)
    dataset.save(rows(start="2024-01-08", sessions=1))  # and the next run writes on top
    assert dataset.latest_version() == 1


def test_by_bucket_loads_one_function_per_bucket(tmp_path: Path):
    stored = rows(sessions=3)
    DeltaTableDataset(str(tmp_path / "t")).save(stored)
    loaders = DeltaTableDataset(str(tmp_path / "t"), load_args={"by_bucket": True}).load()
    assert set(loaders) == {str(ticker_bucket(ticker)) for ticker in TICKERS}
    together = pd.concat(load() for load in loaders.values()).sort_values(["ticker", "date"])
    pd.testing.assert_frame_equal(together.reset_index(drop=True), stored, check_dtype=False)
    absent = DeltaTableDataset(str(tmp_path / "none"), load_args={"by_bucket": True}, optional=True)
    assert absent.load() == {}


def test_a_table_write_records_its_recipe_and_an_overwrite_replaces_rows_and_columns(
    tmp_path: Path,
):
    path = str(tmp_path / "t")
    old = Recipe("gold", {"indicators": {"close": {}}}, 1)
    new = Recipe("gold", {"indicators": {"cci_14": {}}}, 1)
    DeltaTableDataset(path).save(TableWrite({"0": rows}, old))
    stored = DeltaTableDataset(path).load()
    assert stored.attrs == {"version": 0, "recipe": old.to_json()}

    later = rows(tickers=("AAA.NS",), start="2024-01-08", sessions=1)
    DeltaTableDataset(path).save(TableWrite({"0": lambda: later}, old))  # the incremental path
    with pytest.raises(DatasetError, match="columns changed"):
        DeltaTableDataset(path).save(TableWrite({"0": lambda: later.assign(x=1.0)}, old))

    replaced = rows(tickers=("AAA.NS", "BBB.NS")).rename(columns={"close": "cci_14"})
    dataset = DeltaTableDataset(path)
    dataset.save(TableWrite({"0": lambda: replaced}, new, overwrite=True))
    assert (dataset.saved_recipe, dataset.rows_written) == (new, len(replaced))
    after = DeltaTableDataset(path).load()
    pd.testing.assert_frame_equal(after, replaced, check_dtype=False)  # CCC.NS and close gone
    assert after.attrs["recipe"] == new.to_json()
    loaders = DeltaTableDataset(path, load_args={"by_bucket": True}).load()
    assert (loaders.version, loaders.recipe) == (2, new)
    before = load_table(path, version=1)  # earlier versions keep their own columns
    assert "close" in before and "cci_14" not in before and len(before) == len(rows()) + 1


def test_a_recipe_is_found_past_commits_that_record_none(tmp_path: Path):
    path = str(tmp_path / "t")
    recipe = Recipe("silver", {"ffill_limit": 2}, 1)
    DeltaTableDataset(path).save(TableWrite({"0": rows}, recipe))
    for day in range(40):  # appends without a recipe (as a compaction's commit carries none)
        DeltaTableDataset(path).save(rows(start=f"2024-03-{day % 28 + 1:02d}", sessions=1))
    assert DeltaTableDataset(path).load().attrs["recipe"] == recipe.to_json()
    assert DeltaTableDataset(str(tmp_path / "none"), optional=True).load().attrs["recipe"] is None
