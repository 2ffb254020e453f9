"""YFinanceSource through the real yfinance and curl_cffi code, answered by a local Yahoo stub."""

import json
import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from stock_pipeline.contract import BRONZE_COLUMNS, PRICE_VALUES
from stock_pipeline.sources.base import NoDataError, SourceError
from stock_pipeline.sources.yfinance_source import (
    YF_COLUMNS,
    RetrySettings,
    YFinanceSource,
    _final_bars,
    _to_bronze,
)
from tests.sources.yahoo_stub import (
    FIXTURES,
    NOT_FOUND,
    LocalYahooSession,
    YahooStub,
    install_stub,
    reset_yfinance,
    stub_server,
)

AAPL_SPLIT = FIXTURES / "chart-AAPL-2020-08-31-to-2020-11-07.body.json"
MSFT_DIVIDENDS = FIXTURES / "historical-via-chart-MSFT-dividends-2021-02-01-to-2022-01-31.body.json"
AAPL_WEEKEND = (
    FIXTURES / "chart-AAPL-2025-02-01-to-2025-02-02-includePrePost-false-interval-1m.body.json"
)
WSU_NSE = FIXTURES / "chart-WSU.NS-2023-08-04-to-2023-08-09.derived.body.json"

RATE_LIMITED = (429, b"Too Many Requests\r\n")
SERVER_DOWN = (503, b"<html><body>Service Unavailable</body></html>")
NO_JITTER = RetrySettings(jitter_seconds=0.0)  # the default backoff: 1 s, then 2 s
NOW = datetime(2025, 6, 1, tzinfo=UTC)
MSFT_WINDOW = (date(2021, 2, 1), date(2022, 1, 28))


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadingHTTPServer]:
    """A local HTTP server on a free port, in a daemon thread."""
    with stub_server() as httpd:
        yield httpd


@pytest.fixture
def fresh_yfinance(tmp_path: Path) -> None:
    """yfinance forgets what earlier tests taught it: timezones and cookies on disk, memoized answers."""
    reset_yfinance(tmp_path)


@pytest.fixture
def stub(server: ThreadingHTTPServer, fresh_yfinance: None) -> YahooStub:
    """A fresh script on the server."""
    return install_stub(server)


@pytest.fixture
def sleeps() -> list[float]:
    """The waits the source asked for, instead of sleeping."""
    return []


def _source(
    base_url: str,
    sleeps: list[float],
    retry: RetrySettings = NO_JITTER,
    interval: str = "1d",
    now: datetime = NOW,
) -> YFinanceSource:
    """A source talking to base_url that records its waits instead of sleeping."""
    return YFinanceSource(
        interval=interval,
        retry=retry,
        timeout_seconds=5,
        session=LocalYahooSession(base_url),
        now=lambda: now,
        sleep=sleeps.append,
    )


@pytest.fixture
def source(stub: YahooStub, sleeps: list[float]) -> YFinanceSource:
    """A daily source talking to the stub."""
    return _source(stub.base_url, sleeps)


def _chart(path: Path) -> dict[str, Any]:
    """The chart result of a recorded body."""
    return json.loads(path.read_bytes())["chart"]["result"][0]


def _exchange_dates(chart: dict[str, Any], epochs: list[int]) -> list[pd.Timestamp]:
    """Epoch seconds as naive dates in the chart's exchange timezone."""
    stamps = pd.to_datetime(epochs, unit="s", utc=True)
    local = stamps.tz_convert(chart["meta"]["exchangeTimezoneName"]).tz_localize(None)
    return list(local.normalize())


def _floats(values: list[float | None]) -> np.ndarray:
    """A recorded JSON array as floats, null as NaN."""
    return np.asarray(values, dtype="float64")


def test_split_keeps_raw_and_adjusted_close_and_the_ratio(
    source: YFinanceSource, stub: YahooStub
) -> None:
    stub.serve("AAPL", (200, AAPL_SPLIT.read_bytes()))
    chart = _chart(AAPL_SPLIT)
    quote = chart["indicators"]["quote"][0]

    bars = source.fetch("AAPL", date(2020, 8, 31), date(2020, 11, 6))

    assert list(bars.columns) == list(BRONZE_COLUMNS)
    assert bars["date"].tolist() == _exchange_dates(chart, chart["timestamp"])
    np.testing.assert_allclose(bars["open"], _floats(quote["open"]))
    np.testing.assert_allclose(bars["close"], _floats(quote["close"]))
    np.testing.assert_allclose(
        bars["adj_close"], _floats(chart["indicators"]["adjclose"][0]["adjclose"])
    )
    np.testing.assert_array_equal(bars["volume"], quote["volume"])
    (split,) = chart["events"]["splits"].values()
    split_rows = bars[bars["stock_splits"] != 0]
    assert split_rows["date"].tolist() == _exchange_dates(chart, [split["date"]])
    assert split_rows["stock_splits"].tolist() == [split["numerator"] / split["denominator"]]


