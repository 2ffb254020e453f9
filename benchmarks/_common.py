"""Helpers the benchmarks share: synthetic prices, a project copy, timing a child process."""

import os
import shutil
import statistics
import subprocess
import sys
import threading
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


PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(root: int) -> int:
    """Resident bytes of `root` and all its descendants, from /proc."""
    parents, rss = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(fields[1])
            rss[int(entry.name)] = int((entry / "statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    return sum(rss.get(pid, 0) for pid in tree)


def timed_child(command: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """Run a command to completion; its wall seconds and the peak resident memory in GiB of its
    process tree (worker processes included): the larger of the tree sampled every 50 ms and the
    largest single process's exact peak."""
    env = os.environ | {"KEDRO_DISABLE_TELEMETRY": "true"}
    started = time.perf_counter()
    wrapper = [sys.executable, str(Path(__file__).with_name("_peak.py")), *command]
    child = subprocess.Popen(
        wrapper, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    output, errors, sampled = communicate_sampling(child, (), 0.05)
    wall = time.perf_counter() - started
    if child.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{output[-2000:]}\n{errors[-4000:]}")
    largest = int(errors.strip().splitlines()[-1].split("=")[1]) * 1024
    return wall, max(sampled, largest) / 1024**3


def communicate_sampling(
    child: subprocess.Popen, also: tuple[int, ...], interval: float
) -> tuple[str, str, int]:
    """Wait for a child; its output, its errors and the peak resident bytes of its process tree
    plus the trees of `also`, summed and sampled every `interval` seconds."""
    peak = [0]

    def sample() -> None:
        while child.poll() is None:
            peak[0] = max(peak[0], sum(tree_rss(pid) for pid in (child.pid, *also)))
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, errors = child.communicate()
    sampler.join()
    return output, errors, peak[0]


def median_runs(
    commands: dict[str, tuple[list[str], Path | None]], repeat: int
) -> list[tuple[str, float, float]]:
    """Each command run `repeat` times, interleaved (a busy moment hits every method); per label
    the median wall seconds and the highest peak GiB."""
    runs: dict[str, list[tuple[float, float]]] = {label: [] for label in commands}
    for _ in range(repeat):
        for label, (command, cwd) in commands.items():
            runs[label].append(timed_child(command, cwd=cwd))
    return [
        (
            label,
            statistics.median(wall for wall, _ in timings),
            max(peak for _, peak in timings),
        )
        for label, timings in runs.items()
    ]


def print_table(title: str, rows: list[tuple[str, float, float]], goal: str) -> None:
    """A plain table of wall seconds and peak GiB per method."""
    print(f"\n{title}\n{'method':<44}{'wall s':>10}{'peak GiB':>10}")
    for name, wall, peak in rows:
        print(f"{name:<44}{wall:>10.2f}{peak:>10.2f}")
    print(goal)


def timed_tree(command: list[str], cwd: Path, also: tuple[int, ...] = ()) -> tuple[float, float]:
    """Run a command; its wall seconds and the peak resident GiB of its whole process tree plus
    the trees of `also` (the dask scheduler and workers)."""
    env = os.environ | {"KEDRO_DISABLE_TELEMETRY": "true"}
    started = time.perf_counter()
    child = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    _, errors, peak = communicate_sampling(child, also, 0.2)
    wall = time.perf_counter() - started
    if child.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{errors[-4000:]}")
    return wall, peak / 1024**3
