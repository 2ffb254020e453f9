"""Simulated markets for the training tests: gold-layer features of AR(1) or pure-noise returns."""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from stock_pipeline.pipelines.features.nodes import compute_features
from stock_pipeline.trading_calendar import nse_sessions

PROJECT_ROOT = Path(__file__).resolve().parents[3]
RUN_CONTEXT = {"run_id": "run-1", "started_at": "2024-06-03T18:00:00+00:00", "env": "test"}


def project_parameters(name: str) -> dict[str, Any]:
    """A top-level section of conf/base/parameters_<name>.yml."""
    text = (PROJECT_ROOT / "conf" / "base" / f"parameters_{name}.yml").read_text()
    return yaml.safe_load(text)[name]


def simulated_prices(
    tickers: int = 50, sessions: int = 1000, phi: float = 0.0, seed: int = 11, vol: float = 0.02
) -> pd.DataFrame:
    """Daily bars on NSE sessions whose returns follow r_t = phi * r_(t-1) + e_t, per ticker."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, vol, size=(sessions, tickers))
    returns = np.empty_like(noise)
    returns[0] = noise[0]
    for t in range(1, sessions):  # the recursion runs over sessions, vectorized across tickers
        returns[t] = phi * returns[t - 1] + noise[t]
    closes = rng.uniform(50, 2000, tickers) * np.exp(np.cumsum(returns, axis=0))
    dates = nse_sessions("2012-01-01", "2030-12-31")[:sessions]
    wick = np.abs(rng.normal(0, vol / 2, size=(2, sessions, tickers)))
    opens = closes * np.exp(rng.normal(0, vol / 3, size=(sessions, tickers)))
    frame = pd.DataFrame(
        {
            "ticker": np.repeat([f"T{i:03d}.NS" for i in range(tickers)], sessions),
            "date": np.tile(dates, tickers),
            "open": opens.T.ravel(),
            "high": (np.maximum(opens, closes) * (1 + wick[0])).T.ravel(),
            "low": (np.minimum(opens, closes) * (1 - wick[1])).T.ravel(),
            "close": closes.T.ravel(),
            "adj_close": closes.T.ravel(),
            "volume": rng.integers(10_000, 1_000_000, size=sessions * tickers).astype("float64"),
        }
    )
    return frame


def features_of(prices: pd.DataFrame) -> pd.DataFrame:
    """The gold layer of the prices, as the features pipeline's full rebuild computes it with the
    project's indicators."""
    return compute_features(prices, project_parameters("features"))


def simulated_features(**kwargs: Any) -> pd.DataFrame:
    """features_of(simulated_prices(**kwargs))."""
    return features_of(simulated_prices(**kwargs))
