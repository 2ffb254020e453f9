"""A wrapper dataset for outputs that a run may have nothing to write to."""

from typing import Any

import pandas as pd
from kedro.io import AbstractDataset


def is_empty(data: Any) -> bool:
    """An empty dict, list or DataFrame: the node had nothing to write."""
    if isinstance(data, pd.DataFrame):
        return data.empty
    return isinstance(data, dict | list) and not data


class SkipEmptyDataset(AbstractDataset[Any, Any]):
    """Wraps any dataset: an empty save leaves the stored data as it is; loading what was never
    written gives `default` (an empty dict unless configured)."""

    def __init__(
        self,
        dataset: dict[str, Any],
        default: Any = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._dataset = AbstractDataset.from_config("inner", dict(dataset))
        self._default = {} if default is None else default
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"dataset": self._dataset._describe()}

    def _exists(self) -> bool:
        return self._dataset.exists()

    def load(self) -> Any:
        """The stored data, or the default when nothing was written yet."""
        if not self._dataset.exists():
            return self._default
        return self._dataset.load()

    def save(self, data: Any) -> None:
        """Write through, unless there is nothing to write."""
        if not is_empty(data):
            self._dataset.save(data)
