"""The versioned tables outside a Kedro session: a version or subset of gold for the API and notebooks.

In a session, `catalog.load("features", version="3")` does the same; these functions read the
table folders directly, so the API need not build a catalog per request.
"""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from deltalake import DeltaTable
from kedro.io import Version

from stock_pipeline.configuration import config_loader
from stock_pipeline.datasets.delta_table import DeltaTableDataset


def load_table(
    path: str | Path,
    version: int | str | None = None,
    tickers: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """A table's rows at `version` (None: the latest) for the tickers, inclusive dates and columns
    given (None: all), sorted by ticker then date; only the tickers' buckets are read."""
    selection = {"tickers": tickers, "start": start, "end": end, "columns": columns}
    return DeltaTableDataset(
        str(path),
        load_args={key: value for key, value in selection.items() if value is not None},
        version=Version(str(version), None) if version is not None else None,
    ).load()


def load_features(
    version: int | str | None = None,
    tickers: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    columns: list[str] | None = None,
    project_path: str | Path = ".",
    env: str = "local",
) -> pd.DataFrame:
    """The feature dataset (gold) of the project at `project_path`, where its catalog entry in
    `env` puts it, as `load_table` selects it."""
    root = Path(project_path)
    filepath = Path(config_loader(root, env)["catalog"]["features"]["filepath"])
    path = filepath if filepath.is_absolute() else root / filepath
    return load_table(path, version, tickers, start, end, columns)


def table_versions(path: str | Path) -> list[dict[str, Any]]:
    """The table's versions, newest first: id, commit time (UTC), operation, rows the save wrote."""
    if not DeltaTable.is_deltatable(str(path)):
        return []
    return [
        {
            "version": entry["version"],
            "committed_at": datetime.fromtimestamp(entry["timestamp"] / 1000, UTC).isoformat(),
            "operation": entry.get("operation"),
            "rows_written": int(entry.get("rows_written", 0)),
        }
        for entry in DeltaTable(str(path)).history()
    ]
