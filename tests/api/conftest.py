"""A temporary project root with small generated pipeline outputs, a migrated SQLite DB, and the app."""

import json
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from deltalake import write_deltalake
from fastapi import FastAPI
from fastapi.testclient import TestClient

from stock_pipeline.api.config import load_config
from stock_pipeline.api.main import create_app
from stock_pipeline.contract import PIPELINE_RUNS, ticker_bucket
from stock_pipeline.datasets import AppendParquetDataset
from stock_pipeline.db import upgrade_database
from stock_pipeline.trading_calendar import last_closed_session, nse_sessions
from tests.api.training_outputs import write_training_outputs

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TICKERS = ("BAJAJ-AUTO.NS", "INFY.NS", "M&M.NS")
SESSIONS = 80
FEATURES = "data/04_feature/features"  # a Delta table folder
API_PARAMETERS = """
api:
  max_staleness_hours: 36
  reload_interval_seconds: 0.05
  cors_origins: []
  metrics_default_runs: 20
"""


def session_dates(last: date, count: int) -> pd.DatetimeIndex:
    """The `count` NSE sessions up to and including `last`."""
    return nse_sessions(last - timedelta(days=3 * count), last)[-count:]


def make_features(last: date, tickers: tuple[str, ...] = TICKERS) -> pd.DataFrame:
    """A features frame with every contract column, ending at `last`, sorted by ticker and date."""
    rng = np.random.default_rng(3)
    dates = session_dates(last, SESSIONS)
    frames = []
    for ticker in tickers:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(dates))))
        frame = pd.DataFrame({"ticker": ticker, "date": dates, "close": close})
        frame["open"] = close * 0.999
        frame["high"] = close * 1.01
        frame["low"] = close * 0.98
        frame["adj_close"] = close
        frame["volume"] = rng.integers(1000, 100_000, len(dates))
        frame["daily_return"] = frame["close"].pct_change()
        frame["sma_20"] = frame["close"].rolling(20).mean()
        frame["sma_50"] = frame["close"].rolling(50).mean()
        frame["rsi_14"] = rng.uniform(20, 80, len(dates))
        frame["macd"] = rng.normal(0, 1, len(dates))
        frame["macd_signal"] = rng.normal(0, 1, len(dates))
        frame["macd_hist"] = frame["macd"] - frame["macd_signal"]
        frame["volatility"] = rng.uniform(0.1, 0.4, len(dates))
        frames.append(frame)
    columns = ["ticker", "date", "open", "high", "low", "close", "adj_close", "volume"]
    indicators = ["daily_return", "sma_20", "sma_50", "rsi_14", "macd", "macd_signal"]
    return pd.concat(frames)[[*columns, *indicators, "macd_hist", "volatility"]]


def quality_report(tickers: tuple[str, ...]) -> dict:
    """A quality report in the cleaning pipeline's format."""
    entry = {
        "total_rows": SESSIONS + 2,
        "clean_rows": SESSIONS,
        "date_range": {"start": "2026-01-01", "end": "2026-04-30"},
        "completeness": {"missing_sessions": 0},
        "ohlc_validation": {"violations": 2},
        "outliers": {"count": 1},
        "quarantine_by_rule": {"ohlc_consistency": 2},
        "freshness": {"stale": False, "hours_since_expected": 0.0},
        "quality_score": 97.5,
        "status": "ok",
        "reason": None,
    }
    return {
        "run_id": "run-2",
        "generated_at": "2026-04-30T18:00:00+00:00",
        "summary": {"tickers": len(tickers)},
        "tickers": {ticker: entry for ticker in tickers},
    }


def drift_results(last: date) -> pd.DataFrame:
    """Two as_of dates of drift tests for INFY.NS and M&M.NS; volatility drifted on the last one
    (M&M.NS's by both signals; INFY.NS's rows are as an earlier version stored them, no kind)."""
    rows = []
    for as_of in (last - timedelta(days=7), last):
        for ticker in ("INFY.NS", "M&M.NS"):
            for feature in ("daily_return", "volatility"):
                drifted = as_of == last and feature == "volatility"
                rows.append(
                    {
                        "as_of": pd.Timestamp(as_of),
                        "ticker": ticker,
                        "feature": feature,
                        "method": "calibrated",
                        "statistic": 3.0 if drifted else 1.0,
                        "p_value": 0.001 if drifted else 0.6,
                        "shock_statistic": 2.5 if drifted else 1.0,
                        "shock_p_value": 0.004 if drifted else 0.5,
                        "alpha": 0.05,
                        "baseline_sample_size": 60,
                        "current_sample_size": 7,
                        "drift": drifted,
                        "kind": "shock+regime" if as_of == last and ticker == "M&M.NS" else None,
                        "run_id": "run-2",
                    }
                )
    return pd.DataFrame(rows)


