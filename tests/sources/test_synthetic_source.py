"""The seeded synthetic market: reproducible windows on the NSE calendar, valid bars."""

from datetime import date

import pytest

from stock_pipeline.contract import BRONZE_COLUMNS, OHLC
from stock_pipeline.sources import NoDataError, SourceError, SyntheticSource, build_source
from stock_pipeline.trading_calendar import nse_sessions


def test_bars_are_nse_sessions_with_consistent_ohlc():
    bars = SyntheticSource(seed=1).fetch("TCS.NS", date(2024, 1, 1), date(2024, 3, 28))
    assert list(bars.columns) == list(BRONZE_COLUMNS)
    assert list(bars["date"]) == list(nse_sessions("2024-01-01", "2024-03-28"))
    assert (bars["high"] >= bars[["open", "close", "low"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (bars[[*OHLC, "volume"]] > 0).all().all()


def test_any_window_of_a_ticker_is_the_same_path():
    source = SyntheticSource(seed=1)
    whole = source.fetch("INFY.NS", date(2024, 1, 1), date(2024, 6, 28)).set_index("date")
    part = source.fetch("INFY.NS", date(2024, 3, 1), date(2024, 4, 30)).set_index("date")
    assert part.equals(whole.loc[part.index])


def test_tickers_and_seeds_give_different_markets():
    window = (date(2024, 1, 1), date(2024, 1, 31))
    tcs = SyntheticSource(seed=1).fetch("TCS.NS", *window)["close"]
    assert not tcs.equals(SyntheticSource(seed=1).fetch("INFY.NS", *window)["close"])
    assert not tcs.equals(SyntheticSource(seed=2).fetch("TCS.NS", *window)["close"])


def test_empty_window_and_intraday_are_refused():
    with pytest.raises(NoDataError):
        SyntheticSource().fetch("TCS.NS", date(2024, 1, 6), date(2024, 1, 7))  # a weekend
    with pytest.raises(SourceError, match="daily bars only"):
        build_source({"source": "synthetic", "interval": "5m"})
