"""What a price source returns and the errors it raises."""

from datetime import date
from typing import Protocol

import pandas as pd

from stock_pipeline.contract import BRONZE_COLUMNS


class SourceError(Exception):
    """A ticker could not be fetched; the message says why."""


class NoDataError(SourceError):
    """The source answered, but has no bars for the ticker in the window (unknown or delisted)."""


class PriceSource(Protocol):
    """Fetches daily or intraday bars for one ticker."""

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
    stamps = dates.dropna().sort_values()
    if stamps.empty:
        return None
    if (stamps == stamps.dt.normalize()).all():
        return "1d"
    gaps = stamps.diff()[stamps.dt.normalize().duplicated()]
    gaps = gaps[gaps > pd.Timedelta(0)]
    return None if gaps.empty else f"{int(gaps.mode().min().total_seconds() // 60)}m"
