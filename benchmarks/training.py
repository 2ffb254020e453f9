"""Training speed and out-of-sample quality at the issue's size: 60 tickers x 10 years.

Run: `.venv/bin/python benchmarks/training.py [--tickers 60 --years 10 --phi 0.2]`. Goal (issue 16):
the training pipeline (walk-forward with baselines, final fit, MLflow registration, predictions)
in under a minute. Prints the time of each stage and every fold's rank IC against the baselines.
The market is simulated: daily returns AR(1) with coefficient `phi` (0 = pure noise), through the
project's own features pipeline.
"""

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from stock_pipeline.pipelines.features.nodes import compute_features
from stock_pipeline.pipelines.training import create_pipeline
from stock_pipeline.pipelines.training.registry import ModelRegistryDataset
from stock_pipeline.trading_calendar import nse_sessions

ROOT = Path(__file__).resolve().parents[1]
SESSIONS_PER_YEAR = 252
RUN_CONTEXT = {"run_id": "benchmark", "started_at": "2024-01-01T00:00:00+00:00", "env": "bench"}
SCORED = ["model", "zero", "historical_mean", "ridge"]


def parameters(name: str) -> dict:
    """A section of conf/base/parameters_<name>.yml."""
    return yaml.safe_load((ROOT / "conf" / "base" / f"parameters_{name}.yml").read_text())[name]


def simulated_prices(tickers: int, sessions: int, phi: float, seed: int = 0) -> pd.DataFrame:
    """OHLCV on NSE sessions whose daily returns are AR(1) with coefficient phi."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 0.02, (sessions, tickers))
    returns = np.empty_like(noise)
    returns[0] = noise[0]
    for day in range(1, sessions):
        returns[day] = phi * returns[day - 1] + noise[day]
    close = (rng.uniform(50, 2000, tickers) * np.exp(np.cumsum(returns, axis=0))).T.ravel()
    open_ = close * np.exp(rng.normal(0, 0.007, close.size))
    wick = np.abs(rng.normal(0, 0.01, (2, close.size)))
    return pd.DataFrame(
        {
            "ticker": np.repeat([f"T{i:03d}.NS" for i in range(tickers)], sessions),
            "date": np.tile(nse_sessions("2010-01-01", "2030-12-31")[:sessions], tickers),
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wick[0]),
            "low": np.minimum(open_, close) * (1 - wick[1]),
            "close": close,
            "adj_close": close,
            "volume": rng.integers(10_000, 5_000_000, close.size).astype("float64"),
        }
    )


def catalog_for(features: pd.DataFrame, store: Path) -> DataCatalog:
    """Everything in memory but the MLflow store (a fresh SQLite file) and its artifacts."""
    registry = ModelRegistryDataset(f"sqlite:///{store / 'mlflow.db'}", str(store / "artifacts"))
    datasets = {
        "features": MemoryDataset(features),
        "retrain_request": MemoryDataset({"requested": False}),
        "retrain_ledger_stored": MemoryDataset({}),
        "model_registry": registry,
        "params:training": MemoryDataset(parameters("training")),
        "run_context": MemoryDataset(RUN_CONTEXT),
    }
    return DataCatalog(datasets)


class StageTimes(logging.Handler):
    """Collects when each node starts, from Kedro's log records."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: list[tuple[str, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Running node: "):
            self.starts.append((message.split(":")[1].strip(), time.perf_counter()))


def main() -> None:
    """Simulate, compute features, run the training pipeline, print times and folds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=60)
    parser.add_argument("--years", type=float, default=10)
    parser.add_argument("--phi", type=float, default=0.2, help="AR(1) coefficient; 0 = noise")
    args = parser.parse_args()
    sessions = int(args.years * SESSIONS_PER_YEAR)

    started = time.perf_counter()
    prices = simulated_prices(args.tickers, sessions, args.phi)
    features = compute_features(prices, parameters("features"))
    print(
        f"market: {args.tickers} tickers x {sessions} sessions, AR(1) phi={args.phi}: "
        f"{len(features):,} feature rows in {time.perf_counter() - started:.1f} s"
    )

    stages = StageTimes()
    kedro_logger = logging.getLogger("kedro")
    kedro_logger.handlers, kedro_logger.propagate = [stages], False
    kedro_logger.setLevel(logging.INFO)
    logging.getLogger("stock_pipeline").setLevel(logging.WARNING)  # the table below says it all
    with tempfile.TemporaryDirectory() as store:
        catalog = catalog_for(features, Path(store))
        started = time.perf_counter()
        outputs = SequentialRunner().run(create_pipeline(), catalog)
        total = time.perf_counter() - started
    ends = [*(t for _, t in stages.starts[1:]), started + total]
    for (name, start), end in zip(stages.starts, ends, strict=True):
        print(f"  {name:<36} {end - start:6.2f} s")
    verdict = "OK" if total < 60 else "SLOWER THAN THE 60 s GOAL"
    print(
        f"training pipeline: {total:.1f} s ({verdict}; decide_training includes creating the MLflow store)"
    )

    metrics = (
        outputs["training_metrics"].load()
        if hasattr(outputs["training_metrics"], "load")
        else outputs["training_metrics"]
    )
    rows = [
        {
            "fold": f["fold"],
            "test": f"{f['test_start']}..{f['test_end']}",
            "model": f["model"]["oos_rank_ic"],
            **{b: f["baselines"][b]["oos_rank_ic"] for b in SCORED[1:]},
            "hit_rate": f["model"]["hit_rate"],
            "decile_spread": f["model"]["top_bottom_decile_return"],
        }
        for f in metrics["folds"]
    ]
    rows.append(
        {
            "fold": "all",
            "test": f"{metrics['model']['dates']} dates",
            "model": metrics["model"]["oos_rank_ic"],
            **{b: metrics["baselines"][b]["oos_rank_ic"] for b in SCORED[1:]},
            "hit_rate": metrics["model"]["hit_rate"],
            "decile_spread": metrics["model"]["top_bottom_decile_return"],
        }
    )
    print(
        "\nout-of-sample rank IC per fold (model and baselines), model hit rate and decile spread:"
    )
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"model rank IC t-stat: {metrics['model']['oos_rank_ic_tstat']:.1f}")


if __name__ == "__main__":
    sys.exit(main())
