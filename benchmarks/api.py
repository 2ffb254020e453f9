"""API benchmark: 16 concurrent clients on /features/{ticker}?limit=250, the app vs a peer.

The app (`uvicorn api.main:app`) serves the feature Parquet from memory; the peer is a minimal
FastAPI app that reads the Parquet (filtered to the ticker) on every request. Both serve the same
features, started side by side as uvicorn processes with one worker each, and are loaded one
after the other by the same lean asyncio HTTP/1.1 client (keep-alive connections).

By default they serve the bundled sample: `kedro run --pipelines=ingestion,cleaning,features
--env=sample` in a temporary copy of the project, then the app with KEDRO_ENV=sample on that copy.
`--synthetic` serves generated random walks of any size instead.

    .venv/bin/python benchmarks/api.py                                   # the sample
    .venv/bin/python benchmarks/api.py --synthetic --tickers 60 --sessions 2500
"""

import argparse
import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from stock_pipeline.datasets import DeltaTableDataset
from stock_pipeline.versions import load_table

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FEATURES = "data/04_feature/features"  # a Delta table folder
OURS = ("-m", "uvicorn", "api.main:app", "--log-level", "warning", "--no-access-log")
INDICATORS = ("sma_20", "sma_50", "rsi_14", "macd", "macd_signal", "macd_hist", "volatility")


def ticker_names(count: int) -> list[str]:
    """NSE-looking symbols: SYM000.NS, SYM001.NS, ..."""
    return [f"SYM{i:03d}.NS" for i in range(count)]


def generate_features(tickers: int, sessions: int, seed: int = 7) -> pd.DataFrame:
    """A features frame with every contract column: random walks, sorted by ticker then date."""
    rng = np.random.default_rng(seed)
    names = np.repeat(ticker_names(tickers), sessions)
    dates = np.tile(pd.bdate_range("2016-01-01", periods=sessions).to_numpy(), tickers)
    returns = rng.normal(0, 0.015, (tickers, sessions))
    close = (100 * np.exp(np.cumsum(returns, axis=1))).ravel()
    spread = np.abs(rng.normal(0, 0.01, close.size)) * close
    frame = pd.DataFrame(
        {
            "ticker": names,
            "date": dates,
            "open": close + rng.normal(0, 0.3, close.size),
            "close": close,
            "adj_close": close,
            "volume": rng.integers(10_000, 5_000_000, close.size),
            "daily_return": returns.ravel(),
        }
    )
    frame["high"] = frame[["open", "close"]].max(axis=1) + spread
    frame["low"] = frame[["open", "close"]].min(axis=1) - spread
    for name in INDICATORS:
        frame[name] = rng.normal(50, 10, close.size)
    columns = ["ticker", "date", "open", "high", "low", "close", "adj_close", "volume"]
    return frame[[*columns, "daily_return", *INDICATORS]]


def make_project(root: Path, frame: pd.DataFrame) -> Path:
    """A minimal project folder holding conf/ and the feature table; the table's path."""
    for env in ("base", "local"):
        (root / "conf" / env).mkdir(parents=True, exist_ok=True)
    path = root / FEATURES
    DeltaTableDataset(str(path)).save(frame)
    return path


