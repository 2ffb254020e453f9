"""NSE trading sessions from pandas_market_calendars (XNSE): which days are sessions, which have closed.

Bar times are exchange wall-clock time: naive timestamps read as Asia/Kolkata (IST), the way the
bronze, silver and gold files store them. Daily bars are dated at midnight of their session.
"""

from datetime import UTC, date, datetime
from functools import lru_cache

import pandas as pd

NSE_CALENDAR = "XNSE"
NSE_TIMEZONE = "Asia/Kolkata"


@lru_cache(maxsize=1)
def _schedule() -> pd.DataFrame:
    """XNSE open/close times (UTC) for every session the calendar knows."""
    # imported on first use: the calendar library takes a third of a second to import, which every
    # `kedro run` would pay through the pipeline registry, calendar or not
    import pandas_market_calendars as mcal  # noqa: PLC0415

    return mcal.get_calendar(NSE_CALENDAR).schedule("2000-01-01", "2030-12-31")


@lru_cache(maxsize=1)
def _local_hours() -> pd.DataFrame:
    """Each session's open and close as naive Asia/Kolkata wall-clock times."""
    return _schedule().apply(lambda column: column.dt.tz_convert(NSE_TIMEZONE).dt.tz_localize(None))


def exchange_time(moment: datetime | str) -> pd.Timestamp:
    """A moment as naive Asia/Kolkata wall-clock time (naive input is read as UTC)."""
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp
    return stamp.tz_convert(NSE_TIMEZONE).tz_localize(None)


def nse_sessions(start: date | str, end: date | str) -> pd.DatetimeIndex:
    """NSE session dates (naive, midnight) from start to end inclusive."""
    sessions = _schedule().index
    return sessions[(sessions >= pd.Timestamp(start)) & (sessions <= pd.Timestamp(end))]


def is_session(dates: pd.Series) -> pd.Series:
    """True where a date is an NSE session."""
    return dates.dt.normalize().isin(_schedule().index)


def within_session_hours(stamps: pd.Series) -> pd.Series:
    """True where a bar starts inside its NSE session: at or after the open, before the close (IST)."""
    days = stamps.dt.normalize()
    hours = _local_hours()
    opens = days.map(hours["market_open"])
    closes = days.map(hours["market_close"])
    return (stamps >= opens) & (stamps < closes)


def last_closed_session(now: datetime | None = None) -> pd.Timestamp:
    """The latest session whose close is at or before now: a bar for it is final."""
    now_utc = pd.Timestamp(now or datetime.now(UTC))
    now_utc = now_utc.tz_localize(UTC) if now_utc.tzinfo is None else now_utc.tz_convert(UTC)
    closes = _schedule()["market_close"]
    return closes.index[closes <= now_utc].max()


def sessions_back(day: date | str, count: int) -> pd.Timestamp:
    """The session `count` sessions before `day` (day itself when count is 0 and it is a session)."""
    sessions = _schedule().index
    position = sessions.searchsorted(pd.Timestamp(day), side="right") - 1
    return sessions[max(position - count, 0)]


def expected_last_session(end_date: date | str | None, now: datetime) -> pd.Timestamp:
    """The last session a dataset should hold: the configured end date, capped at the last closed one."""
    closed = last_closed_session(now)
    return closed if end_date is None else min(sessions_back(end_date, 0), closed)


def session_close(day: pd.Timestamp) -> pd.Timestamp:
    """When the session of `day` closed (UTC)."""
    return _schedule()["market_close"].loc[day]
