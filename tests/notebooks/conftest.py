"""A temporary copy of the project (conf, notebooks) whose catalog holds a small generated dataset."""

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import DataCatalog

from stock_pipeline.contract import BAR_VALUES, FLAG_COLUMNS
from stock_pipeline.trading_calendar import nse_sessions

TICKERS = ["INFY.NS", "TCS.NS"]


@pytest.fixture
def report_project(
    tmp_path: Path, project_root: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], DataCatalog]:
    """A project copy that is the working directory (the package comes from the virtualenv); calling it gives its catalog."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "src").mkdir()  # the package itself is installed in the virtualenv
    shutil.copytree(project_root / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    (project / "logs").mkdir()  # conf/logging.yml writes logs/pipeline.log
    shutil.copytree(project_root / "notebooks", project / "notebooks")
    shutil.copy(project_root / "pyproject.toml", project)
    monkeypatch.chdir(project)
    bootstrap_project(project)
    return lambda: KedroSession.create(project_path=project).load_context().catalog


@pytest.fixture
def clean_prices() -> pd.DataFrame:
    """Silver rows for every ticker: a random walk on NSE sessions, a few filled and outlier bars."""
    sessions = 90
    dates = nse_sessions("2024-01-01", "2024-12-31")[:sessions]
    rng = np.random.default_rng(7)
    frames = []
    for number, ticker in enumerate(TICKERS):
        close = 1000 * (number + 1) * np.exp(np.cumsum(rng.normal(0, 0.01, sessions)))
        frame = pd.DataFrame(
            {
                "ticker": ticker,
                "date": dates,
                "open": close * 0.998,
                "high": close * 1.01,
                "low": close * 0.99,
                "close": close,
                "adj_close": close,
                "volume": rng.integers(1_000, 50_000, sessions).astype(float),
            }
        )
        for flag in FLAG_COLUMNS:
            frame[flag] = False
        frame.loc[[10, 11], "is_filled"] = True
        frame.loc[40, "is_outlier"] = True
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def features(clean_prices: pd.DataFrame) -> pd.DataFrame:
    """Gold rows: the clean prices with the contract's indicators, sorted by ticker then date."""
    by_ticker = clean_prices.groupby("ticker")["close"]
    flags = [column for column in clean_prices.columns if column.startswith("is_")]
    features = clean_prices.drop(columns=flags).assign(
        daily_return=by_ticker.pct_change().fillna(0.0),
        sma_20=by_ticker.transform(lambda close: close.rolling(20, min_periods=1).mean()),
        sma_50=by_ticker.transform(lambda close: close.rolling(50, min_periods=1).mean()),
        rsi_14=50.0,
        macd=0.0,
        macd_signal=0.0,
        macd_hist=0.0,
        volatility=0.01,
    )
    return features.sort_values(["ticker", "date"], ignore_index=True)


@pytest.fixture
def quarantine(clean_prices: pd.DataFrame) -> pd.DataFrame:
    """Rejected rows of INFY.NS: an OHLC violation, a duplicate and an unparsable date."""
    rows = clean_prices[clean_prices["ticker"] == "INFY.NS"].iloc[[5, 20]]
    quarantine = pd.DataFrame(
        {
            "ticker": "INFY.NS",
            "date": [*rows["date"], pd.NaT],
            "stage": "validation",
            "rule": ["ohlc_consistency", "duplicate_date", "unparsable_value"],
            "reason": ["high < low", "an older duplicate of the date", "date 'n/a' is not a date"],
            "raw_date": [*rows["date"].dt.strftime("%Y-%m-%d"), "n/a"],
            "run_id": "earlier-run",
            "quarantined_at": pd.Timestamp("2024-06-01T10:00:00Z"),
        }
    )
    for column in BAR_VALUES:
        quarantine[f"raw_{column}"] = "1.0"
    return quarantine


@pytest.fixture
def quality_report_of() -> Callable[[pd.DataFrame, pd.DataFrame], dict]:
    """Builds the cleaning pipeline's report shape for given clean and quarantined rows."""
    return _quality_report


def _quality_report(clean: pd.DataFrame, quarantine: pd.DataFrame) -> dict:
    """The quality report of the generated rows."""
    tickers = {}
    for ticker, rows in clean.groupby("ticker"):
        rejected = quarantine[quarantine["ticker"] == ticker]["rule"].value_counts()
        tickers[ticker] = {
            "total_rows": len(rows) + int(rejected.sum()),
            "clean_rows": len(rows),
            "quarantined_rows": int(rejected.sum()),
            "date_range": {
                "start": rows["date"].min().date().isoformat(),
                "end": rows["date"].max().date().isoformat(),
            },
            "completeness": {
                "null_counts": dict.fromkeys(BAR_VALUES, 2),
                "null_percentages": dict.fromkeys(BAR_VALUES, 2.2),
            },
            "ohlc_validation": {"violations": int(rejected.get("ohlc_consistency", 0))},
            "outliers": {"count": int(rows["is_outlier"].sum())},
            "quarantine_by_rule": {rule: int(count) for rule, count in rejected.items()},
            "freshness": {"hours_since_expected": 12.5, "stale": False},
            "quality_score": 90.0 if len(rejected) else 99.0,
            "status": "ok",
            "reason": None,
        }
    return {
        "run_id": "earlier-run",
        "generated_at": "2024-06-01T10:00:00+00:00",
        "summary": {"tickers": len(tickers), "rows_quarantined": len(quarantine)},
        "tickers": tickers,
    }
