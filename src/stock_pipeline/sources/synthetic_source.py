"""A seeded synthetic market: reproducible daily OHLCV on the NSE calendar, for demos and load tests.

Each ticker's path is drawn from its own generators (seeded by `seed` and the symbol) over every NSE
session from ORIGIN on, one generator per series so that a longer path starts with the same bars: any
window is the same bars on every call, whatever the end asked for (no horizon). Incremental runs,
overlaps and reruns behave exactly as with a real source.
"""

import zlib
from datetime import date
from functools import lru_cache

import numpy as np
import pandas as pd

from stock_pipeline.datasets.bronze import BRONZE_INDEX
from stock_pipeline.sources.base import NoDataError, SourceError
from stock_pipeline.trading_calendar import nse_sessions

ORIGIN = "2005-01-03"  # every path starts here
DAILY_VOLATILITY = 0.018


class SyntheticSource:
    """Geometric random-walk bars with realistic highs, lows and volumes; daily interval only."""

    sends_requests = False

    def __init__(self, seed: int = 42, interval: str = "1d"):
        if interval != "1d":
            raise SourceError(f"the synthetic source makes daily bars only, not {interval}")
        self.seed = seed

    def _path(self, ticker: str, sessions: pd.DatetimeIndex, first: int) -> pd.DataFrame:
        """The ticker's bars on `sessions[first:]`, `sessions` being every session from ORIGIN on."""
        seeds = np.random.SeedSequence([self.seed, zlib.crc32(ticker.encode())]).spawn(5)
        level, moves, gaps, wicks, volumes = (np.random.default_rng(seed) for seed in seeds)
        size = len(sessions)
        close = level.uniform(50, 3000) * np.exp(
            np.cumsum(moves.normal(0.0003, DAILY_VOLATILITY, size))
        )
        window = slice(first, size)  # every series drawn whole, then only the window computed
        close = close[window]
        open_ = close * np.exp(gaps.normal(0, DAILY_VOLATILITY / 3, size)[window])
        wick = np.abs(wicks.normal(0, DAILY_VOLATILITY / 2, (size, 2)))[window]
        volume = volumes.integers(100_000, 5_000_000, size).astype("float64")[window]
        return pd.DataFrame(
            {
                "date": sessions[window],
                "open": open_.round(2),
                "high": (np.maximum(open_, close) * (1 + wick[:, 0])).round(2),
                "low": (np.minimum(open_, close) * (1 - wick[:, 1])).round(2),
                "close": close.round(2),
                "adj_close": close.round(2),
                "volume": volume,
                "dividends": 0.0,
                "stock_splits": 0.0,
            },
            columns=BRONZE_INDEX,
        )

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        """The ticker's bars from start to end inclusive."""
        sessions = _sessions_to(pd.Timestamp(end))
        first = int(sessions.searchsorted(pd.Timestamp(start)))
        if first == len(sessions):
            raise NoDataError(f"{ticker}: no synthetic sessions between {start} and {end}")
        return self._path(ticker, sessions, first)  # its columns are BRONZE_COLUMNS, in order


@lru_cache(maxsize=8)
def _sessions_to(end: pd.Timestamp) -> pd.DatetimeIndex:
    """Every session from ORIGIN to end (the same few ends are asked for every ticker of a run)."""
    return nse_sessions(ORIGIN, max(end, pd.Timestamp(ORIGIN)))