def test_dividends_land_on_their_ex_dates(source: YFinanceSource, stub: YahooStub) -> None:
    stub.serve("MSFT", (200, MSFT_DIVIDENDS.read_bytes()))
    chart = _chart(MSFT_DIVIDENDS)
    events = list(chart["events"]["dividends"].values())

    bars = source.fetch("MSFT", *MSFT_WINDOW)

    paid = bars[bars["dividends"] != 0]
    assert paid["date"].tolist() == _exchange_dates(chart, [event["date"] for event in events])
    assert paid["dividends"].tolist() == [event["amount"] for event in events]
    assert (bars["stock_splits"] == 0).all()
    assert (bars["adj_close"] < bars["close"]).iloc[0]


def test_nse_bars_are_dated_by_their_kolkata_session(
    source: YFinanceSource, stub: YahooStub
) -> None:
    stub.serve("WSU.NS", (200, WSU_NSE.read_bytes()))
    chart = _chart(WSU_NSE)

    bars = source.fetch("WSU.NS", date(2023, 8, 4), date(2023, 8, 8))

    kolkata = pd.to_datetime(chart["timestamp"], unit="s", utc=True).tz_convert("Asia/Kolkata")
    assert bars["date"].tolist() == list(kolkata.tz_localize(None).normalize())
    assert bars["date"].dtype == "datetime64[ns]"
    assert bars[list(PRICE_VALUES)].dtypes.eq("float64").all()
    np.testing.assert_allclose(bars["close"], _floats(chart["indicators"]["quote"][0]["close"]))


@pytest.mark.parametrize(
    ("now", "last_date"),
    [
        (datetime(2023, 8, 8, 6, 0, tzinfo=UTC), date(2023, 8, 7)),
        (datetime(2023, 8, 8, 10, 30, tzinfo=UTC), date(2023, 8, 8)),
    ],
    ids=["session-open", "session-closed"],
)
def test_todays_bar_waits_for_the_nse_close(
    stub: YahooStub, sleeps: list[float], now: datetime, last_date: date
) -> None:
    stub.serve("WSU.NS", (200, WSU_NSE.read_bytes()))
    source = _source(stub.base_url, sleeps, now=now)

    bars = source.fetch("WSU.NS", date(2023, 8, 4), date(2023, 8, 8))

    assert bars["date"].max() == pd.Timestamp(last_date)


def test_empty_weekend_answer_is_no_data(stub: YahooStub, sleeps: list[float]) -> None:
    stub.serve("AAPL", (200, AAPL_WEEKEND.read_bytes()))
    source = _source(stub.base_url, sleeps, interval="5m")

    with pytest.raises(NoDataError, match="AAPL"):
        source.fetch("AAPL", date(2025, 2, 1), date(2025, 2, 2))
    assert sleeps == []


def test_unknown_symbol_404_is_no_data_and_not_retried(
    source: YFinanceSource, stub: YahooStub, sleeps: list[float]
) -> None:
    stub.serve("WSKT.JK", (404, NOT_FOUND.read_bytes()))

    with pytest.raises(NoDataError, match=r"WSKT\.JK"):
        source.fetch("WSKT.JK", date(2020, 1, 1), date(2020, 1, 2))
    assert "WSKT.JK" in stub.chart_requests
    assert sleeps == []


