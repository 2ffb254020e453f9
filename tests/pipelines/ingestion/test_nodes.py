"""Incremental ingestion: only missing sessions, refresh on re-adjusted history, failures contained."""

import logging
from datetime import date

import pandas as pd
import pytest

from stock_pipeline.contract import BRONZE_COLUMNS, BronzeAppend
from stock_pipeline.pipelines.ingestion.nodes import (
    IngestionFailedError,
    check_daily_ingestion_settings,
    check_failure_budget,
    check_intraday_ingestion_settings,
    fetch_window,
    ingest_prices,
    overlap_change,
    refresh_reason,
    to_bronze_text,
)
from stock_pipeline.sources import NoDataError
from stock_pipeline.sources.base import bar_spacing
from stock_pipeline.trading_calendar import nse_sessions
from stock_pipeline.universe import UniverseError

RUN_CONTEXT = {"run_id": "test", "started_at": "2024-03-29T12:00:00+00:00"}


def bars(stamps: pd.DatetimeIndex, close) -> pd.DataFrame:
    """Bronze-shaped bars at `stamps` around the given closes, a fixed volume, no corporate actions."""
    return pd.DataFrame(
        {
            "date": stamps,
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "adj_close": close,
            "volume": 1000,
            "dividends": 0.0,
            "stock_splits": 0.0,
        }
    )


class MarketSource:
    """An in-memory market over NSE sessions; records every window asked for."""

    def __init__(self, scale: float = 1.0, unknown: tuple[str, ...] = ()):
        self.scale = scale
        self.unknown = unknown
        self.calls: list[tuple[str, date, date]] = []

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        self.calls.append((ticker, start, end))
        if ticker in self.unknown:
            raise NoDataError(f"{ticker}: symbol may be delisted")
        days = nse_sessions(start, end)
        close = (100.0 + (days - pd.Timestamp("2024-01-01")).days.to_numpy(float)) * self.scale
        return bars(days, close)


def params(**overrides) -> dict:
    base = {
        "source": "memory",
        "interval": "1d",
        "tickers": ["AAA.NS", "BBB.NS"],
        "start_date": "2024-01-01",
        "end_date": None,
        "max_workers": 2,
        "overlap_sessions": 5,
        "refresh_tolerance": 0.0005,
        "max_failed_ratio": 0.2,
    }
    return base | overrides


def run(source: MarketSource, stored: dict, monkeypatch, **overrides):
    monkeypatch.setattr("stock_pipeline.pipelines.ingestion.nodes.build_source", lambda *_: source)
    loaders = {ticker: (lambda frame=frame: frame) for ticker, frame in stored.items()}
    return ingest_prices(loaders, params(**overrides), RUN_CONTEXT)


def test_first_run_fetches_the_whole_window(monkeypatch):
    source = MarketSource()
    changed, report = run(source, {}, monkeypatch)
    assert set(changed) == {"AAA.NS", "BBB.NS"}
    assert report["counts"] == {"created": 2}
    assert changed["AAA.NS"]["date"].iloc[0] == "2024-01-01"
    assert list(changed["AAA.NS"].columns) == list(BRONZE_COLUMNS)


def test_session_of_today_is_not_stored_before_close(monkeypatch):
    source = MarketSource()
    context_open = {"run_id": "t", "started_at": "2024-03-28T06:00:00+00:00"}  # 11:30 IST, open
    monkeypatch.setattr("stock_pipeline.pipelines.ingestion.nodes.build_source", lambda *_: source)
    changed, _ = ingest_prices({}, params(), context_open)
    assert changed["AAA.NS"]["date"].iloc[-1] == "2024-03-27"


def test_rerun_fetches_only_the_overlap_and_writes_nothing(monkeypatch):
    first, _ = run(MarketSource(), {}, monkeypatch)
    source = MarketSource()
    changed, report = run(source, first, monkeypatch)
    assert changed == {}
    assert report["counts"] == {"unchanged": 2}
    last = pd.Timestamp(first["AAA.NS"]["date"].iloc[-1])
    overlap_start = nse_sessions("2024-01-01", last)[-6]
    assert {call[1] for call in source.calls} == {overlap_start.date()}


