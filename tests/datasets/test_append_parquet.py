"""AppendParquetDataset: a save only appends; loading applies the key and replace_on rules."""

import os
import time
from pathlib import Path

import pandas as pd
import pytest
from kedro.io import DatasetError

from stock_pipeline.datasets import AppendParquetDataset


def rows(as_of: str, tickers: list[str], value: float) -> pd.DataFrame:
    """Drift-like rows of one as_of."""
    return pd.DataFrame({"as_of": as_of, "ticker": tickers, "value": value})


def test_a_save_appends_without_reading_or_rewriting_what_is_stored(tmp_path: Path) -> None:
    dataset = AppendParquetDataset(str(tmp_path / "t"), replace_on=["as_of"])
    dataset.save(rows("2024-01-01", ["A.NS", "B.NS"], 1.0))
    first = sorted((tmp_path / "t").iterdir())
    stamps = [part.stat().st_mtime_ns for part in first]

    dataset.save(rows("2024-01-02", ["A.NS"], 2.0))

    parts = sorted((tmp_path / "t").iterdir())
    assert len(parts) == 2 and parts[0] == first[0]
    assert parts[0].stat().st_mtime_ns == stamps[0]  # the stored part was not touched
    assert len(dataset.load()) == 3


def test_rerunning_an_as_of_replaces_its_rows(tmp_path: Path) -> None:
    dataset = AppendParquetDataset(str(tmp_path / "t"), replace_on=["as_of"])
    dataset.save(rows("2024-01-01", ["A.NS", "B.NS"], 1.0))
    dataset.save(rows("2024-01-02", ["A.NS"], 2.0))
    dataset.save(rows("2024-01-01", ["A.NS"], 3.0))  # a rerun of the first as_of

    loaded = dataset.load().sort_values(["as_of", "ticker"], ignore_index=True)

    assert loaded.to_dict("records") == [
        {"as_of": "2024-01-01", "ticker": "A.NS", "value": 3.0},
        {"as_of": "2024-01-02", "ticker": "A.NS", "value": 2.0},
    ]


def test_a_key_already_stored_keeps_its_first_row(tmp_path: Path) -> None:
    dataset = AppendParquetDataset(str(tmp_path / "q"), key=["ticker", "as_of"])
    dataset.save(rows("2024-01-01", ["A.NS"], 1.0).assign(run_id="run-1"))
    dataset.save(rows("2024-01-01", ["A.NS", "B.NS"], 1.0).assign(run_id="run-2"))

    loaded = dataset.load()

    assert loaded[["ticker", "run_id"]].to_dict("records") == [
        {"ticker": "A.NS", "run_id": "run-1"},
        {"ticker": "B.NS", "run_id": "run-2"},
    ]


def test_rows_that_replace_the_stored_ones_leave_only_themselves(tmp_path: Path) -> None:
    dataset = AppendParquetDataset(str(tmp_path / "q"), key=["ticker", "as_of"])
    dataset.save(rows("2024-01-01", ["A.NS", "B.NS"], 1.0))
    dataset.save(rows("2024-01-02", ["A.NS"], 1.0))
    again = rows("2024-01-02", ["B.NS"], 2.0)
    again.attrs["replaces_stored"] = True  # a quarantine made again under new rules
    dataset.save(again)
    assert dataset.load().to_dict("records") == again.to_dict("records")
    nothing = rows("2024-01-03", [], 0.0)
    nothing.attrs["replaces_stored"] = True  # the new rules reject nothing
    dataset.save(nothing)
    assert dataset.load().empty


def test_old_parts_are_pruned_and_many_parts_compacted(tmp_path: Path) -> None:
    dataset = AppendParquetDataset(
        str(tmp_path / "t"), replace_on=["as_of"], retention_days=30, max_parts=3
    )
    dataset.save(rows("2020-01-01", ["A.NS"], 1.0))
    [old] = list((tmp_path / "t").iterdir())
    long_ago = time.time() - 40 * 86_400
    os.utime(old, (long_ago, long_ago))
    for day in range(2, 6):
        dataset.save(rows(f"2024-01-0{day}", ["A.NS"], float(day)))

    loaded = dataset.load()

    assert "2020-01-01" not in set(loaded["as_of"])  # pruned
    assert len(list((tmp_path / "t").iterdir())) <= 3  # compacted
    assert sorted(loaded["as_of"]) == ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]


def test_rows_without_the_merge_columns_are_refused(tmp_path: Path) -> None:
    dataset = AppendParquetDataset(str(tmp_path / "t"), replace_on=["as_of"])
    with pytest.raises(DatasetError, match="lack merge columns"):
        dataset.save(pd.DataFrame({"ticker": ["A.NS"]}))
    assert not dataset.exists()


def test_a_first_save_of_no_rows_is_stored_and_later_empty_saves_add_nothing(
    tmp_path: Path,
) -> None:
    dataset = AppendParquetDataset(str(tmp_path / "q"), key=["ticker"])
    dataset.save(pd.DataFrame({"ticker": pd.Series(dtype=str)}))
    dataset.save(pd.DataFrame({"ticker": pd.Series(dtype=str)}))
    assert dataset.load().empty
    assert len(list((tmp_path / "q").iterdir())) == 1
