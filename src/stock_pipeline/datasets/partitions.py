"""A partitioned dataset whose absence is a valid, empty state (a first run has no bronze yet)."""

from collections.abc import Callable
from typing import Any

from kedro_datasets.partitions import PartitionedDataset


class OptionalPartitionedDataset(PartitionedDataset):
    """PartitionedDataset that loads as {} when no partition exists yet, instead of raising."""

    def load(self) -> dict[str, Callable[[], Any]]:
        """Lazy loaders by partition id; empty when nothing is stored."""
        if not self._list_partitions():
            return {}
        return super().load()
