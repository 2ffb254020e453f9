"""Prices from Yahoo Finance through yfinance: explicit settings, retries, exchange-dated bars.

Daily bars are dated by their NSE session (midnight); 5m/15m bars by their start time. Both are
naive Asia/Kolkata wall-clock time. Only final bars are returned: a daily bar once its session
has closed, an intraday bar once its interval (plus `bar_settle_seconds`) is over, never the bar in
progress nor the live snapshot row Yahoo appends while the market is open.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import yfinance as yf
from curl_cffi import requests as curl_requests
from peewee import OperationalError as CacheDatabaseError
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from yfinance.exceptions import YFRateLimitError, YFTickerMissingError

from stock_pipeline.contract import BRONZE_COLUMNS
from stock_pipeline.rate_limit import NO_LIMIT, RateLimiter
from stock_pipeline.sources.base import NoDataError, SourceError
from stock_pipeline.trading_calendar import exchange_time, last_closed_session

logger = logging.getLogger(__name__)

INTERVALS = ("1d", "5m", "15m")
YF_COLUMNS = {
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Close": "close",
    "Adj Close": "adj_close",
    "Volume": "volume",
    "Dividends": "dividends",
    "Stock Splits": "stock_splits",
}
HTTP_TOO_MANY_REQUESTS = 429
HTTP_NOT_FOUND = 404
HTTP_SERVER_ERROR = 500
INTRADAY_HISTORY_DAYS = 60  # Yahoo serves 5m and 15m bars of the last 60 days only


@dataclass(frozen=True)
class RetrySettings:
    """How many attempts a fetch gets and how long it waits between them."""

    attempts: int = 3
    initial_wait_seconds: float = 1.0
    max_wait_seconds: float = 30.0
    jitter_seconds: float = 1.0


class YahooSession(curl_requests.Session):
    """A curl_cffi session that sends each request under the run's rate limit (every request
    yfinance makes: timezone, cookie, crumb, chart, and each retry), and raises on HTTP 5xx, which
    yfinance would otherwise report as no data."""

    limiter: RateLimiter = NO_LIMIT

    def request(self, *args: Any, **kwargs: Any) -> curl_requests.Response:
        """Send the request when the limiter allows; raise HTTPError when the server failed."""
        with self.limiter.request():
            response = super().request(*args, **kwargs)
        if response.status_code >= HTTP_SERVER_ERROR:
            response.raise_for_status()
        return response


def _status(error: BaseException) -> int | None:
    """The HTTP status carried by a curl_cffi error, if any."""
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def _is_transient(error: BaseException) -> bool:
    """True for rate limits, HTTP 429/5xx, network failures and a busy yfinance cache: worth another try."""
    if isinstance(error, CacheDatabaseError):  # yfinance's SQLite timezone cache, shared by threads
        return "locked" in str(error)
    if isinstance(error, curl_requests.exceptions.HTTPError):
        status = _status(error)
        return status is not None and (
            status == HTTP_TOO_MANY_REQUESTS or status >= HTTP_SERVER_ERROR
        )
    return isinstance(
        error,
        YFRateLimitError
        | curl_requests.exceptions.ConnectionError
        | curl_requests.exceptions.Timeout
        | ConnectionError
        | TimeoutError,
    )


def _describe(error: BaseException | None) -> str:
    """Error type and message, for log lines and SourceError messages."""
    return f"{type(error).__name__}: {error}"


def _as_source_error(ticker: str, start: date, end: date, error: Exception) -> SourceError:
    """Our error for a failed request: NoDataError when Yahoo says it has nothing for the ticker."""
    if isinstance(error, YFTickerMissingError):
        reason = error.rationale
    elif _status(error) == HTTP_NOT_FOUND:
        reason = f"symbol not found ({error})"
    else:
        return SourceError(f"{ticker}: {_describe(error)}")
    return NoDataError(f"{ticker}: no data from Yahoo for {start} to {end}: {reason}")


def _final_bars(
    history: pd.DataFrame, interval: str, now: datetime, settle: pd.Timedelta | None = None
) -> pd.DataFrame:
    """Only bars that can no longer change: closed NSE sessions, or intraday bars already over.

    An intraday row off the interval grid (09:37:12 among 5m bars) is Yahoo's live snapshot of the
    bar in progress, never a finished bar, so it is dropped whatever its time.
    """
    if interval == "1d":
        return history[history.index.tz_localize(None) <= last_closed_session(now)]
    step = pd.Timedelta(interval)
    on_grid = history.index == history.index.floor(step)
    over = history.index + step + (settle or pd.Timedelta(0)) <= pd.Timestamp(now)
    return history[on_grid & over]


def earliest_intraday_start(now: datetime) -> date:
    """The first day Yahoo still serves 5m/15m bars for: INTRADAY_HISTORY_DAYS back, counting today."""
    return (exchange_time(now) - pd.Timedelta(days=INTRADAY_HISTORY_DAYS - 1)).date()


def _to_bronze(history: pd.DataFrame, interval: str) -> pd.DataFrame:
    """yfinance's frame as BRONZE_COLUMNS, dated in exchange time (Asia/Kolkata for NSE), naive."""
    local_time = history.index.tz_localize(None).as_unit("ns")
    bronze = history[list(YF_COLUMNS)].rename(columns=YF_COLUMNS).reset_index(drop=True)
    bronze.insert(0, "date", local_time.normalize() if interval == "1d" else local_time)
    float_columns = [column for column in BRONZE_COLUMNS if column not in ("date", "volume")]
    bronze[float_columns] = bronze[float_columns].astype("float64")
    return bronze[list(BRONZE_COLUMNS)].sort_values("date", kind="stable", ignore_index=True)