def test_new_sessions_are_appended(monkeypatch):
    first, _ = run(MarketSource(), {}, monkeypatch, end_date="2024-03-15")
    changed, report = run(MarketSource(), first, monkeypatch)
    assert report["tickers"]["AAA.NS"]["status"] == "updated"
    assert isinstance(changed["AAA.NS"], BronzeAppend)  # only the new sessions are written
    dates = changed["AAA.NS"].rows["date"]
    assert list(dates) == [str(day.date()) for day in nse_sessions("2024-03-18", "2024-03-28")]
    assert report["tickers"]["AAA.NS"]["rows_stored"] == len(
        nse_sessions("2024-01-01", "2024-03-28")
    )


def test_readjusted_overlap_triggers_a_full_refresh(monkeypatch):
    first, _ = run(MarketSource(), {}, monkeypatch, end_date="2024-03-15")
    source = MarketSource(scale=0.5)  # a 1:1 bonus re-adjusts the whole history
    changed, report = run(source, first, monkeypatch)
    assert report["tickers"]["AAA.NS"]["status"] == "refreshed"
    assert "corporate-action" in report["tickers"]["AAA.NS"]["reason"]
    assert float(changed["AAA.NS"]["close"].iloc[0]) == 50.0
    assert (("AAA.NS", date(2024, 1, 1), date(2024, 3, 28))) in source.calls


def test_one_bad_ticker_does_not_stop_the_others(monkeypatch):
    source = MarketSource(unknown=("BBB.NS",))
    changed, report = run(source, {}, monkeypatch)
    assert set(changed) == {"AAA.NS"}
    assert report["tickers"]["BBB.NS"]["status"] == "failed"
    assert "delisted" in report["tickers"]["BBB.NS"]["reason"]
    assert report["failed_ratio"] == 0.5
    outcomes = report["ticker_outcomes"]  # what the run record keeps
    assert outcomes["ok"] == ["AAA.NS"]
    assert list(outcomes["failed"]) == ["BBB.NS"] and "delisted" in outcomes["failed"]["BBB.NS"]


def test_failure_budget():
    report = {
        "failed_ratio": 0.5,
        "tickers": {"A": {"status": "failed", "reason": "x"}, "B": {"status": "created"}},
    }
    with pytest.raises(IngestionFailedError, match="1 of 2 tickers failed"):
        check_failure_budget(report, 0.2)
    check_failure_budget(report, 0.5)
    every_one = {"failed_ratio": 1.0, "tickers": {"A": {"status": "failed", "reason": "x"}}}
    with pytest.raises(IngestionFailedError, match="1 of 1 tickers failed"):
        check_failure_budget(every_one, 1.0)  # nothing fetched is a failure whatever the ratio


def test_bronze_text_round_trip():
    frame = MarketSource().fetch("AAA.NS", date(2024, 1, 1), date(2024, 1, 5))
    frame.loc[1, "close"] = float("nan")
    text = to_bronze_text(frame)
    assert text.loc[1, "close"] == ""
    assert text.loc[0, "date"] == "2024-01-01"
    assert float(text.loc[0, "close"]) == frame.loc[0, "close"]


def test_a_refresh_only_beyond_the_tolerance():
    frame = to_bronze_text(MarketSource().fetch("AAA.NS", date(2024, 1, 1), date(2024, 1, 10)))
    nudged = frame.assign(close=(frame["close"].astype(float) * 1.0001).astype(str))
    assert refresh_reason(frame, nudged, 0.0005, "prices in the overlap") is None
    moved = frame.assign(close=(frame["close"].astype(float) * 1.01).astype(str))
    reason = refresh_reason(frame, moved, 0.0005, "prices in the overlap")
    assert reason.startswith("prices in the overlap changed: corporate-action refresh")


def test_universe_is_validated_before_fetching(monkeypatch):
    source = MarketSource()
    with pytest.raises(UniverseError, match=r"entry 2 'bad symbol'"):
        run(source, {}, monkeypatch, tickers=["AAA.NS", "bad symbol"])
    with pytest.raises(UniverseError, match="more than once"):
        run(source, {}, monkeypatch, tickers=["AAA.NS", "AAA.NS"])
    assert source.calls == []


