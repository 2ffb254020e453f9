"""Feature frames for the drift tests: a seeded simulated market."""

from pathlib import Path

import numpy as np
import pandas as pd

from stock_pipeline.pipelines.features.indicators import CONTRACT_INDICATORS
from stock_pipeline.pipelines.features.nodes import compute_features

PROJECT_ROOT = Path(__file__).resolve().parents[3]
RUN_CONTEXT = {"run_id": "run-1", "started_at": "2024-06-03T18:00:00+00:00"}


def features_of(prices: pd.DataFrame) -> pd.DataFrame:
    """The contract's feature columns, computed by the project's features node, warm-up dropped."""
    return compute_features(prices, {"indicators": CONTRACT_INDICATORS})


def simulated_features(
    tickers: int = 20, sessions: int = 400, vol_factor: float = 1.0, seed: int = 3
) -> pd.DataFrame:
    """iid Gaussian returns for `tickers` tickers, the last 7 sessions' returns scaled."""
    rng = np.random.default_rng(seed)
    returns = rng.normal(0, 0.015, size=(sessions, tickers))
    returns[-7:] *= vol_factor
    closes = 100 * np.cumprod(1 + returns, axis=0)
    dates = pd.bdate_range("2019-01-01", periods=sessions)
    frames = [
        features_of(
            pd.DataFrame(
                {
                    "ticker": f"T{i:02d}.NS",
                    "date": dates,
                    "open": closes[:, i],
                    "high": closes[:, i],
                    "low": closes[:, i],
                    "close": closes[:, i],
                    "adj_close": closes[:, i],
                    "volume": 1000.0,
                }
            )
        )
        for i in range(tickers)
    ]
    return pd.concat(frames, ignore_index=True)