class YFinanceSource:
    """Bars for one ticker at a time from Yahoo Finance, retried while Yahoo is throttling or down."""

    sends_requests = True

    def __init__(
        self,
        interval: str = "1d",
        retry: RetrySettings | None = None,
        timeout_seconds: float = 30.0,
        bar_settle_seconds: float = 0.0,
        *,
        session: curl_requests.Session | None = None,
        now: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if interval not in INTERVALS:
            raise ValueError(f"ingestion.interval must be one of {INTERVALS}, got {interval!r}")
        self.interval = interval
        self.retry = retry or RetrySettings()
        self.timeout_seconds = timeout_seconds
        self.bar_settle = pd.Timedelta(seconds=bar_settle_seconds)
        self._session = session or YahooSession(impersonate="chrome")
        self._now = now or (lambda: datetime.now(UTC))
        self._sleep = sleep
        # Raise Yahoo's errors instead of logging them and returning an empty frame.
        yf.config.debug.hide_exceptions = False

    @classmethod
    def from_params(
        cls,
        params: dict[str, Any],
        *,
        limiter: RateLimiter = NO_LIMIT,
        session: YahooSession | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> "YFinanceSource":
        """A source configured from the `ingestion:` parameters (interval, retry, timeouts), whose
        session (a new one, or the given one) sends its requests under `limiter`."""
        session = session or YahooSession(impersonate="chrome")
        session.limiter = limiter
        return cls(
            interval=params.get("interval", "1d"),
            retry=RetrySettings(**(params.get("retry") or {})),
            timeout_seconds=float(params.get("timeout_seconds", 30.0)),
            bar_settle_seconds=float(params.get("bar_settle_seconds", 0.0)),
            session=session,
            now=now,
        )

    def earliest_start(self, now: datetime) -> date | None:
        """The first day Yahoo serves this interval for at `now`; None when it has no limit (1d)."""
        return None if self.interval == "1d" else earliest_intraday_start(now)

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        """Final bars from start to end inclusive with BRONZE_COLUMNS, sorted by date."""
        now = self._now()
        earliest = self.earliest_start(now)
        if earliest and start < earliest:
            logger.warning(
                "%s: Yahoo serves %s bars of the last %d days only; starting at %s instead of %s",
                ticker,
                self.interval,
                INTRADAY_HISTORY_DAYS,
                earliest,
                start,
            )
            start = earliest
        if end < start:
            raise NoDataError(f"{ticker}: the window {start} to {end} is empty")
        history = self._history_with_retries(ticker, start, end)
        final = (
            history if history.empty else _final_bars(history, self.interval, now, self.bar_settle)
        )
        if final.empty:
            raise NoDataError(
                f"{ticker}: Yahoo has no finished {self.interval} bars from {start} to {end}"
            )
        return _to_bronze(final, self.interval)

    def _history(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        """One yfinance request: raw and adjusted close, dividends and splits, no repair."""
        return yf.Ticker(ticker, session=self._session).history(
            start=start,
            end=end + timedelta(days=1),
            interval=self.interval,
            auto_adjust=False,
            actions=True,
            repair=False,
            prepost=False,
            keepna=False,
            timeout=self.timeout_seconds,
        )

    def _history_with_retries(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        """yfinance's frame, retrying transient failures; Yahoo's errors become SourceError."""
        retrying = Retrying(
            stop=stop_after_attempt(self.retry.attempts),
            wait=wait_exponential(
                multiplier=self.retry.initial_wait_seconds, max=self.retry.max_wait_seconds
            )
            + wait_random(0, self.retry.jitter_seconds),
            retry=retry_if_exception(_is_transient),
            before_sleep=self._log_retry,
            sleep=self._sleep,
        )
        try:
            return retrying(self._history, ticker, start, end)
        except RetryError as error:
            cause = error.last_attempt.exception()
            raise SourceError(
                f"{ticker}: Yahoo still failing after {self.retry.attempts} attempts: {_describe(cause)}"
            ) from cause
        except Exception as error:  # yfinance raises whatever its HTTP layer or parser hit
            raise _as_source_error(ticker, start, end, error) from error

    def _log_retry(self, state: RetryCallState) -> None:
        """Warn which ticker failed, why, and when it is tried again."""
        ticker = state.args[0]
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "%s: attempt %d/%d failed (%s); retrying in %.1f s",
            ticker,
            state.attempt_number,
            self.retry.attempts,
            _describe(error),
            wait,
        )
