"""API benchmark: 16 concurrent clients on /features/{ticker}?limit=250, the app vs a peer, then
the bulk download of the whole dataset as Parquet.

The app (`uvicorn stock_pipeline.api.main:app`) serves the features from memory; the peer is a minimal FastAPI
app that reads the Parquet (filtered to the ticker) on every request. Both serve the same file,
with the same number of uvicorn workers, and are loaded one after the other by the same lean
asyncio HTTP/1.1 client (keep-alive connections), then GET /features?format=parquet is timed.

By default the features come through the front door at the seed's scale: `kedro run
--pipelines=ingestion,cleaning,features` with the synthetic source over the base universe (65
tickers) and the last `--sessions` NSE sessions, in a temporary copy of the project. `--sample`
serves the bundled sample instead.

    .venv/bin/python benchmarks/api.py                    # 65 tickers x 1,000 sessions, 1 worker
    .venv/bin/python benchmarks/api.py --workers 2        # both cores
    .venv/bin/python benchmarks/api.py --sample
"""

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PROJECT_ROOT, project_copy

from stock_pipeline.trading_calendar import last_closed_session, nse_sessions
from stock_pipeline.versions import load_table

FEATURES = "data/04_feature/features"  # a Delta table folder
PEER_TABLE_ENV = "BENCH_PEER_TABLE"
QUIET = {"PYTHONWARNINGS": "ignore::UserWarning", "KEDRO_DISABLE_TELEMETRY": "true"}


def first_session(sessions: int) -> str:
    """The date `sessions` NSE sessions before the last closed one."""
    last = last_closed_session(datetime.now(UTC))
    return nse_sessions(last - timedelta(days=2 * sessions), last)[-sessions].date().isoformat()


def make_project(root: Path, sample: bool, sessions: int) -> str:
    """A project copy whose features pipeline has run; the environment the API should read."""
    project_copy(root)
    env = "sample" if sample else "local"
    command = [
        sys.executable,
        "-m",
        "kedro",
        "run",
        "--pipelines=ingestion,cleaning,features",
        f"--env={env}",
    ]
    if sample:
        (root / "data").mkdir(exist_ok=True)
        os.symlink(PROJECT_ROOT / "data/sample", root / "data/sample")
    else:
        command.append(
            f"--params=ingestion.source=synthetic,ingestion.start_date={first_session(sessions)}"
        )
    result = subprocess.run(
        command, cwd=root, env={**os.environ, **QUIET}, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"kedro run failed:\n{result.stderr[-3000:]}")
    return env


def peer_app():
    """A FastAPI app that answers /features/{ticker} by reading the feature table on every request."""
    from fastapi import FastAPI, HTTPException

    path = Path(os.environ[PEER_TABLE_ENV])
    app = FastAPI()

    @app.get("/features/{ticker}")
    def features(ticker: str, limit: int = 250) -> dict:
        """The ticker's latest rows, read from disk now."""
        frame = load_table(path, tickers=[ticker])
        if frame.empty:
            raise HTTPException(404, "unknown ticker")
        rows = frame.sort_values("date", ascending=False).head(limit).drop(columns="ticker")
        rows["date"] = rows["date"].dt.strftime("%Y-%m-%d")
        records = rows.astype(object).where(rows.notna(), None).to_dict("records")
        return {"ticker": ticker, "count": len(records), "rows": records}

    return app


def free_port() -> int:
    """A TCP port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(
    app: list[str], port: int, workers: int, env: dict[str, str], log: Path
) -> subprocess.Popen:
    """A uvicorn process (with its workers) from the project root, its output in `log`."""
    command = [sys.executable, "-m", "uvicorn", *app, "--port", str(port)]
    command += ["--workers", str(workers)]
    command += ["--log-level", "warning", "--no-access-log"]
    with log.open("ab") as output:
        return subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env={**os.environ, **QUIET, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(url: str, timeout: float = 120.0) -> None:
    """Block until the URL answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up")


