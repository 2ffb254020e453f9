"""Ingestion benchmark: 60 tickers from a local Yahoo stub that answers every chart request in 200 ms.

The real `ingest_prices` runs with the real YFinanceSource (yfinance and curl_cffi, pointed
at the stub the way tests/sources does it, through LocalYahooSession) on an empty bronze layer
(a first run: each ticker's whole window since ingestion.start_date), with max_workers=8 and with
max_workers=1, with no rate limit (benchmarks/ingestion_cluster.py measures the limit), side by
side with the seed's 120 s for 60 tickers. The stub is a threaded HTTP server (tests/sources/yahoo_stub.py) in a child process, so that its work does not compete with
the fetching threads for the GIL; it draws realistic daily NSE chart bodies (meta, timestamps,
quote, adjclose) for the asked window. yfinance asks each ticker's timezone once (one more chart request) and caches it on
disk: "cold" rows start with an empty cache, as a first run on a new machine does, "warm" rows with
the cache filled, as every later cron run does. The last row is an incremental rerun: the bronze
of the first run is stored, so each ticker asks only for the overlap.

Run it from the project root:

    .venv/bin/python benchmarks/ingestion.py [--tickers 60] [--delay 0.2]
"""

import argparse
import json
import logging
import multiprocessing
import sys
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT))
from tests.sources.yahoo_stub import install_stub, reset_yfinance, stub_server, stub_source

SEED_SECONDS = 120.0  # the seed's ingestion of 60 tickers
SEED_TICKERS = 60


def ingestion_params(tickers: int, workers: int) -> dict[str, Any]:
    """conf/base's ingestion parameters: Yahoo, the first `tickers` symbols, `workers` in flight."""
    config = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_ingestion.yml").read_text())
    params = config["ingestion"]
    universe = params["tickers"]
    if tickers > len(universe):
        raise SystemExit(f"conf/base lists {len(universe)} tickers, fewer than {tickers}")
    return (
        params
        | {
            "source": "yfinance",
            "tickers": universe[:tickers],
            "max_workers": workers,
            "rate_limit": None,  # the pipeline's own speed; benchmarks/ingestion_cluster.py has the limit
        }
    )


def _serve(tickers: list[str], delay: float, ports: Any) -> None:
    """The child process: a stub with a synthetic market per ticker, until terminated."""
    with stub_server() as httpd:
        stub = install_stub(httpd, delay_seconds=delay)
        for ticker in tickers:
            stub.market(ticker)
        ports.put(httpd.server_port)
        while True:
            time.sleep(3600)


@contextmanager
def stub_process(tickers: list[str], delay: float) -> Iterator[str]:
    """The base URL of a Yahoo stub running in a child process."""
    context = multiprocessing.get_context("fork")
    ports = context.Queue()
    child = context.Process(target=_serve, args=(tickers, delay, ports), daemon=True)
    child.start()
    try:
        yield f"http://127.0.0.1:{ports.get(timeout=30)}"
    finally:
        child.terminate()
        child.join()


def chart_requests(base_url: str) -> int:
    """How many chart requests the stub has answered."""
    with urllib.request.urlopen(f"{base_url}/stub/stats") as answer:
        return json.load(answer)["chart_requests"]


def run_ingestion(
    params: dict[str, Any], delay: float, cache_dir: Path, warm: bool, stored: dict | None = None
) -> dict[str, Any]:
    """One ingest_prices call against a fresh stub; wall time, requests, rows, statuses.

    yfinance's timezone cache starts empty in `cache_dir` (cold), or holding every ticker (warm).
    """
    from yfinance import cache

    from stock_pipeline.pipelines.ingestion import nodes

    with stub_process(params["tickers"], delay) as base_url:
        nodes.build_source = partial(stub_source, base_url)
        reset_yfinance(cache_dir)
        if warm:
            for ticker in params["tickers"]:
                cache.get_tz_cache().store(ticker, "Asia/Kolkata")
        context = {"run_id": "benchmark", "started_at": datetime.now(UTC).isoformat()}
        loaders = {ticker: (lambda frame=frame: frame) for ticker, frame in (stored or {}).items()}
        started = time.perf_counter()
        changed, report = nodes.ingest_prices(loaders, params, context)
        wall = time.perf_counter() - started
        requests = chart_requests(base_url)
    return {
        "wall": wall,
        "requests": requests,
        "rows": sum(entry["rows_fetched"] for entry in report["tickers"].values()),
        "counts": report["counts"],
        "changed": changed,
        "window": report["window"],
    }


def main() -> None:
    """Run each side, then print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=60)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds per chart answer")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", module="yfinance")  # its pandas deprecation notices

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        caches = (Path(scratch) / f"tz-{run}" for run in range(5))
        for workers in (8, 1):
            params = ingestion_params(args.tickers, workers)
            cold = run_ingestion(params, args.delay, next(caches), warm=False)
            warm = run_ingestion(params, args.delay, next(caches), warm=True)
            rows += [(f"{workers} workers, first run, cold tz cache", cold)]
            rows += [(f"{workers} workers, first run, warm tz cache", warm)]
        params = ingestion_params(args.tickers, 8)
        rerun = run_ingestion(params, args.delay, next(caches), True, stored=cold["changed"])
        rows.append(("8 workers, rerun with nothing new (warm)", rerun))

    seed = SEED_SECONDS * args.tickers / SEED_TICKERS
    window = rows[0][1]["window"]
    print(
        f"\nIngestion of {args.tickers} tickers, daily bars {window['start']} to {window['end']}, "
        f"stub answering each chart request after {1000 * args.delay:.0f} ms"
    )
    header = (
        f"{'run':<44}{'wall s':>8}{'seed s':>8}{'vs seed':>9}{'requests':>10}{'rows':>9}  tickers"
    )
    print(header)
    for name, result in rows:
        print(
            f"{name:<44}{result['wall']:>8.2f}{seed:>8.0f}{seed / result['wall']:>8.1f}x"
            f"{result['requests']:>10}{result['rows']:>9}  {result['counts']}"
        )
    eight, one = rows[0][1]["wall"], rows[2][1]["wall"]
    print(f"8 workers vs 1 (cold): {one / eight:.1f}x faster; the seed took {seed:.0f} s")


if __name__ == "__main__":
    main()