def test_rate_limit_is_retried_until_yahoo_answers(
    source: YFinanceSource,
    stub: YahooStub,
    sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    stub.serve("MSFT", RATE_LIMITED, RATE_LIMITED, (200, MSFT_DIVIDENDS.read_bytes()))

    bars = source.fetch("MSFT", *MSFT_WINDOW)

    assert len(bars) == len(_chart(MSFT_DIVIDENDS)["timestamp"])
    assert sleeps == [1.0]
    assert "MSFT: attempt 1/3 failed (YFRateLimitError" in caplog.text


def test_server_error_is_retried(
    source: YFinanceSource, stub: YahooStub, sleeps: list[float]
) -> None:
    stub.serve("MSFT", SERVER_DOWN, (200, MSFT_DIVIDENDS.read_bytes()))

    bars = source.fetch("MSFT", *MSFT_WINDOW)

    assert len(bars) == len(_chart(MSFT_DIVIDENDS)["timestamp"])
    assert sleeps == [1.0]


def test_endless_rate_limit_gives_up_with_backoff_from_parameters(
    stub: YahooStub, sleeps: list[float]
) -> None:
    stub.serve("MSFT", RATE_LIMITED)
    retry = RetrySettings(
        attempts=4, initial_wait_seconds=2.0, max_wait_seconds=5.0, jitter_seconds=0.5
    )
    source = _source(stub.base_url, sleeps, retry=retry)

    with pytest.raises(SourceError, match=r"MSFT: .* after 4 attempts: YFRateLimitError") as raised:
        source.fetch("MSFT", *MSFT_WINDOW)

    assert not isinstance(raised.value, NoDataError)
    assert len(sleeps) == 3
    for wait, backoff in zip(sleeps, [2.0, 4.0, 5.0], strict=True):
        assert backoff <= wait <= backoff + 0.5


@pytest.mark.usefixtures("fresh_yfinance")
def test_unreachable_yahoo_gives_up_after_the_attempts(sleeps: list[float]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    source = _source(f"http://127.0.0.1:{closed_port}", sleeps)

    with pytest.raises(SourceError, match=r"MSFT: .* after 3 attempts: ConnectionError"):
        source.fetch("MSFT", *MSFT_WINDOW)
    assert sleeps == [1.0, 2.0]


def test_intraday_bars_keep_exchange_time_and_drop_the_unfinished_bar() -> None:
    index = pd.DatetimeIndex(
        ["2024-06-04 09:15", "2024-06-04 09:20", "2024-06-04 09:25"], tz="Asia/Kolkata"
    )
    history = pd.DataFrame({column: [1.0, 2.0, 3.0] for column in YF_COLUMNS}, index=index)
    now = datetime(2024, 6, 4, 3, 57, tzinfo=UTC)  # 09:27 in Kolkata: the 09:25 bar is still open

    bars = _to_bronze(_final_bars(history, "5m", now), "5m")

    assert bars["date"].tolist() == [
        pd.Timestamp("2024-06-04 09:15"),
        pd.Timestamp("2024-06-04 09:20"),
    ]
    assert list(bars.columns) == list(BRONZE_COLUMNS)


def test_from_params_reads_the_ingestion_settings() -> None:
    params = {
        "source": "yfinance",
        "interval": "15m",
        "retry": {
            "attempts": 5,
            "initial_wait_seconds": 0.5,
            "max_wait_seconds": 10.0,
            "jitter_seconds": 0.25,
        },
        "timeout_seconds": 12,
        "bar_settle_seconds": 90,
    }

    source = YFinanceSource.from_params(params)

    assert source.interval == "15m"
    assert source.retry == RetrySettings(5, 0.5, 10.0, 0.25)
    assert source.timeout_seconds == 12.0
    assert source.bar_settle == pd.Timedelta(seconds=90)


def test_unknown_interval_is_rejected() -> None:
    with pytest.raises(ValueError, match="1h"):
        YFinanceSource.from_params({"interval": "1h"})


# Intraday bars: no recorded NSE intraday answer exists, so the stub draws a synthetic NSE market
# (tests/sources/yahoo_stub.py) for the asked window, the way Yahoo answers at the stub's clock.

IST = "Asia/Kolkata"
MID_SESSION = pd.Timestamp("2024-06-04 10:37:12", tz=IST).to_pydatetime()
AFTER_CLOSE = pd.Timestamp("2024-06-04 16:05", tz=IST).to_pydatetime()


def _intraday_source(
    stub: YahooStub, sleeps: list[float], interval: str, now: datetime, settle: float = 60.0
) -> YFinanceSource:
    """A source at `now` on the stub's synthetic market, whose clock is set to the same moment."""
    stub.clock = lambda: now
    stub.market("TCS.NS")
    return YFinanceSource(
        interval=interval,
        retry=NO_JITTER,
        timeout_seconds=5,
        bar_settle_seconds=settle,
        session=LocalYahooSession(stub.base_url),
        now=lambda: now,
        sleep=sleeps.append,
    )


@pytest.mark.parametrize(
    ("interval", "last_bar", "bars_today"),
    [("5m", "2024-06-04 10:30", 16), ("15m", "2024-06-04 10:15", 5)],
)
def test_intraday_bars_in_exchange_time_without_the_bar_in_progress(
    stub: YahooStub, sleeps: list[float], interval: str, last_bar: str, bars_today: int
) -> None:
    source = _intraday_source(stub, sleeps, interval, MID_SESSION)

    bars = source.fetch("TCS.NS", date(2024, 6, 3), date(2024, 6, 4))

    assert list(bars.columns) == list(BRONZE_COLUMNS)
    assert bars["date"].dtype == "datetime64[ns]"  # naive: Asia/Kolkata wall-clock time
    assert bars["date"].iloc[0] == pd.Timestamp("2024-06-03 09:15")
    assert bars["date"].iloc[-1] == pd.Timestamp(last_bar)
    assert (bars["date"] == bars["date"].dt.floor(interval.replace("m", "min"))).all()
    assert (bars["date"].dt.normalize() == pd.Timestamp("2024-06-04")).sum() == bars_today
    assert bars["date"].is_unique and bars["date"].is_monotonic_increasing
    np.testing.assert_array_equal(bars["adj_close"], bars["close"])  # Yahoo sends no adjclose


def test_a_bar_is_kept_only_once_it_has_settled(stub: YahooStub, sleeps: list[float]) -> None:
    settled = _intraday_source(stub, sleeps, "5m", MID_SESSION, settle=60.0)
    unsettled = _intraday_source(stub, sleeps, "5m", MID_SESSION, settle=180.0)

    window = (date(2024, 6, 4), date(2024, 6, 4))
    assert settled.fetch("TCS.NS", *window)["date"].iloc[-1] == pd.Timestamp("2024-06-04 10:30")
    assert unsettled.fetch("TCS.NS", *window)["date"].iloc[-1] == pd.Timestamp("2024-06-04 10:25")


def test_after_the_close_the_whole_session_is_there(stub: YahooStub, sleeps: list[float]) -> None:
    source = _intraday_source(stub, sleeps, "15m", AFTER_CLOSE)

    bars = source.fetch("TCS.NS", date(2024, 6, 4), date(2024, 6, 4))

    assert len(bars) == 25  # 09:15 to 15:15: the 15:15 bar ends at the 15:30 close
    assert bars["date"].iloc[-1] == pd.Timestamp("2024-06-04 15:15")


def test_intraday_start_is_clamped_to_yahoos_60_days(
    stub: YahooStub, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    source = _intraday_source(stub, sleeps, "5m", AFTER_CLOSE)

    bars = source.fetch("TCS.NS", date(2024, 1, 1), date(2024, 6, 4))

    assert source.earliest_start(AFTER_CLOSE) == date(2024, 4, 6)
    assert "TCS.NS: Yahoo serves 5m bars of the last 60 days only; starting at 2024-04-06" in (
        caplog.text
    )
    assert bars["date"].iloc[0] == pd.Timestamp("2024-04-08 09:15")  # 04-06 is a Saturday
    asked = pd.Timestamp(int(stub.chart_queries[-1]["period1"]), unit="s", tz="UTC")
    assert asked.tz_convert(IST) == pd.Timestamp("2024-04-06", tz=IST)


def test_yahoo_refuses_an_unclamped_intraday_window(stub: YahooStub, sleeps: list[float]) -> None:
    source = _intraday_source(stub, sleeps, "5m", AFTER_CLOSE)

    with pytest.raises(NoDataError, match="within the last 60 days"):
        source._history_with_retries("TCS.NS", date(2024, 1, 1), date(2024, 6, 4))
    assert sleeps == []


def test_intraday_weekend_window_is_no_data(stub: YahooStub, sleeps: list[float]) -> None:
    source = _intraday_source(stub, sleeps, "5m", AFTER_CLOSE)

    with pytest.raises(NoDataError, match=r"TCS\.NS"):
        source.fetch("TCS.NS", date(2024, 6, 1), date(2024, 6, 2))


def test_live_snapshot_row_is_never_a_bar() -> None:
    index = pd.DatetimeIndex(
        ["2024-06-04 15:20", "2024-06-04 15:25", "2024-06-04 15:29:58"], tz="Asia/Kolkata"
    )
    history = pd.DataFrame({column: [1.0, 2.0, 3.0] for column in YF_COLUMNS}, index=index)
    now = datetime(2024, 6, 4, 11, 0, tzinfo=UTC)  # 16:30 in Kolkata, long after the close

    bars = _final_bars(history, "5m", now)

    assert bars.index.tz_localize(None).tolist() == [
        pd.Timestamp("2024-06-04 15:20"),
        pd.Timestamp("2024-06-04 15:25"),
    ]


def test_a_busy_yfinance_cache_is_retried_other_cache_errors_are_not():
    from peewee import OperationalError

    from stock_pipeline.sources.yfinance_source import _is_transient

    assert _is_transient(OperationalError("database is locked"))
    assert not _is_transient(OperationalError("no such table: _kv"))
