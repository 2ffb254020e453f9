"""Incremental ingestion: only missing sessions, refresh on re-adjusted history, failures contained."""

from datetime import date

import pandas as pd
import pytest

from stock_pipeline.pipelines.ingestion.nodes import (
    IngestionFailedError,
    check_failure_budget_node,
    ingest_prices_node,
    overlap_differs,
    to_bronze_text,
)
from stock_pipeline.sources import NoDataError
from stock_pipeline.sources.base import BRONZE_COLUMNS
from stock_pipeline.trading_calendar import nse_sessions
from stock_pipeline.universe import UniverseError

RUN_CONTEXT = {"run_id": "test", "started_at": "2024-03-29T12:00:00+00:00"}


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
        return pd.DataFrame(
            {
                "date": days,
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
    monkeypatch.setattr("stock_pipeline.pipelines.ingestion.nodes.build_source", lambda _: source)
    loaders = {ticker: (lambda frame=frame: frame) for ticker, frame in stored.items()}
    return ingest_prices_node(loaders, params(**overrides), RUN_CONTEXT)


def test_first_run_fetches_the_whole_window(monkeypatch):
    source = MarketSource()
    changed, report = run(source, {}, monkeypatch)
    assert set(changed) == {"AAA.NS", "BBB.NS"}
    assert report["counts"] == {"created": 2}
    assert changed["AAA.NS"]["date"].iloc[0] == "2024-01-01"
    assert list(changed["AAA.NS"].columns) == BRONZE_COLUMNS


def test_session_of_today_is_not_stored_before_close(monkeypatch):
    source = MarketSource()
    context_open = {"run_id": "t", "started_at": "2024-03-28T06:00:00+00:00"}  # 11:30 IST, open
    monkeypatch.setattr("stock_pipeline.pipelines.ingestion.nodes.build_source", lambda _: source)
    changed, _ = ingest_prices_node({}, params(), context_open)
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
    dates = changed["AAA.NS"]["date"]
    assert dates.is_unique
    assert dates.iloc[-1] == "2024-03-28"
    assert len(changed["AAA.NS"]) == len(nse_sessions("2024-01-01", "2024-03-28"))


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


def test_failure_budget():
    report = {
        "failed_ratio": 0.5,
        "tickers": {"A": {"status": "failed", "reason": "x"}, "B": {"status": "created"}},
    }
    with pytest.raises(IngestionFailedError, match="1 of 2 tickers failed"):
        check_failure_budget_node(report, 0.2)
    check_failure_budget_node(report, 0.5)


def test_bronze_text_round_trip():
    frame = MarketSource().fetch("AAA.NS", date(2024, 1, 1), date(2024, 1, 5))
    frame.loc[1, "close"] = float("nan")
    text = to_bronze_text(frame)
    assert text.loc[1, "close"] == ""
    assert text.loc[0, "date"] == "2024-01-01"
    assert float(text.loc[0, "close"]) == frame.loc[0, "close"]


def test_overlap_differs_within_tolerance():
    frame = to_bronze_text(MarketSource().fetch("AAA.NS", date(2024, 1, 1), date(2024, 1, 10)))
    nudged = frame.assign(close=(frame["close"].astype(float) * 1.0001).astype(str))
    assert not overlap_differs(frame, nudged, 0.0005)
    assert overlap_differs(
        frame, frame.assign(close=(frame["close"].astype(float) * 1.01).astype(str)), 0.0005
    )


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
