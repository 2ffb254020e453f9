"""A local stand-in for Yahoo's chart API, served over HTTP, for tests and benchmarks.

The source under test keeps its real yfinance and curl_cffi code; only the host changes
(`LocalYahooSession`). Per symbol the stub answers with a script of recorded bodies, or with a
synthetic NSE market that draws daily or 5m/15m bars for whatever window is asked, the way Yahoo
does: bars up to the stub's clock (the bar in progress included, plus a live snapshot row while
the session is open), `tradingPeriods` in the meta, and Yahoo's 422 for intraday windows reaching
back more than 60 days. Symbols with neither get the recorded 404 body.
"""

import json
import math
import os
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import pandas as pd
from curl_cffi import requests as curl_requests

from stock_pipeline.rate_limit import NO_LIMIT, RateLimiter
from stock_pipeline.sources.yfinance_source import YahooSession, YFinanceSource
from stock_pipeline.trading_calendar import schedule as nse_schedule

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "yahoo"
NOT_FOUND = FIXTURES / "chart-WSKT.JK-2020-01-01-to-2020-01-03.404.body.json"
CHART_PATH = "/v8/finance/chart/"
STATS_PATH = "/stub/stats"  # what the stub saw, not a Yahoo page
CLIENT_HEADER = "X-Stub-Client"  # the process id of the sender, for tests spread over processes
IST_OFFSET = 19800
INTRADAY_LIMIT = pd.Timedelta(days=60)
STEPS = {"1d": pd.Timedelta(days=1), "5m": pd.Timedelta(minutes=5), "15m": pd.Timedelta(minutes=15)}

Answer = tuple[int, bytes]


