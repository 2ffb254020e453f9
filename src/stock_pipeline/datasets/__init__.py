"""Kedro datasets that kedro-datasets lacks.

Each class is imported on first use (PEP 562), so a run that needs only the Parquet datasets does
not pay for SQLAlchemy or the notebook stack (nbformat, papermill), which take seconds to import.
"""

from importlib import import_module
from typing import Any

_MODULES = {
    "AppendParquetDataset": "append_parquet",
    "BronzeDataset": "bronze",
    "DeltaTableDataset": "delta_table",
    "MergeParquetDataset": "parquet",
    "NotebookReportDataset": "notebook_report",
    "OptionalPartitionedDataset": "partitions",
    "SkipEmptyDataset": "skip_empty",
    "SQLUpsertDataset": "sql_upsert",
    "TableRecipeDataset": "sql_upsert",
}

__all__ = [
    "AppendParquetDataset",
    "BronzeDataset",
    "DeltaTableDataset",
    "MergeParquetDataset",
    "NotebookReportDataset",
    "OptionalPartitionedDataset",
    "SQLUpsertDataset",
    "SkipEmptyDataset",
    "TableRecipeDataset",
]


def __getattr__(name: str) -> Any:
    """The dataset class `name`, imported from its module on first access."""
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULES[name]}"), name)
