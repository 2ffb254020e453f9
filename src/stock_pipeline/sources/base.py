"""What a price source returns and the errors it raises."""

from datetime import date
from typing import Protocol

import numpy as np
import pandas as pd

from stock_pipeline.contract import BRONZE_COLUMNS


class SourceError(Exception):
    """A ticker could not be fetched; the message says why."""


class NoDataError(SourceError):
    """The source answered, but has no bars for the ticker in the window (unknown or delisted)."""


class PriceSource(Protocol):
    """Fetches daily or intraday bars for one ticker."""

    sends_requests: bool  # over the network, rate limited (threads wait); else pure CPU work

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        """Bars from start to end inclusive with BRONZE_COLUMNS, one row per bar, sorted by date."""
        ...


def empty_bronze_frame() -> pd.DataFrame:
    """A bronze frame with no rows and the right columns."""
    return pd.DataFrame({column: pd.Series(dtype="float64") for column in BRONZE_COLUMNS}).assign(
        date=pd.Series(dtype="datetime64[ns]")
    )


def bar_spacing(dates: pd.Series) -> str | None:
    """The interval of bars: `1d` when all are dated at midnight, else the most common gap between
    two bars of one day (`5m`); None when that cannot be told."""
    stamps = np.sort(dates.dropna().to_numpy(dtype="datetime64[s]"))
    if not len(stamps):
        return None
    days = stamps.astype("datetime64[D]")
    if (stamps == days).all():
        return "1d"
    gaps = np.diff(stamps)[days[1:] == days[:-1]].astype(np.int64)
    gaps = gaps[gaps > 0]
    if not len(gaps):
        return None
    values, counts = np.unique(gaps, return_counts=True)
    return f"{int(values[counts == counts.max()].min() // 60)}m"
