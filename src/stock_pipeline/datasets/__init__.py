"""Kedro datasets that kedro-datasets lacks."""

from stock_pipeline.datasets.notebook_report import NotebookReportDataset
from stock_pipeline.datasets.parquet import MergeParquetDataset
from stock_pipeline.datasets.partitions import OptionalPartitionedDataset
from stock_pipeline.datasets.sql_upsert import SQLUpsertDataset

__all__ = [
    "MergeParquetDataset",
    "NotebookReportDataset",
    "OptionalPartitionedDataset",
    "SQLUpsertDataset",
]