def make_sample_project(root: Path) -> Path:
    """A copy of the project whose features pipeline has run on the sample; the Parquet's path."""
    for folder in ("conf", "src", "data/sample"):
        shutil.copytree(
            PROJECT_ROOT / folder,
            root / folder,
            ignore=shutil.ignore_patterns("__pycache__", "local"),
        )
    (root / "conf" / "local").mkdir()
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, root / name)
    command = ["-m", "kedro", "run", "--pipelines=ingestion,cleaning,features", "--env=sample"]
    result = subprocess.run(
        [sys.executable, *command],
        cwd=root,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kedro run on the sample failed:\n{result.stderr[-3000:]}")
    return root / FEATURES


def peer_app(path: Path):
    """A FastAPI app that answers /features/{ticker} by reading the Parquet on every request."""
    from fastapi import FastAPI, HTTPException

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


def start_server(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start a server process from the project root."""
    return subprocess.Popen(
        [sys.executable, *args], cwd=PROJECT_ROOT, env={**os.environ, **env}, start_new_session=True
    )


def wait_ready(url: str, timeout: float = 60.0) -> None:
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


async def client(port: int, tickers: list[str], limit: int, stop: float) -> list[float]:
    """Request random tickers on one connection until the deadline; latencies in seconds."""
    connection = await Connection.open("127.0.0.1", port)
    latencies = []
    try:
        while time.perf_counter() < stop:
            path = f"/features/{random.choice(tickers)}?limit={limit}"
            started = time.perf_counter()
            status, body = await connection.get(path)
            latencies.append(time.perf_counter() - started)
            if status != 200 or not body.startswith(b"{"):
                raise RuntimeError(f"GET {path} answered {status}")
    finally:
        connection.close()
    return latencies


async def load(port: int, tickers: list[str], clients: int, seconds: float, limit: int) -> dict:
    """Throughput and latency percentiles of `clients` concurrent clients over `seconds`."""
    warm = time.perf_counter() + min(2.0, seconds / 5)
    await asyncio.gather(*(client(port, tickers, limit, warm) for _ in range(clients)))
    started = time.perf_counter()
    runs = await asyncio.gather(
        *(client(port, tickers, limit, started + seconds) for _ in range(clients))
    )
    elapsed = time.perf_counter() - started
    latencies = np.concatenate([np.asarray(r) for r in runs]) * 1000
    return {
        "requests": int(latencies.size),
        "throughput_rps": latencies.size / elapsed,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
    }


def serve_peer(path: str, port: int) -> None:
    """Run the peer app (used in the peer's own process)."""
    import uvicorn

    uvicorn.run(peer_app(Path(path)), host="127.0.0.1", port=port, log_level="warning")


def run(args: argparse.Namespace) -> dict[str, dict]:
    """Start both servers on the same features and load each in turn."""
    with tempfile.TemporaryDirectory(prefix="api-bench-") as folder:
        if args.synthetic:
            path = make_project(Path(folder), generate_features(args.tickers, args.sessions))
            env = "local"
        else:
            path = make_sample_project(Path(folder))
            env = "sample"
        features = load_table(path, columns=[])
        tickers = sorted(features["ticker"].unique())
        args.dataset = f"{len(tickers)} tickers, {len(features):,} rows"
        quiet = {"PYTHONWARNINGS": "ignore::UserWarning", "KEDRO_DISABLE_TELEMETRY": "true"}
        ours_port, peer_port = free_port(), free_port()
        servers = {
            "api (in memory)": (
                start_server(
                    [*OURS, "--port", str(ours_port)],
                    {"STOCK_PIPELINE_PROJECT_ROOT": folder, "KEDRO_ENV": env, **quiet},
                ),
                ours_port,
            ),
            "peer (Parquet per request)": (
                start_server([__file__, "--serve-peer", str(path), str(peer_port)], quiet),
                peer_port,
            ),
        }
        try:
            for _, port in servers.values():
                wait_ready(f"http://127.0.0.1:{port}/features/{tickers[0]}?limit=1")
            return {
                name: asyncio.run(load(port, tickers, args.clients, args.seconds, args.limit))
                for name, (_, port) in servers.items()
            }
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait(timeout=10)


def report(args: argparse.Namespace, results: dict[str, dict]) -> None:
    """Print the results side by side with the goal's verdict."""
    source = f"synthetic, {args.dataset}" if args.synthetic else f"the sample, {args.dataset}"
    print(
        f"{source}; {args.clients} clients, /features/{{ticker}}?limit={args.limit}, "
        f"{args.seconds:.0f} s each, {os.cpu_count()} CPUs"
    )
    print(f"{'server':<28}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, r in results.items():
        print(
            f"{name:<28}{r['requests']:>10}{r['throughput_rps']:>10.1f}"
            f"{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}"
        )
    ours, peer = results.values()
    speedup = ours["throughput_rps"] / peer["throughput_rps"]
    verdict = "met" if speedup >= 10 and ours["p99_ms"] <= 100 else "NOT met"
    print(f"speed-up {speedup:.1f}x; goal (>= 10x, p99 <= 100 ms) {verdict}")


def main() -> None:
    """Parse arguments and run the benchmark (or serve the peer when asked to)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--synthetic", action="store_true", help="serve generated features, not the sample"
    )
    parser.add_argument("--tickers", type=int, default=60, help="with --synthetic")
    parser.add_argument("--sessions", type=int, default=2500, help="with --synthetic")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--limit", type=int, default=250)
    parser.add_argument(
        "--serve-peer", nargs=2, metavar=("PARQUET", "PORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve_peer:
        serve_peer(args.serve_peer[0], int(args.serve_peer[1]))
        return
    report(args, run(args))


if __name__ == "__main__":
    main()
