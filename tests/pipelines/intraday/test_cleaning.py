"""The cleaning rules on intraday bars: session by date, hours by time, future by the run's time."""

import numpy as np
import pandas as pd

from stock_pipeline.pipelines.cleaning.nodes import report_quality, validate_prices
from stock_pipeline.pipelines.cleaning.rules import outside_session_hours, parse_numbers

NO_PLAN = pd.DataFrame(columns=["ticker", "mode", "last_stored"])  # every ticker cleaned in full
RUN_CONTEXT = {"run_id": "intraday", "started_at": "2024-06-04T05:07:12+00:00"}  # 10:37:12 IST
PARAMS = {
    "ffill_limit": 2,
    "check_trading_days": True,
    "outliers": {
        "method": "mad",
        "action": "flag",
        "iqr_multiplier": 3.0,
        "zscore_threshold": 5.0,
        "mad_window": 60,
        "mad_threshold": 8.0,
    },
    "split_jump_threshold": 0.35,
    "freshness_threshold_hours": 36,
}


def bars(stamps: list[str], ticker: str = "AAA.NS") -> pd.DataFrame:
    """Bronze text rows of 5m bars at the given times, prices drifting up a little."""
    close = 100 + 0.05 * np.arange(len(stamps))
    text = lambda values: [f"{value:.2f}" for value in values]  # noqa: E731
    return pd.DataFrame(
        {
            "ticker": ticker,
            "date": stamps,
            "open": text(close - 0.02),
            "high": text(close + 0.1),
            "low": text(close - 0.1),
            "close": text(close),
            "adj_close": text(close),
            "volume": "5000",
            "dividends": "0.0",
            "stock_splits": "0.0",
        }
    )


def session(day: str, first: str = "09:15", last: str = "15:25") -> list[str]:
    """The 5m bar times of one session, as bronze writes them."""
    times = pd.date_range(f"{day} {first}", f"{day} {last}", freq="5min")
    return list(times.strftime("%Y-%m-%d %H:%M:%S"))


def test_a_clean_session_passes_with_its_times():
    raw = bars(session("2024-06-03"))
    clean, quarantine = validate_prices(raw, PARAMS, RUN_CONTEXT)
    assert quarantine.empty
    assert len(clean) == 75
    assert clean["date"].iloc[-1] == pd.Timestamp("2024-06-03 15:25")


def test_off_hours_weekend_duplicate_and_future_bars_are_quarantined():
    stamps = [
        "2024-06-03 09:10:00",  # before the open
        *session("2024-06-03", "09:15", "09:30"),
        "2024-06-03 09:30:00",  # fetched twice: the later row is kept
        "2024-06-03 15:30:00",  # at the close: no bar starts there
        "2024-06-03 17:45:00",  # after hours
        "2024-06-01 10:00:00",  # a Saturday
        "2024-06-04 10:30:00",  # finished before the run (10:37:12)
        "2024-06-04 10:45:00",  # after the run's time, on the run's day
    ]
    clean, quarantine = validate_prices(bars(stamps), PARAMS, RUN_CONTEXT)
    rules = quarantine.set_index("raw_date")["rule"]
    assert rules.to_dict() == {
        "2024-06-03 09:10:00": "outside_session_hours",
        "2024-06-03 09:30:00": "duplicate_date",
        "2024-06-03 15:30:00": "outside_session_hours",
        "2024-06-03 17:45:00": "outside_session_hours",
        "2024-06-01 10:00:00": "non_trading_day",
        "2024-06-04 10:45:00": "future_date",
    }
    assert clean["date"].dt.strftime("%H:%M").tolist() == [
        "09:15",
        "09:20",
        "09:25",
        "09:30",
        "10:30",
    ]


def test_daily_bars_are_not_held_to_session_hours():
    daily = parse_numbers(bars(["2024-06-03", "2024-06-04"], ticker="DAY.NS"))
    intraday = parse_numbers(bars(["2024-06-03 09:15:00", "2024-06-03 16:00:00"]))
    assert not outside_session_hours(daily).any()
    assert outside_session_hours(intraday).tolist() == [False, True]


def test_freshness_counts_sessions_from_the_last_bars_day():
    raw = bars(session("2024-05-31") + session("2024-06-03") + session("2024-06-04", last="10:30"))
    clean, quarantine = validate_prices(raw, PARAMS, RUN_CONTEXT)
    ingestion = {"window": {"end": "2024-06-04"}, "tickers": {"AAA.NS": {"status": "created"}}}
    report = report_quality(raw, clean, quarantine, {}, ingestion, PARAMS, RUN_CONTEXT, NO_PLAN)
    freshness = report["tickers"]["AAA.NS"]["freshness"]
    assert freshness["last_session"] == "2024-06-04"
    assert freshness["missing_sessions"] == 0
    assert not freshness["stale"]

    stale_raw = bars(session("2024-05-30"))
    stale_clean, stale_quarantine = validate_prices(stale_raw, PARAMS, RUN_CONTEXT)
    report = report_quality(
        stale_raw, stale_clean, stale_quarantine, {}, ingestion, PARAMS, RUN_CONTEXT, NO_PLAN
    )
    freshness = report["tickers"]["AAA.NS"]["freshness"]
    assert freshness["missing_sessions"] == 2  # 05-31 and 06-03 closed since
    assert freshness["stale"]