class Connection:
    """One keep-alive HTTP/1.1 connection that sends GETs and reads Content-Length bodies.

    A lean client (like wrk) so that the load generator does not eat the CPU it measures.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self._reader, self._writer, self._host = reader, writer, host

    @classmethod
    async def open(cls, host: str, port: int) -> "Connection":
        """Connect to host:port."""
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, f"{host}:{port}")

    async def get(self, path: str) -> tuple[int, bytes]:
        """Status and body of GET path."""
        request = f"GET {path} HTTP/1.1\r\nHost: {self._host}\r\nAccept: */*\r\n\r\n"
        self._writer.write(request.encode())
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        length = int(next(v for k, v in headers.items() if k.lower() == "content-length"))
        return int(lines[0].split()[1]), await self._reader.readexactly(length)

    def close(self) -> None:
        """Close the socket."""
        self._writer.close()


async def client(port: int, tickers: list[str], limit: int, stop: float) -> tuple[list[float], int]:
    """Request random tickers on one connection until the deadline; latencies and errors."""
    connection = await Connection.open("127.0.0.1", port)
    latencies, errors = [], 0
    try:
        while time.perf_counter() < stop:
            path = f"/features/{random.choice(tickers)}?limit={limit}"
            started = time.perf_counter()
            status, body = await connection.get(path)
            latencies.append(time.perf_counter() - started)
            errors += status != 200 or not body.startswith(b"{")
    finally:
        connection.close()
    return latencies, errors


async def load(port: int, tickers: list[str], clients: int, seconds: float, limit: int) -> dict:
    """Throughput, latency percentiles and errors of `clients` concurrent clients."""
    warm = time.perf_counter() + min(2.0, seconds / 5)
    await asyncio.gather(*(client(port, tickers, limit, warm) for _ in range(clients)))
    started = time.perf_counter()
    runs = await asyncio.gather(
        *(client(port, tickers, limit, started + seconds) for _ in range(clients))
    )
    elapsed = time.perf_counter() - started
    latencies = np.concatenate([np.asarray(r) for r, _ in runs]) * 1000
    return {
        "requests": int(latencies.size),
        "errors": sum(e for _, e in runs),
        "throughput_rps": latencies.size / elapsed,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
    }


def tree_rss_mib(root: int) -> float:
    """Resident memory of a process and all its descendants, in MiB (Linux /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)], rss[int(entry.name)] = int(fields[1]), int(fields[21])
    tree, frontier = {root}, [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        tree.update(children)
        frontier = children
    return sum(rss.get(pid, 0) for pid in tree) * os.sysconf("SC_PAGE_SIZE") / 2**20


def bulk(port: int, pid: int, rows: int) -> dict:
    """Time GET /features?format=parquet of the whole dataset; the server's memory meanwhile."""
    before = tree_rss_mib(pid)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], tree_rss_mib(pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    with httpx.stream("GET", f"http://127.0.0.1:{port}/features?format=parquet", timeout=600) as r:
        body = b"".join(r.iter_bytes())
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    served = pq.ParquetFile(pa.BufferReader(body)).metadata.num_rows
    if served != rows:
        raise RuntimeError(f"the bulk download has {served} rows, the dataset {rows}")
    return {
        "rows": served,
        "mib": len(body) / 2**20,
        "seconds": seconds,
        "rows_per_second": served / seconds,
        "rss_before_mib": before,
        "rss_growth_mib": peak[0] - before,
    }


def run(args: argparse.Namespace) -> tuple[dict[str, dict], dict]:
    """Build the data, start both servers on it and load each in turn, then time a bulk download."""
    with tempfile.TemporaryDirectory(prefix="api-bench-") as folder:
        root = Path(folder)
        env = make_project(root, args.sample, args.sessions)
        features = load_table(root / FEATURES, columns=[])
        tickers = sorted(features["ticker"].unique())
        args.dataset = f"{len(tickers)} tickers, {len(features):,} rows"
        ours_port, peer_port = free_port(), free_port()
        servers = {
            "api (in memory)": (
                start_server(
                    ["stock_pipeline.api.main:app"],
                    ours_port,
                    args.workers,
                    {"STOCK_PIPELINE_PROJECT_ROOT": folder, "KEDRO_ENV": env},
                    root / "api.log",
                ),
                ours_port,
            ),
            "peer (Parquet per request)": (
                start_server(
                    ["benchmarks.api:peer_app", "--factory"],
                    peer_port,
                    args.workers,
                    {PEER_TABLE_ENV: str(root / FEATURES)},
                    root / "peer.log",
                ),
                peer_port,
            ),
        }
        try:
            for _, port in servers.values():
                wait_ready(f"http://127.0.0.1:{port}/features/{tickers[0]}?limit=1")
            results = {
                name: asyncio.run(load(port, tickers, args.clients, args.seconds, args.limit))
                for name, (_, port) in servers.items()
            }
            process, port = servers["api (in memory)"]
            return results, bulk(port, process.pid, len(features))
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait(timeout=30)


def report(args: argparse.Namespace, results: dict[str, dict], download: dict) -> None:
    """Print the results side by side with the goal's verdict."""
    source = "the sample" if args.sample else "synthetic source"
    print(
        f"{source}, {args.dataset}; {args.clients} clients, /features/{{ticker}}?limit={args.limit}, "
        f"{args.seconds:.0f} s each, {args.workers} worker(s) each, {os.cpu_count()} CPUs"
    )
    print(f"{'server':<28}{'requests':>10}{'errors':>8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, r in results.items():
        print(
            f"{name:<28}{r['requests']:>10}{r['errors']:>8}{r['throughput_rps']:>10.1f}"
            f"{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}"
        )
    ours, peer = results.values()
    speedup = ours["throughput_rps"] / peer["throughput_rps"]
    met = speedup >= 10 and ours["p99_ms"] <= 100 and ours["errors"] == 0
    print(
        f"speed-up {speedup:.1f}x; goal (>= 10x, p99 <= 100 ms, no errors) {'met' if met else 'NOT met'}"
    )
    print(
        f"bulk GET /features?format=parquet: {download['rows']:,} rows, {download['mib']:.1f} MiB "
        f"in {download['seconds']:.2f} s = {download['rows_per_second']:,.0f} rows/s; server memory "
        f"{download['rss_before_mib']:.0f} MiB, +{download['rss_growth_mib']:.0f} MiB at peak"
    )


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", action="store_true", help="serve the bundled sample")
    parser.add_argument("--sessions", type=int, default=1000, help="NSE sessions (synthetic)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of each server")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--limit", type=int, default=250)
    args = parser.parse_args()
    report(args, *run(args))


if __name__ == "__main__":
    main()