def test_universe_from_a_file(monkeypatch, tmp_path):
    universe = tmp_path / "universe.txt"
    universe.write_text("# IT\nCCC.NS\n\nM&M.NS  # autos\n")
    changed, report = run(MarketSource(), {}, monkeypatch, universe_file=str(universe))
    assert list(report["tickers"]) == ["CCC.NS", "M&M.NS"]
    assert set(changed) == {"CCC.NS", "M&M.NS"}


class IntradayMarket(MarketSource):
    """5m bars over NSE sessions (09:15 to 15:25 IST) up to `until`, served from `earliest` on."""

    def __init__(self, until: str, earliest: date | None = None, scale: float = 1.0):
        super().__init__(scale=scale)
        self.until = pd.Timestamp(until)
        self.earliest = earliest

    def earliest_start(self, now) -> date | None:
        return self.earliest

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        self.calls.append((ticker, start, end))
        days = nse_sessions(start, end)
        stamps = pd.DatetimeIndex(
            [
                stamp
                for day in days
                for stamp in pd.date_range(day + pd.Timedelta("9h15min"), periods=75, freq="5min")
            ]
        )
        stamps = stamps[stamps + pd.Timedelta("5min") <= self.until]
        close = (100.0 + (stamps - pd.Timestamp("2024-01-01")).total_seconds() / 86400) * self.scale
        return bars(stamps, close)


def intraday_run(source, stored, monkeypatch, started_at, **overrides):
    monkeypatch.setattr("stock_pipeline.pipelines.ingestion.nodes.build_source", lambda *_: source)
    loaders = {ticker: (lambda frame=frame: frame) for ticker, frame in stored.items()}
    context = {"run_id": "intraday", "started_at": started_at}
    return ingest_prices(loaders, params(interval="5m", **overrides), context)


def test_settings_nodes_keep_each_bronze_layer_to_its_intervals():
    assert check_daily_ingestion_settings(params())["interval"] == "1d"
    assert check_intraday_ingestion_settings(params(interval="15m"))["interval"] == "15m"
    with pytest.raises(ValueError, match=r"--pipelines=intraday --params=ingestion.interval=5m"):
        check_daily_ingestion_settings(params(interval="5m"))
    with pytest.raises(ValueError, match=r"'1d'.*5m/15m bars only"):
        check_intraday_ingestion_settings(params())


def test_intraday_window_ends_today_and_starts_within_the_source_limit(caplog):
    context = {"run_id": "t", "started_at": "2024-06-04T05:07:00+00:00"}  # 10:37 IST, session open
    assert fetch_window(params(), context) == (date(2024, 1, 1), date(2024, 6, 3))
    with caplog.at_level(logging.WARNING):
        window = fetch_window(params(interval="5m"), context, earliest=date(2024, 4, 6))
    assert window == (date(2024, 4, 6), date(2024, 6, 4))
    assert "start_date 2024-01-01 is too far back for 5m bars" in caplog.text
    assert fetch_window(params(interval="5m", end_date="2024-05-31"), context)[1] == date(
        2024, 5, 31
    )


def test_intraday_first_run_then_only_new_bars(monkeypatch):
    source = IntradayMarket(until="2024-06-04 10:37", earliest=date(2024, 5, 27))
    first, report = intraday_run(source, {}, monkeypatch, "2024-06-04T05:07:00+00:00")
    bars = first["AAA.NS"]
    assert report["window"] == {"start": "2024-05-27", "end": "2024-06-04"}
    assert bars["date"].iloc[0] == "2024-05-27 09:15:00"
    assert bars["date"].iloc[-1] == "2024-06-04 10:30:00"

    later = IntradayMarket(until="2024-06-04 15:45", earliest=date(2024, 5, 27))
    changed, report = intraday_run(later, first, monkeypatch, "2024-06-04T10:15:00+00:00")
    assert report["tickers"]["AAA.NS"]["status"] == "updated"
    dates = changed["AAA.NS"].rows["date"]
    assert dates.is_unique
    assert (dates.iloc[0], dates.iloc[-1]) == ("2024-06-04 10:35:00", "2024-06-04 15:25:00")
    overlap_start = nse_sessions("2024-05-01", "2024-06-04")[-6].date()
    assert {call[1] for call in later.calls} == {overlap_start}


