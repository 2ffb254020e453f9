"""Ingestion spread over a dask cluster against the local engine, under one rate limit for Yahoo.

A first run (empty bronze, cold yfinance caches) of `--tickers` symbols through the real
`ingest_prices` and YFinanceSource against the local Yahoo stub (a child process answering each
chart request after `--delay`), three ways: the local engine with no rate limit (what the stub
takes), the local engine with `ingestion.rate_limit`, and `compute.engine: dask` on a
`dask scheduler` with two `dask worker` processes this script starts, with the same limit. From
the stub's own record of when each request arrived it prints the achieved request rate, the most
requests in any 1 s window against the configured rate + burst, and the most requests in flight
against max_concurrent; and whether each run's bronze equals the local limited run's.

The stub costs yfinance one more request per ticker than Yahoo does: yfinance keeps Yahoo's
cookie, but not one set by 127.0.0.1, so it asks again for each chart.

    .venv/bin/python benchmarks/ingestion_cluster.py [--tickers 500] [--rate 40] [--burst 20]
"""

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import urllib.request
import warnings
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from distributed import Client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PROJECT_ROOT
from ingestion import stub_process
from scale import start_cluster

sys.path.insert(0, str(PROJECT_ROOT))
from stock_pipeline.engine import close_clients
from stock_pipeline.pipelines.ingestion import nodes
from tests.sources.yahoo_stub import STATS_PATH, reset_yfinance_per_process, stub_source


def params(tickers: list[str], args: argparse.Namespace, limited: bool) -> dict[str, Any]:
    """Ingestion parameters for the stub's tickers, with or without the rate limit."""
    rate = {"requests_per_second": args.rate, "burst": args.burst}
    return {
        "source": "yfinance",
        "interval": "1d",
        "tickers": tickers,
        "start_date": "2024-01-01",
        "end_date": "2024-06-28",
        "max_workers": args.max_workers,
        "max_failed_ratio": 0.0,
        "overlap_sessions": 5,
        "refresh_tolerance": 0.0005,
        "timeout_seconds": 30,
        "retry": {"attempts": 3, "initial_wait_seconds": 1.0, "jitter_seconds": 0.5},
        "rate_limit": rate | {"max_concurrent": args.max_concurrent} if limited else None,
    }


def most_in_window(times: np.ndarray, window: float = 1.0) -> int:
    """The most requests in any half-open window [t, t + window)."""
    stamps = np.sort(times)
    return int((np.searchsorted(stamps, stamps + window) - np.arange(len(stamps))).max())


def forget_yfinance(caches: Path, compute: dict) -> None:
    """Empty yfinance caches here and, with the dask engine, on every worker."""
    reset_yfinance_per_process(caches)
    if compute["engine"] == "dask":
        with Client(compute["dask"]["address"]) as client:
            client.wait_for_workers(2)
            client.run(reset_yfinance_per_process, caches)


def run(
    tickers: list[str], settings: dict, compute: dict, args: argparse.Namespace, caches: Path
) -> dict[str, Any]:
    """One ingest_prices call against a fresh stub process; what it wrote and what the stub saw.

    The stub's process is forked before this process has any dask client (and its threads)."""
    with stub_process(tickers, args.delay) as base_url:
        nodes.build_source = partial(stub_source, base_url)  # travels to the workers too
        forget_yfinance(caches, compute)
        context = {"run_id": "benchmark", "started_at": datetime.now(UTC).isoformat()}
        started = time.perf_counter()
        changed, report = nodes.ingest_prices({}, settings, context, compute)
        wall = time.perf_counter() - started
        with urllib.request.urlopen(f"{base_url}{STATS_PATH}") as answer:
            stats = json.load(answer)
    arrivals = np.array([at for at, _ in stats["arrivals"]])
    return {
        "wall": wall,
        "requests": len(arrivals),
        "rate": (len(arrivals) - 1) / (arrivals.max() - arrivals.min()),
        "most_per_second": most_in_window(arrivals),
        "most_in_flight": stats["most_in_flight"],
        "senders": len({sender for _, sender in stats["arrivals"]}),
        "counts": report["counts"],
        "changed": changed,
    }


def same_bronze(one: dict[str, pd.DataFrame], other: dict[str, pd.DataFrame]) -> bool:
    """True when both runs would write the same files, byte for byte."""
    return one.keys() == other.keys() and all(one[key].equals(other[key]) for key in one)


def main() -> None:
    """The three runs, then the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second")
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--max-concurrent", type=int, default=8)
    parser.add_argument("--max-workers", type=int, default=8, help="threads per process/task")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds per chart answer")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", module="yfinance")  # its pandas deprecation notices
    tickers = [f"B{number:04d}.NS" for number in range(args.tickers)]
    env = os.environ | {"PYTHONPATH": f"{PROJECT_ROOT / 'src'}{os.pathsep}{PROJECT_ROOT}"}
    address, cluster = start_cluster(PROJECT_ROOT, env)
    rows = {}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            local, dask = {"engine": "local"}, {"engine": "dask", "dask": {"address": address}}
            for name, limited, compute in (
                ("local, no rate limit", False, local),
                ("local, rate limit", True, local),
                ("dask, 2 workers, rate limit", True, dask),  # last: see run()
            ):
                caches = Path(scratch) / name.replace(" ", "").replace(",", "-")
                rows[name] = run(tickers, params(tickers, args, limited), compute, args, caches)
    finally:
        close_clients()
        for process in reversed(cluster):
            process.terminate()
            process.wait(timeout=30)

    reference = rows["local, rate limit"]["changed"]
    print(
        f"\nFirst ingestion of {args.tickers} tickers from the Yahoo stub ({1000 * args.delay:.0f} "
        f"ms per chart answer), {args.max_workers} threads per process or task; rate limit "
        f"{args.rate:g}/s, burst {args.burst}, max_concurrent {args.max_concurrent} "
        f"(so at most {args.rate + args.burst:g} requests in any 1 s window). Shared 2-core machine."
    )
    print(
        f"{'run':<30}{'wall s':>8}{'requests':>10}{'req/s':>8}{'max in 1 s':>12}{'bound':>7}"
        f"{'in flight':>11}{'senders':>9}  same bronze  tickers"
    )
    for name, row in rows.items():
        bound = f"{args.rate + args.burst:g}" if "no rate" not in name else "-"
        print(
            f"{name:<30}{row['wall']:>8.1f}{row['requests']:>10}{row['rate']:>8.1f}"
            f"{row['most_per_second']:>12}{bound:>7}{row['most_in_flight']:>11}"
            f"{row['senders']:>9}  {'yes' if same_bronze(row['changed'], reference) else 'NO':<11}"
            f"  {row['counts']}"
        )


if __name__ == "__main__":
    main()
