"""Helpers the benchmarks share: synthetic prices, a project copy, timing a child process."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from stock_pipeline.pipelines.features.indicators import CONTRACT_INDICATORS

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SEED_INDICATORS = CONTRACT_INDICATORS  # the seed computed exactly the contract's columns


def synthetic_prices(tickers: int, sessions: int, seed: int = 0) -> pd.DataFrame:
    """Random-walk OHLCV for `tickers` x `sessions` business days, sorted by ticker then date."""
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0003, 0.015, (tickers, sessions))
    close = 100 * np.exp(np.cumsum(returns, axis=1)).ravel()
    open_ = close * (1 + rng.normal(0, 0.003, close.size))
    spread = np.abs(rng.normal(0, 0.006, close.size))
    return pd.DataFrame(
        {
            "ticker": np.repeat([f"T{i:04d}.NS" for i in range(tickers)], sessions),
            "date": np.tile(pd.bdate_range("2014-01-01", periods=sessions).to_numpy(), tickers),
            "open": open_,
            "high": np.maximum(open_, close) * (1 + spread),
            "low": np.minimum(open_, close) * (1 - spread),
            "close": close,
            "adj_close": close * 0.98,
            "volume": rng.integers(10_000, 5_000_000, close.size),
        }
    )


def project_copy(target: Path) -> Path:
    """conf/, src/, .telemetry and pyproject of the project in a scratch folder."""
    shutil.copytree(PROJECT_ROOT / "conf", target / "conf", ignore=shutil.ignore_patterns("local"))
    (target / "conf" / "local").mkdir(exist_ok=True)
    (target / "logs").mkdir(exist_ok=True)  # conf/logging.yml writes logs/pipeline.log
    shutil.copytree(
        PROJECT_ROOT / "src", target / "src", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, target / name)
    return target


def timed_child(command: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """Run a command to completion; its wall seconds and peak resident memory in GiB."""
    env = os.environ | {"KEDRO_DISABLE_TELEMETRY": "true"}
    started = time.perf_counter()
    wrapper = [sys.executable, str(Path(__file__).with_name("_peak.py")), *command]
    result = subprocess.run(wrapper, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    peak_kib = int(result.stderr.strip().splitlines()[-1].split("=")[1])
    return wall, peak_kib / 1024**2


def print_table(title: str, rows: list[tuple[str, float, float]], goal: str) -> None:
    """A plain table of wall seconds and peak GiB per method."""
    print(f"\n{title}\n{'method':<44}{'wall s':>10}{'peak GiB':>10}")
    for name, wall, peak in rows:
        print(f"{name:<44}{wall:>10.2f}{peak:>10.2f}")
    print(goal)