@dataclass
class SyntheticMarket:
    """Deterministic NSE bars: a bar's prices depend on its time only, so windows agree.

    `scale` multiplies every price: set to 0.5 after a first fetch, it is what Yahoo shows once a
    1:1 bonus has re-adjusted the whole history (the new bars and the old ones on one scale).
    """

    base: float = 1000.0
    scale: float = 1.0
    live_snapshot: bool = True

    def prices(self, symbol: str, starts: pd.DatetimeIndex, step: pd.Timedelta) -> dict[str, Any]:
        """OHLCV arrays for bars starting at `starts` (UTC)."""
        phase = zlib.crc32(symbol.encode()) % 1000 / 1000 * 2 * math.pi
        seconds = starts.as_unit("s").asi8
        span = step.total_seconds()

        def level(t: np.ndarray) -> np.ndarray:
            days = t / 86400
            return self.base * (
                1 + 0.15 * np.sin(days / 40 + phase) + 0.03 * np.sin(days * 7.3 + 2 * phase)
            )

        open_, close = level(seconds - 0.2 * span), level(seconds + 0.8 * span)
        wiggle = 1 + 0.002 * (1 + np.sin(seconds / 977 + phase))
        round2 = lambda values: np.round(values * self.scale, 2)  # noqa: E731
        return {
            "open": round2(open_),
            "high": round2(np.maximum(open_, close) * wiggle),
            "low": round2(np.minimum(open_, close) / wiggle),
            "close": round2(close),
            "volume": (100_000 + seconds // 60 % 997 * 10).astype(int),
        }


def _sessions(first: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:
    """XNSE open and close (UTC) of the sessions that overlap [first, last]."""
    schedule = nse_schedule(first.date() - pd.Timedelta(days=1), last.date())
    return schedule[(schedule["market_close"] > first) & (schedule["market_open"] <= last)]


def _trading_period(start: pd.Timestamp, end: pd.Timestamp) -> dict[str, Any]:
    """One of Yahoo's trading-period records."""
    return {
        "timezone": "IST",
        "start": int(start.timestamp()),
        "end": int(end.timestamp()),
        "gmtoffset": IST_OFFSET,
    }


def synthetic_chart(
    symbol: str,
    period1: int,
    period2: int,
    interval: str,
    now: pd.Timestamp,
    market: SyntheticMarket,
) -> dict[str, Any]:
    """A chart-API body of NSE bars between two epochs as Yahoo would send it at `now` (UTC)."""
    first = pd.Timestamp(period1, unit="s", tz=UTC)
    last = min(pd.Timestamp(period2, unit="s", tz=UTC), now)
    sessions = _sessions(first, last)
    step = STEPS[interval]
    if interval == "1d":
        starts = pd.DatetimeIndex(sessions["market_open"])
    else:
        bars = [
            pd.date_range(row.market_open, row.market_close, freq=step, inclusive="left")
            for row in sessions.itertuples()
        ]
        starts = bars[0].append(bars[1:]) if bars else pd.DatetimeIndex([], tz=UTC)
    starts = starts[(starts >= first) & (starts <= last)]
    stamps = [int(stamp) for stamp in starts.as_unit("s").asi8]
    prices = market.prices(symbol, starts, step)
    today = sessions[(sessions["market_open"] <= now) & (sessions["market_close"] > now)]
    if interval != "1d" and market.live_snapshot and len(today) and len(starts):
        live = market.prices(symbol, pd.DatetimeIndex([now]), step)
        stamps.append(int(now.timestamp()))
        prices = {name: np.r_[values, live[name]] for name, values in prices.items()}
    quote = {name: values.tolist() for name, values in prices.items()}
    meta = {
        "currency": "INR",
        "symbol": symbol,
        "exchangeName": "NSI",
        "fullExchangeName": "NSE",
        "instrumentType": "EQUITY",
        "firstTradeDate": 820454400,
        "regularMarketTime": int(now.timestamp()),
        "hasPrePostMarketData": False,
        "gmtoffset": IST_OFFSET,
        "timezone": "IST",
        "exchangeTimezoneName": "Asia/Kolkata",
        "regularMarketPrice": quote["close"][-1] if stamps else None,
        "priceHint": 2,
        "dataGranularity": interval,
        "range": "",
        "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
    }
    if interval != "1d":
        meta["tradingPeriods"] = [
            [_trading_period(row.market_open, row.market_close)] for row in sessions.itertuples()
        ] or [[_trading_period(now, now)]]
    result: dict[str, Any] = {"meta": meta, "indicators": {"quote": [quote if stamps else {}]}}
    if stamps:
        result["timestamp"] = stamps
        if interval == "1d":
            result["indicators"]["adjclose"] = [{"adjclose": quote["close"]}]
    return {"chart": {"result": [result], "error": None}}


def too_far_back(interval: str, period1: int, now: pd.Timestamp) -> Answer:
    """Yahoo's answer to an intraday window starting more than 60 days back."""
    description = (
        f"{interval} data not available for startTime={period1} and endTime={int(now.timestamp())}. "
        "The requested range must be within the last 60 days."
    )
    body = {
        "chart": {
            "result": None,
            "error": {"code": "Unprocessable Entity", "description": description},
        }
    }
    return 422, json.dumps(body).encode()


class YahooStub:
    """Answers chart requests per symbol: a script (its last answer repeats) or a synthetic market."""

    def __init__(
        self,
        base_url: str,
        delay_seconds: float = 0.0,
        clock: Callable[[], datetime] | None = None,
    ):
        self.base_url = base_url
        self.delay_seconds = delay_seconds
        self.clock = clock or (lambda: datetime.now(UTC))
        self.scripts: dict[str, list[Answer]] = {}
        self.markets: dict[str, SyntheticMarket] = {}
        self.chart_requests: list[str] = []
        self.chart_queries: list[dict[str, str]] = []
        self.rate_limited: dict[str, int] = {}
        self.arrivals: list[
            tuple[float, str]
        ] = []  # (time.time(), the sending process) per request
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()

    def serve(self, symbol: str, *answers: Answer) -> None:
        """Answer the symbol's chart requests with these, in order."""
        self.scripts[symbol] = list(answers)

    def market(self, symbol: str, market: SyntheticMarket | None = None) -> SyntheticMarket:
        """Answer the symbol's chart requests with synthetic bars for the asked window."""
        self.markets[symbol] = market or SyntheticMarket()
        return self.markets[symbol]

    def throttle(self, symbol: str, times: int) -> None:
        """Answer the symbol's next `times` chart requests with Yahoo's 429."""
        self.rate_limited[symbol] = times

    def arrived(self, client: str) -> None:
        """Count a request in: when it came, from which process, how many are being answered."""
        with self._lock:
            self.arrivals.append((time.time(), client))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def answered(self) -> None:
        """Count a request out."""
        with self._lock:
            self.in_flight -= 1

    def answer(self, path: str) -> Answer:
        """Status and body for a request path: crumb, chart, or 404 for any other Yahoo page."""
        parts = urlsplit(path)
        if parts.path == "/v1/test/getcrumb":
            return 200, b"stub-crumb"
        if parts.path == STATS_PATH:  # for a stub in another process
            with self._lock:
                stats = {
                    "chart_requests": len(self.chart_requests),
                    "arrivals": self.arrivals,
                    "most_in_flight": self.most_in_flight,
                }
                return 200, json.dumps(stats).encode()
        if not parts.path.startswith(CHART_PATH):
            return 404, b"{}"
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        return self._chart(unquote(parts.path.removeprefix(CHART_PATH)), query)

    def _chart(self, symbol: str, query: dict[str, str]) -> Answer:
        """The answer to one chart query: a 429 while throttled, the script, the market, or 404."""
        with self._lock:
            self.chart_requests.append(symbol)
            self.chart_queries.append(query)
            if self.rate_limited.get(symbol):
                self.rate_limited[symbol] -= 1
                return 429, b"Too Many Requests\r\n"
            if symbol in self.scripts:
                script = self.scripts[symbol]
                return script.pop(0) if len(script) > 1 else script[0]
            market = self.markets.get(symbol)
        if market is None:
            return 404, NOT_FOUND.read_bytes()
        return self._synthetic(symbol, query, market)

    def _synthetic(self, symbol: str, query: dict[str, str], market: SyntheticMarket) -> Answer:
        """The synthetic market's answer to one chart query."""
        now = pd.Timestamp(self.clock()).tz_convert(UTC)
        interval = query.get("interval", "1d")
        if "period1" in query:
            period1, period2 = int(query["period1"]), int(query["period2"])
        else:  # yfinance's timezone lookup: range=1d
            period1, period2 = int((now - pd.Timedelta(days=5)).timestamp()), int(now.timestamp())
        if interval != "1d" and pd.Timestamp(period1, unit="s", tz=UTC) < now - INTRADAY_LIMIT:
            return too_far_back(interval, period1, now)
        body = synthetic_chart(symbol, period1, period2, interval, now, market)
        return 200, json.dumps(body).encode()


class _StubHandler(BaseHTTPRequestHandler):
    """Serves the server's current YahooStub, after its delay for chart requests."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each keep-alive answer waits ~40 ms for a delayed ACK

    def do_GET(self) -> None:
        """Send the stub's answer."""
        stub: YahooStub = self.server.stub  # type: ignore[attr-defined]
        if self.path.startswith(STATS_PATH):
            self._send(*stub.answer(self.path))
            return
        stub.arrived(self.headers.get(CLIENT_HEADER, "unknown"))
        try:
            status, body = stub.answer(self.path)
            if stub.delay_seconds and self.path.startswith(CHART_PATH):
                time.sleep(stub.delay_seconds)
            self._send(status, body)
        finally:
            stub.answered()

    def _send(self, status: int, body: bytes) -> None:
        """Write one JSON answer."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        """Keep the output quiet."""


class LocalYahooSession(YahooSession):
    """The source's session with every Yahoo host replaced by the local stub."""

    def __init__(self, base_url: str):
        super().__init__()
        self.base_url = base_url

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> curl_requests.Response:
        """Send the request to the same path and query on the stub, saying which process sends it."""
        parts = urlsplit(url)
        query = f"?{parts.query}" if parts.query else ""
        headers = {**(kwargs.pop("headers", None) or {}), CLIENT_HEADER: str(os.getpid())}
        return super().request(
            method, f"{self.base_url}{parts.path}{query}", *args, headers=headers, **kwargs
        )


def stub_source(
    base_url: str, params: dict[str, Any], limiter: RateLimiter = NO_LIMIT
) -> YFinanceSource:
    """`build_source` for Yahoo at the stub: `partial(stub_source, base_url)` replaces it, also in
    dask workers (the partial travels with their tasks)."""
    return YFinanceSource.from_params(params, limiter=limiter, session=LocalYahooSession(base_url))


@contextmanager
def stub_server() -> Iterator[ThreadingHTTPServer]:
    """A threaded local HTTP server on a free port; set `.stub` to the YahooStub it serves."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _StubHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def install_stub(httpd: ThreadingHTTPServer, **settings: Any) -> YahooStub:
    """A fresh YahooStub on the server (settings: delay_seconds, clock)."""
    httpd.stub = YahooStub(f"http://127.0.0.1:{httpd.server_port}", **settings)  # type: ignore[attr-defined]
    return httpd.stub  # type: ignore[attr-defined]


def reset_yfinance(cache_dir: Path) -> None:
    """Make yfinance forget what it learnt: timezones and cookies on disk, memoized answers."""
    import yfinance as yf
    from yfinance import cache
    from yfinance.data import YfData

    yf.set_tz_cache_location(str(cache_dir))
    cache._TzCacheManager._tz_cache = None  # it holds on to the previous folder's database
    cache._CookieCacheManager._Cookie_cache = None
    YfData.cache_get.cache_clear()  # yfinance memoizes answers for past windows per process


def reset_yfinance_per_process(folder: Path) -> None:
    """`reset_yfinance` in a folder of this process's own (dask workers on one machine must not
    share yfinance's SQLite caches)."""
    reset_yfinance(Path(folder) / str(os.getpid()))
