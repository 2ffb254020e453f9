"""MergeParquetDataset: atomic writes, merging on a key, replacing on columns, writer options."""

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from kedro.io import DatasetError

from stock_pipeline.datasets import MergeParquetDataset

ROWS = pd.DataFrame(
    {
        "ticker": ["AAA.NS", "AAA.NS", "BBB.NS"],
        "as_of": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-02"]),
        "value": [1.0, 2.0, 3.0],
    }
)


def test_without_key_a_save_overwrites(tmp_path: Path):
    dataset = MergeParquetDataset(str(tmp_path / "t.parquet"))
    dataset.save(ROWS)
    dataset.save(ROWS.iloc[:1])
    pd.testing.assert_frame_equal(dataset.load(), ROWS.iloc[:1])


def test_key_appends_only_rows_not_stored(tmp_path: Path):
    dataset = MergeParquetDataset(str(tmp_path / "t.parquet"), key=["ticker", "value"])
    dataset.save(ROWS.iloc[:2])
    dataset.save(ROWS)  # two rows already stored, one new
    assert dataset.load()["value"].tolist() == [1.0, 2.0, 3.0]


def test_replace_on_swaps_the_rows_of_a_rerun(tmp_path: Path):
    dataset = MergeParquetDataset(str(tmp_path / "t.parquet"), replace_on=["as_of"])
    dataset.save(ROWS)
    rerun = ROWS.iloc[:1].assign(value=9.0)
    dataset.save(rerun)
    stored = dataset.load().sort_values("value", ignore_index=True)
    assert stored["value"].tolist() == [3.0, 9.0]


def test_merge_columns_must_be_present(tmp_path: Path):
    dataset = MergeParquetDataset(str(tmp_path / "t.parquet"), key=["ticker", "missing"])
    dataset.save(ROWS)
    with pytest.raises(DatasetError, match="missing"):
        dataset.save(ROWS)


def test_a_failed_write_leaves_the_stored_file_and_no_temporary(tmp_path: Path):
    dataset = MergeParquetDataset(str(tmp_path / "t.parquet"))
    dataset.save(ROWS)
    with pytest.raises(Exception):  # noqa: B017 - pyarrow's own error type for an unwritable column
        dataset.save(ROWS.assign(value=[object(), object(), object()]))
    pd.testing.assert_frame_equal(dataset.load(), ROWS)
    assert [path.name for path in tmp_path.iterdir()] == ["t.parquet"]


def test_save_args_reach_the_writer(tmp_path: Path):
    path = tmp_path / "t.parquet"
    MergeParquetDataset(str(path), save_args={"use_dictionary": ["ticker"]}).save(ROWS)
    columns = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {columns.column(i).path_in_schema: columns.column(i).encodings for i in range(3)}
    assert any("DICTIONARY" in e for e in encodings["ticker"])
    assert not any("DICTIONARY" in e for e in encodings["value"])