def test_intraday_refresh_rewrites_and_drops_what_the_source_no_longer_serves(monkeypatch, caplog):
    first, _ = intraday_run(
        IntradayMarket(until="2024-06-04 15:45", earliest=date(2024, 5, 27)),
        {},
        monkeypatch,
        "2024-06-04T10:15:00+00:00",
    )
    bonus = IntradayMarket(until="2024-06-06 15:45", earliest=date(2024, 5, 29), scale=0.5)
    with caplog.at_level(logging.WARNING):
        changed, report = intraday_run(bonus, first, monkeypatch, "2024-06-06T10:15:00+00:00")
    entry = report["tickers"]["AAA.NS"]
    assert entry["status"] == "refreshed"
    assert "corporate-action refresh" in entry["reason"]
    assert changed["AAA.NS"]["date"].iloc[0] == "2024-05-29 09:15:00"
    assert "150 stored bars before 2024-05-29 were dropped" in caplog.text
    assert "corporate-action refresh (largest change low on 2024-05-29" in caplog.text


def test_switching_interval_rewrites_the_bronze_file(monkeypatch):
    first, _ = intraday_run(
        IntradayMarket(until="2024-06-04 15:45"),
        {},
        monkeypatch,
        "2024-06-04T10:15:00+00:00",
        start_date="2024-06-03",
    )
    monkeypatch.setattr(
        "stock_pipeline.pipelines.ingestion.nodes.build_source", lambda *_: MarketSource()
    )
    loaders = {ticker: (lambda frame=frame: frame) for ticker, frame in first.items()}
    context = {"run_id": "daily", "started_at": "2024-06-05T12:00:00+00:00"}
    changed, report = ingest_prices(loaders, params(start_date="2024-06-03"), context)
    entry = report["tickers"]["AAA.NS"]
    assert entry["status"] == "refreshed"
    assert entry["reason"] == "stored bars are 5m, this run asks for 1d: rewritten"
    assert changed["AAA.NS"]["date"].tolist() == ["2024-06-03", "2024-06-04", "2024-06-05"]


def test_bar_spacing_tells_daily_from_intraday():
    parse = lambda texts: pd.Series(pd.to_datetime(texts))  # noqa: E731
    assert bar_spacing(parse(["2024-06-03", "2024-06-04"])) == "1d"
    assert bar_spacing(parse(["2024-06-03 09:15", "2024-06-03 09:30", "2024-06-04 09:15"])) == "15m"
    assert bar_spacing(parse(["2024-06-03 15:15", "2024-06-04 09:15"])) is None


def test_refresh_is_logged_with_the_largest_change(monkeypatch, caplog):
    first, _ = run(MarketSource(), {}, monkeypatch, end_date="2024-03-15")
    with caplog.at_level(logging.INFO):
        run(MarketSource(scale=0.5), first, monkeypatch)
    change = overlap_change(
        first["AAA.NS"],
        to_bronze_text(MarketSource(0.5).fetch("AAA.NS", date(2024, 3, 8), date(2024, 3, 15))),
    )
    assert change.describe() == "low on 2024-03-11: 169.00 -> 84.00 (-50.30%)"
    assert "AAA.NS: prices in the overlap changed: corporate-action refresh" in caplog.text
    assert "refreshed (history rewritten): AAA.NS, BBB.NS" in caplog.text


def test_an_earlier_start_date_backfills_the_missing_head(monkeypatch, caplog):
    first, _ = run(MarketSource(), {}, monkeypatch, start_date="2024-02-01")
    source = MarketSource()
    with caplog.at_level(logging.INFO):
        changed, report = run(source, first, monkeypatch, start_date="2024-01-01")
    entry = report["tickers"]["AAA.NS"]
    head = nse_sessions("2024-01-01", "2024-01-31")
    assert entry["status"] == "backfilled"
    assert entry["backfilled_rows"] == len(head)
    assert report["counts"] == {"backfilled": 2}
    dates = pd.to_datetime(changed["AAA.NS"]["date"])
    assert dates.is_unique and dates.is_monotonic_increasing
    assert list(dates) == list(nse_sessions("2024-01-01", "2024-03-28"))
    # the head fetch stops a few stored sessions in, to compare them; the tail is the usual overlap
    head_call = next(call for call in source.calls if call[0] == "AAA.NS" and call[1].month == 1)
    assert head_call[2] == nse_sessions("2024-02-01", "2024-03-28")[5].date()
    assert f"AAA.NS: backfilled {len(head)} bars from 2024-01-01 to 2024-01-31" in caplog.text
    assert f"stored bars: AAA.NS ({len(head)} bars), BBB.NS ({len(head)} bars)" in caplog.text
    again, report = run(MarketSource(), changed, monkeypatch, start_date="2024-01-01")
    assert again == {}  # a full bronze file: nothing more to backfill
    assert report["counts"] == {"unchanged": 2}


