"""Datasets that pipeline slice tests put in their in-memory catalogs."""

from pathlib import Path

from kedro.io import MemoryDataset

from stock_pipeline.datasets import BronzeDataset


class KeptDataset(MemoryDataset):
    """A memory dataset the runner cannot release, so that the test reads it after the run."""

    def _release(self) -> None:
        """Keep the data."""


def bronze_dataset(path: Path) -> BronzeDataset:
    """The bronze layer as the project's catalog declares it (one text CSV per ticker), at `path`."""
    return BronzeDataset(path=str(path))
