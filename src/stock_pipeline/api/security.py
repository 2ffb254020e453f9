"""Who is calling: named API keys compared in constant time, per-key rate limits, the request log."""

import hashlib
import hmac
import logging
import time
from collections.abc import Callable

from fastapi.security import APIKeyHeader
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stock_pipeline.api.config import RateLimit

API_KEY_HEADER = "X-API-Key"
KEY_NAME_STATE = "api_key_name"  # where a request's key name waits for the log line
MAX_CLIENTS = 10_000  # buckets kept before they are all forgotten (each client restarts full)

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="One of the configured API keys (credentials `api_keys` or the environment)",
)
access_log = logging.getLogger("stock_pipeline.api.access")


def key_name(given: str | None, keys: dict[str, bytes]) -> str | None:
    """The name of the key given, None when it is none of them.

    Digests are compared, every one of them, with hmac.compare_digest: the time taken says
    nothing about the keys, not even their length.
    """
    if given is None:
        return None
    digest = hashlib.sha256(given.encode()).digest()
    found = None
    for name, expected in keys.items():
        if hmac.compare_digest(digest, expected):
            found = name
    return found


class RateLimiter:
    """A token bucket per client (a key's name, or an address without keys), in this process."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic):
        self._limit = limit
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def wait(self, client: str) -> float:
        """0 when the client may go now (it spends a token), else the seconds until it may."""
        rate = self._limit.rate_for(client)
        if rate is None:
            return 0.0
        if len(self._buckets) > MAX_CLIENTS:
            self._buckets.clear()
        now = self._clock()
        tokens, last = self._buckets.get(client, (float(self._limit.burst), now))
        tokens = min(float(self._limit.burst), tokens + (now - last) * rate)
        if tokens >= 1:
            self._buckets[client] = (tokens - 1, now)
            return 0.0
        self._buckets[client] = (tokens, now)
        return (1 - tokens) / rate


def _printable(text: str) -> str:
    """Text with control and non-ASCII characters escaped: one request stays one log line."""
    return text.encode("unicode_escape").decode("ascii")


class RequestLog:
    """ASGI middleware: one log line per HTTP request with the key's name, never the key."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; log method, path, status, duration and key name once it is done."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            query = scope.get("query_string", b"").decode("latin-1")
            access_log.info(
                "%s %s %d %.1f ms key=%s",
                scope["method"],
                _printable(scope["path"] + (f"?{query}" if query else "")),
                status,
                (time.perf_counter() - started) * 1000,
                scope.get("state", {}).get(KEY_NAME_STATE, "-"),
            )