def test_a_backfill_with_new_sessions_stores_both(monkeypatch):
    first, _ = run(MarketSource(), {}, monkeypatch, start_date="2024-02-01", end_date="2024-03-15")
    changed, report = run(MarketSource(), first, monkeypatch, start_date="2024-01-15")
    assert report["tickers"]["AAA.NS"]["status"] == "backfilled"
    dates = pd.to_datetime(changed["AAA.NS"]["date"])
    assert list(dates) == list(nse_sessions("2024-01-15", "2024-03-28"))


def test_a_readjusted_history_is_refetched_not_stitched_to_the_head(monkeypatch):
    first, _ = run(MarketSource(), {}, monkeypatch, start_date="2024-02-01")
    changed, report = run(MarketSource(scale=0.5), first, monkeypatch, start_date="2024-01-01")
    assert report["tickers"]["AAA.NS"]["status"] == "refreshed"
    assert report["tickers"]["AAA.NS"]["backfilled_rows"] == 0
    assert float(changed["AAA.NS"]["close"].iloc[-1]) == pytest.approx(
        0.5 * float(first["AAA.NS"]["close"].iloc[-1])
    )


def test_a_source_with_nothing_earlier_changes_nothing(monkeypatch):
    class ListedLate(MarketSource):
        def fetch(self, ticker, start, end):
            return super().fetch(ticker, max(start, date(2024, 2, 1)), end)

    first, _ = run(ListedLate(), {}, monkeypatch, start_date="2024-01-01")
    changed, report = run(ListedLate(), first, monkeypatch, start_date="2024-01-01")
    assert changed == {}
    assert report["counts"] == {"unchanged": 2}


def test_refetch_rewrites_every_stored_bar(monkeypatch, caplog):
    first, _ = run(MarketSource(), {}, monkeypatch, start_date="2024-01-01")
    source = MarketSource(scale=1.0001)  # within refresh_tolerance: an incremental run keeps it
    with caplog.at_level(logging.INFO):
        changed, report = run(
            source, first, monkeypatch, start_date="2024-02-01", tickers=["AAA.NS"], refetch=True
        )
    assert report["refetch"] is True
    assert report["tickers"]["AAA.NS"]["status"] == "refreshed"
    assert "ingestion.refetch=true" in report["tickers"]["AAA.NS"]["reason"]
    assert set(changed) == {"AAA.NS"}
    assert source.calls == [
        ("AAA.NS", date(2024, 1, 1), date(2024, 3, 28))
    ]  # the stored start kept
    assert float(changed["AAA.NS"]["close"].iloc[0]) == pytest.approx(100.01)
    assert len(changed["AAA.NS"]) == len(first["AAA.NS"])
    assert "refetch requested" in caplog.text


def test_refetch_must_be_a_boolean():
    with pytest.raises(ValueError, match=r"ingestion\.refetch"):
        check_daily_ingestion_settings(params(refetch="yes"))


def test_a_stored_file_lacking_columns_fails_its_ticker_only(monkeypatch):
    first, _ = run(MarketSource(), {}, monkeypatch, end_date="2024-03-15")
    first["AAA.NS"] = first["AAA.NS"].drop(columns=["close"])
    changed, report = run(MarketSource(), first, monkeypatch)
    assert set(changed) == {"BBB.NS"}
    assert report["tickers"]["AAA.NS"]["status"] == "failed"
    assert "close" in report["tickers"]["AAA.NS"]["reason"]
    assert report["tickers"]["BBB.NS"]["status"] == "updated"
