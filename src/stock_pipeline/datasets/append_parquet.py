"""A folder of Parquet parts that only grows by appending: a run's cost does not grow with history."""

import time
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from stock_pipeline.atomic import atomic_path

PART_PREFIX = "part-"


class AppendParquetDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """Each save writes the new rows as one more part file (named by time, so parts sort in the
    order they were written); nothing stored is read or rewritten. Loading reads every part and
    applies the merge rules then:

    - `key`: a row whose key an earlier part already holds is left out (a re-quarantined row is
      kept once, with its first run id);
    - `replace_on`: for each value of these columns only the newest part's rows count (rerunning
      an as_of replaces its rows).

    A frame whose `attrs["replaces_stored"]` is true replaces every stored part (the quarantine
    of a run that cleaned everything again under a changed recipe: the earlier rejections were
    made under rules no longer in force). `retention_days` deletes parts written longer ago, at
    save time. `max_parts` compacts: when a
    save finds more parts, they are merged into one (the rules applied), so loads stay fast.
    Example catalog entry::

        quarantine:
          type: stock_pipeline.datasets.AppendParquetDataset
          filepath: data/02_intermediate/quarantine
          key: [ticker, raw_date, stage, rule]
          retention_days: 730
    """

    def __init__(
        self,
        filepath: str,
        key: list[str] | None = None,
        replace_on: list[str] | None = None,
        retention_days: float | None = None,
        max_parts: int = 200,
        metadata: dict[str, Any] | None = None,
    ):
        self._path = PurePosixPath(filepath)
        self._key = list(key or [])
        self._replace_on = list(replace_on or [])
        self._retention_days = retention_days
        self._max_parts = max_parts
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._path),
            "key": self._key,
            "replace_on": self._replace_on,
            "retention_days": self._retention_days,
        }

    def _parts(self) -> list[Path]:
        """The part files, oldest first."""
        folder = Path(self._path)
        return sorted(folder.glob(f"{PART_PREFIX}*.parquet")) if folder.is_dir() else []

    def _exists(self) -> bool:
        return bool(self._parts())

    def load(self) -> pd.DataFrame:
        """Every stored row after the merge rules, oldest part first."""
        parts = self._parts()
        if not parts:
            raise DatasetError(f"{self._path}: nothing stored yet")
        frames = [pd.read_parquet(part).assign(_part=number) for number, part in enumerate(parts)]
        return self._merged(pd.concat(frames, ignore_index=True))

    def _merged(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The rows (tagged with their part's number in `_part`) after the merge rules."""
        missing = [column for column in self._key + self._replace_on if column not in rows]
        if missing:
            raise DatasetError(f"{self._path}: rows lack merge columns {missing}")
        if self._replace_on:
            newest = rows.groupby(self._replace_on, dropna=False)["_part"].transform("max")
            rows = rows[rows["_part"] == newest]
        if self._key:
            rows = rows.drop_duplicates(self._key, keep="first")
        return rows.drop(columns="_part").reset_index(drop=True)

    def save(self, data: pd.DataFrame) -> None:
        """Append the rows as a new part; then prune old parts and compact many small ones."""
        missing = [column for column in self._key + self._replace_on if column not in data]
        if missing:
            raise DatasetError(f"{self._path}: new rows lack merge columns {missing}")
        earlier = self._parts() if data.attrs.get("replaces_stored") else []
        if len(data) or not self._parts() or earlier:  # even no rows is a valid state
            self._write_part(data.reset_index(drop=True))
        for part in earlier:  # after the new part is in place: a killed run loses nothing
            part.unlink(missing_ok=True)
        self._prune()
        parts = self._parts()
        if len(parts) > self._max_parts:
            merged = self.load()
            self._write_part(merged)
            for part in parts:
                part.unlink()

    def _write_part(self, rows: pd.DataFrame) -> None:
        """One more part file, named so that parts sort in the order written."""
        name = f"{PART_PREFIX}{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        with atomic_path(Path(self._path) / name) as temporary:
            rows.to_parquet(temporary, index=False)

    def _prune(self) -> None:
        """Delete the parts written more than retention_days ago."""
        if self._retention_days is None:
            return
        cutoff = time.time() - self._retention_days * 86_400
        for part in self._parts():
            if part.stat().st_mtime < cutoff:
                part.unlink(missing_ok=True)
