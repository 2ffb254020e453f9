"""Feature frames for the drift tests: seeded simulated markets, calm or shocked in the last 7 sessions."""

from pathlib import Path

import numpy as np
import pandas as pd

from stock_pipeline.pipelines.features.indicators import CONTRACT_INDICATORS
from stock_pipeline.pipelines.features.nodes import compute_features

PROJECT_ROOT = Path(__file__).resolve().parents[3]
RUN_CONTEXT = {"run_id": "run-1", "started_at": "2024-06-03T18:00:00+00:00"}
# GARCH(1,1) with Student-t shocks: the median of the fits to the 25 nse_daily tickers
GARCH_ALPHA, GARCH_BETA, GARCH_DF, GARCH_VOL = 0.07, 0.91, 5, 0.019


def features_of(prices: pd.DataFrame) -> pd.DataFrame:
    """The contract's feature columns, computed by the project's features node, warm-up dropped."""
    return compute_features(prices, {"indicators": CONTRACT_INDICATORS})


def garch_t_returns(sessions: int, tickers: int, rng: np.random.Generator) -> np.ndarray:
    """Daily returns (sessions x tickers) of a GARCH(1,1) with unit-variance Student-t shocks."""
    shocks = rng.standard_t(GARCH_DF, (sessions, tickers)) / np.sqrt(GARCH_DF / (GARCH_DF - 2))
    omega = (1 - GARCH_ALPHA - GARCH_BETA) * GARCH_VOL**2
    variance = np.full(tickers, GARCH_VOL**2)
    returns = np.empty_like(shocks)
    for day in range(sessions):
        returns[day] = np.sqrt(variance) * shocks[day]
        variance = omega + GARCH_ALPHA * returns[day] ** 2 + GARCH_BETA * variance
    return returns


def simulated_features(
    tickers: int = 20,
    sessions: int = 400,
    vol_factor: float = 1.0,
    seed: int = 3,
    garch: bool = False,
    shocked: int | None = None,
    vol_path: np.ndarray | None = None,
) -> pd.DataFrame:
    """iid Gaussian (or GARCH-t) returns; the first `shocked` tickers' (all: None) last 7 scaled
    by `vol_factor`, or every session by `vol_path` (one factor per session) when it is given."""
    rng = np.random.default_rng(seed)
    returns = (
        garch_t_returns(sessions, tickers, rng)
        if garch
        else rng.normal(0, 0.015, size=(sessions, tickers))
    )
    if vol_path is None:
        vol_path = np.where(np.arange(sessions) >= sessions - 7, vol_factor, 1.0)
    returns[:, :shocked] *= np.asarray(vol_path, dtype="float64")[:, None]
    closes = 100 * np.cumprod(1 + returns, axis=0)
    dates = pd.bdate_range("2019-01-01", periods=sessions)
    return features_of(
        pd.DataFrame(
            {
                "ticker": np.repeat([f"T{i:03d}.NS" for i in range(tickers)], sessions),
                "date": np.tile(dates, tickers),
                "open": closes.T.ravel(),
                "high": closes.T.ravel(),
                "low": closes.T.ravel(),
                "close": closes.T.ravel(),
                "adj_close": closes.T.ravel(),
                "volume": 1000.0,
            }
        )
    )
