"""A Parquet dataset that writes atomically and can merge into what is already stored."""

from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from stock_pipeline.atomic import atomic_path


class MergeParquetDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """Parquet on local disk, written to a temporary file and renamed, so a killed run leaves no half-file.

    With `replace_on`, a save first removes the stored rows whose values in those columns appear in
    the new data (rerunning an as_of replaces its rows). With `key`, stored rows are kept and new rows
    whose key is already stored are not added twice. With neither, a save overwrites the file.
    `save_args` go to `DataFrame.to_parquet` (pyarrow), e.g. `use_dictionary: [ticker, date]`.
    """

    def __init__(
        self,
        filepath: str,
        key: list[str] | None = None,
        replace_on: list[str] | None = None,
        save_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._filepath = PurePosixPath(filepath)
        self._key = list(key or [])
        self._replace_on = list(replace_on or [])
        self._save_args = dict(save_args or {})
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._filepath),
            "key": self._key,
            "replace_on": self._replace_on,
            "save_args": self._save_args,
        }

    def _exists(self) -> bool:
        return Path(self._filepath).exists()

    def load(self) -> pd.DataFrame:
        """The stored table."""
        return pd.read_parquet(self._filepath)

    def save(self, data: pd.DataFrame) -> None:
        """Merge with the stored rows as configured, then replace the file atomically."""
        merged = self._merge(data) if self._exists() and (self._key or self._replace_on) else data
        with atomic_path(self._filepath) as temporary:
            merged.reset_index(drop=True).to_parquet(temporary, index=False, **self._save_args)

    def _merge(self, new: pd.DataFrame) -> pd.DataFrame:
        """Stored rows (minus replaced ones) followed by the new rows not already stored."""
        stored = self.load()
        missing = [column for column in self._key + self._replace_on if column not in new]
        if missing:
            raise DatasetError(f"{self._filepath}: new rows lack merge columns {missing}")
        if self._replace_on:
            replaced = stored.set_index(self._replace_on).index.isin(
                new.set_index(self._replace_on).index
            )
            stored = stored[~replaced]
        if self._key and not stored.empty:
            already = new.set_index(self._key).index.isin(stored.set_index(self._key).index)
            new = new[~already]
        frames = [frame for frame in (stored, new) if not frame.empty]
        return pd.concat(frames, ignore_index=True) if frames else new