def write_runs(url: str) -> None:
    """Three recorded runs: two successes and one failure."""
    start = datetime(2026, 4, 28, 18, tzinfo=UTC)
    rows = [
        ("run-0", "success", 0, 100.0, 5000),
        ("run-1", "failed", 1, 20.0, 100),
        ("run-2", "success", 2, 50.0, 5000),
    ]
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for run_id, status, day, seconds, rows_out in rows:
            started = start + timedelta(days=day)
            connection.execute(
                PIPELINE_RUNS.insert().values(
                    run_id=run_id,
                    pipeline="daily",
                    env="local",
                    status=status,
                    started_at=started,
                    finished_at=started + timedelta(seconds=seconds),
                    duration_seconds=seconds,
                    node_count=10,
                    rows_in=rows_out,
                    rows_out=rows_out,
                    tickers_ok=3,
                    tickers_failed=0,
                    record={"run_id": run_id},
                )
            )
    engine.dispose()


def write_database(url: str, features: pd.DataFrame) -> None:
    """Migrate the database and store the features and the runs."""
    upgrade_database(url)
    engine = sa.create_engine(url)
    features.to_sql("stock_features", engine, if_exists="append", index=False)
    engine.dispose()
    write_runs(url)


def write_features(frame: pd.DataFrame, project: Path) -> None:
    """Replace the project's whole feature table with `frame` (one new version)."""
    rows = frame.reset_index(drop=True)
    rows = rows.assign(
        date=rows["date"].astype("datetime64[us]"), bucket=rows["ticker"].map(ticker_bucket)
    )
    (project / FEATURES).mkdir(parents=True, exist_ok=True)
    write_deltalake(
        project / FEATURES, rows, mode="overwrite", partition_by=["bucket"], schema_mode="overwrite"
    )


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write a Parquet file, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


@pytest.fixture
def tickers() -> tuple[str, ...]:
    """The tickers of the generated feature data."""
    return TICKERS


@pytest.fixture
def sessions() -> int:
    """Rows per ticker in the generated feature data."""
    return SESSIONS


@pytest.fixture
def fresh_date() -> date:
    """The last closed NSE session: data ending there is fresh."""
    return last_closed_session(datetime.now(UTC)).date()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_date: date) -> Path:
    """A project root with conf/, fresh features, reports, drift results and a SQLite DB."""
    for env in ("base", "local"):
        (tmp_path / "conf" / env).mkdir(parents=True)
    (tmp_path / "conf/base/parameters_api.yml").write_text(API_PARAMETERS)
    for catalog in (PROJECT_ROOT / "conf/base").glob("catalog*.yml"):  # the project's own paths
        shutil.copy(catalog, tmp_path / "conf/base" / catalog.name)
    features = make_features(fresh_date)
    write_features(features, tmp_path)
    quality = tmp_path / "data/08_reporting/quality/quality_report.json"
    quality.parent.mkdir(parents=True)
    quality.write_text(json.dumps(quality_report(TICKERS)))
    drift_dir = tmp_path / "data/08_reporting/drift"
    AppendParquetDataset(str(drift_dir / "drift_results"), replace_on=["as_of"]).save(
        drift_results(fresh_date)
    )
    advice = {"tickers": {"M&M.NS": {"recommendation": "retrain", "reason": "volatility drifted"}}}
    (drift_dir / "recommendations.json").write_text(json.dumps(advice))
    url = f"sqlite:///{tmp_path / 'data/stock_pipeline.db'}"
    write_database(url, features)
    write_training_outputs(tmp_path, features, TICKERS)
    monkeypatch.setenv("STOCK_PIPELINE_DB_URL", url)
    for name in ("STOCK_PIPELINE_API_KEY", "KEDRO_ENV", "STOCK_PIPELINE_PROJECT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def make_client(project: Path) -> Iterator[Callable[..., TestClient]]:
    """Build a started TestClient for the project, optionally with environment overrides."""
    clients: list[TestClient] = []

    def build(root: Path = project) -> TestClient:
        client = TestClient(create_app(load_config(root)))
        clients.append(client.__enter__())
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    """A started TestClient on the fresh project."""
    return make_client()


@pytest.fixture
def app(project: Path) -> FastAPI:
    """The app on the fresh project (not started)."""
    return create_app(load_config(project))
