"""Feature frames for the drift tests: a seeded simulated market and the bundled real sample."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[3]
RUN_CONTEXT = {"run_id": "run-1", "started_at": "2024-06-03T18:00:00+00:00"}


def features_of(prices: pd.DataFrame) -> pd.DataFrame:
    """The contract's feature columns for one ticker's prices, warm-up rows dropped."""
    close = prices["close"].to_numpy(dtype="float64")
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    returns = prices["close"].pct_change()
    return (
        prices.assign(
            daily_return=returns,
            sma_20=talib.SMA(close, 20),
            sma_50=talib.SMA(close, 50),
            rsi_14=talib.RSI(close, 14),
            macd=macd,
            macd_signal=signal,
            macd_hist=hist,
            volatility=returns.rolling(20).std(ddof=1),
        )
        .dropna()
        .reset_index(drop=True)
    )


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


@pytest.fixture
def params() -> dict:
    """The project's drift parameters (conf/base)."""
    return yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_drift.yml").read_text())["drift"]


@pytest.fixture(scope="session")
def sample_features() -> pd.DataFrame:
    """Features of the bundled real sample (8 NSE tickers, 2019-04-01 to 2021-03-31)."""
    frames = []
    for path in sorted((PROJECT_ROOT / "data/sample/prices").glob("*.csv")):
        skip = [1, 2] if path.read_text().startswith("Price") else None
        prices = pd.read_csv(path, skiprows=skip).rename(columns={"Price": "Date"})
        prices.columns = [column.lower().replace(" ", "_") for column in prices.columns]
        prices = prices.assign(
            ticker=path.stem,
            date=pd.to_datetime(prices["date"]),
            adj_close=prices.get("adj_close", prices["close"]),
        )
        frames.append(features_of(prices.astype({"volume": "float64"})))
    return pd.concat(frames, ignore_index=True)
