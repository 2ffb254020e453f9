"""A seeded synthetic market: reproducible daily OHLCV on the NSE calendar, for demos and load tests.

Each ticker's path is drawn from its own generator (seeded by `seed` and the symbol) over every NSE
session from ORIGIN to HORIZON, so that any window of it is the same bars on every call: incremental runs,
overlaps and reruns behave exactly as with a real source.
"""

import zlib
from datetime import date

import numpy as np
import pandas as pd

from stock_pipeline.contract import BRONZE_COLUMNS
from stock_pipeline.sources.base import NoDataError, SourceError
from stock_pipeline.trading_calendar import nse_sessions

ORIGIN, HORIZON = "2005-01-03", "2030-12-31"  # every path spans this whole range
DAILY_VOLATILITY = 0.018


class SyntheticSource:
    """Geometric random-walk bars with realistic highs, lows and volumes; daily interval only."""

    def __init__(self, seed: int = 42, interval: str = "1d"):
        if interval != "1d":
            raise SourceError(f"the synthetic source makes daily bars only, not {interval}")
        self.seed = seed

    def _path(self, ticker: str) -> pd.DataFrame:
        """The ticker's bars on every session from ORIGIN to HORIZON."""
        sessions = nse_sessions(ORIGIN, HORIZON)
        rng = np.random.default_rng([self.seed, zlib.crc32(ticker.encode())])
        size = len(sessions)
        returns = rng.normal(0.0003, DAILY_VOLATILITY, size)
        close = rng.uniform(50, 3000) * np.exp(np.cumsum(returns))
        open_ = close * np.exp(rng.normal(0, DAILY_VOLATILITY / 3, size))
        wick = np.abs(rng.normal(0, DAILY_VOLATILITY / 2, (2, size)))
        return pd.DataFrame(
            {
                "date": sessions,
                "open": open_.round(2),
                "high": (np.maximum(open_, close) * (1 + wick[0])).round(2),
                "low": (np.minimum(open_, close) * (1 - wick[1])).round(2),
                "close": close.round(2),
                "adj_close": close.round(2),
                "volume": rng.integers(100_000, 5_000_000, size).astype("float64"),
                "dividends": 0.0,
                "stock_splits": 0.0,
            }
        )

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        """The ticker's bars from start to end inclusive."""
        bars = self._path(ticker)
        in_window = bars["date"].between(pd.Timestamp(start), pd.Timestamp(end))
        window = bars[in_window].reset_index(drop=True)
        if window.empty:
            raise NoDataError(f"{ticker}: no synthetic sessions between {start} and {end}")
        return window[list(BRONZE_COLUMNS)]
