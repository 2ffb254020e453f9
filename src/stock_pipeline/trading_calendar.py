"""NSE trading sessions: XNSE (pandas_market_calendars) merged with the special sessions and
late-declared holidays of conf/<env>/calendar.yml; which days are sessions, which have closed.

Bar times are exchange wall-clock time: naive timestamps read as Asia/Kolkata (IST), the way the
bronze, silver and gold files store them. Daily bars are dated at midnight of their session.

The schedule covers whatever span is asked for (no fixed horizon) and grows on demand. A Kedro
session (CalendarHooks) and the API configure the amendments from their environment's
configuration; code outside them (tests, scripts) reads conf/base/calendar.yml of this project.
"""

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

NSE_CALENDAR = "XNSE"
NSE_TIMEZONE = "Asia/Kolkata"
NSE_FIRST_YEAR = 1994  # NSE's first trading year: earlier dates are bad data, not a calendar gap
REGULAR_HOURS = (time(9, 15), time(15, 30))  # a special session's hours when none are configured
# the base environment's calendar, where a run or the API found no configured one: relative to the
# working folder, the project's (a checkout, or the folder an installed package runs in)
CALENDAR_FILE = Path("conf") / "base" / "calendar.yml"

logger = logging.getLogger(__name__)
_lock = threading.RLock()  # ingestion asks from several threads at once


class CalendarConfigError(ValueError):
    """calendar.yml holds a date or time that does not parse, or a day listed twice."""


@dataclass(frozen=True)
class Amendments:
    """What the configuration changes in XNSE: special sessions (with optional IST hours) and holidays."""

    sessions: dict[pd.Timestamp, tuple[time | None, time | None]]
    holidays: frozenset[pd.Timestamp]


@dataclass
class _State:
    """The amendments in force, the schedule built so far and the years already warned about."""

    amendments: Amendments | None = None
    span: tuple[pd.Timestamp, pd.Timestamp] | None = None
    schedule: pd.DataFrame | None = None
    local_hours: pd.DataFrame | None = None
    curated_years: frozenset[int] | None = None
    warned_years: frozenset[int] = frozenset()


_state = _State()


def _day(value: Any, where: str) -> pd.Timestamp:
    """A configured date as a naive midnight timestamp."""
    try:
        return pd.Timestamp(str(value)).normalize()
    except ValueError:
        raise CalendarConfigError(f"calendar.yml: {where} {value!r} is not a date") from None


def _clock(value: Any, where: str) -> time | None:
    """A configured "HH:MM" time; None when left out."""
    if value is None:
        return None
    try:
        return time.fromisoformat(value)
    except (TypeError, ValueError):
        raise CalendarConfigError(
            f'calendar.yml: {where} is {value!r}; write it as a quoted "HH:MM"'
        ) from None


def parse_amendments(config: Mapping[str, Any] | None) -> Amendments:
    """The special sessions and holidays of a calendar configuration (calendar.yml's content)."""
    config = config or {}
    sessions = {}
    for key, entry in (config.get("special_sessions") or {}).items():
        hours = entry or {}
        sessions[_day(key, "special session")] = (
            _clock(hours.get("open"), f"{key} open"),
            _clock(hours.get("close"), f"{key} close"),
        )
    holidays = frozenset(_day(key, "holiday") for key in (config.get("holidays") or {}))
    both = sorted(str(day.date()) for day in holidays & sessions.keys())
    if both:
        raise CalendarConfigError(
            f"calendar.yml lists {both} both as special sessions and holidays"
        )
    return Amendments(sessions, holidays)


def configure(config: Mapping[str, Any] | None) -> None:
    """Use these amendments from now on (None: conf/base/calendar.yml of the project again)."""
    amendments = None if config is None else parse_amendments(config)
    with _lock:
        global _state  # noqa: PLW0603
        _state = _State(amendments=amendments, warned_years=_state.warned_years)


def adopt(amendments: Amendments) -> None:
    """Use another process's amendments (a worker of the local engine), keeping the schedule built
    so far when they are the ones in force."""
    with _lock:
        global _state  # noqa: PLW0603
        if _state.amendments != amendments:
            _state = _State(amendments=amendments, warned_years=_state.warned_years)


def amendments_in_force() -> Amendments:
    """The amendments this process uses (configured, or the project's calendar.yml)."""
    with _lock:
        return _amendments()


def _amendments() -> Amendments:
    """The configured amendments; the project's calendar.yml when none were configured."""
    if _state.amendments is None:
        if CALENDAR_FILE.exists():
            _state.amendments = parse_amendments(yaml.safe_load(CALENDAR_FILE.read_text()))
        else:
            logger.warning("No %s: NSE special sessions are not known", CALENDAR_FILE)
            _state.amendments = Amendments({}, frozenset())
    return _state.amendments


def _xnse() -> Any:
    """The XNSE calendar of pandas_market_calendars."""
    # imported on first use: the calendar library takes a third of a second to import, which every
    # `kedro run` would pay through the pipeline registry, calendar or not
    import pandas_market_calendars as mcal  # noqa: PLC0415

    return mcal.get_calendar(NSE_CALENDAR)


def _at(day: pd.Timestamp, clock: time) -> pd.Timestamp:
    """The moment (UTC) of an IST wall-clock time on a day."""
    local = day + pd.Timedelta(hours=clock.hour, minutes=clock.minute)
    return local.tz_localize(NSE_TIMEZONE).tz_convert(UTC)


def _build(first: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:
    """XNSE sessions (open/close in UTC) from first to last, minus the holidays, plus the sessions."""
    amendments = _amendments()
    xnse = _xnse().schedule(first, last)
    xnse = xnse[~xnse.index.isin(list(amendments.holidays))]
    added = {}
    for day, (open_, close) in amendments.sessions.items():
        if not first <= day <= last or (open_ is None and close is None and day in xnse.index):
            continue  # outside the span, or a session XNSE has, with hours XNSE knows
        added[day] = [
            _at(day, clock or regular)
            for clock, regular in zip((open_, close), REGULAR_HOURS, strict=True)
        ]
    if not added:
        return xnse
    extra = pd.DataFrame.from_dict(added, orient="index", columns=list(xnse.columns))
    extra.index = extra.index.astype(xnse.index.dtype)
    return pd.concat([xnse.drop(index=list(added), errors="ignore"), extra]).sort_index()


def _curated_years() -> frozenset[int]:
    """Years for which XNSE or the configuration knows at least one NSE holiday."""
    if _state.curated_years is None:
        xnse = pd.DatetimeIndex(_xnse().holidays().holidays)
        configured = [day.year for day in _amendments().holidays]
        _state.curated_years = frozenset({*xnse.year.tolist(), *configured})
    return _state.curated_years


def _warn_uncurated(first: pd.Timestamp, last: pd.Timestamp) -> None:
    """Warn once per year reached for which no holiday is known: every weekday counts as a session."""
    years = range(max(first.year, NSE_FIRST_YEAR), last.year + 1)
    unknown = [y for y in years if y not in _curated_years() and y not in _state.warned_years]
    if unknown:
        _state.warned_years = _state.warned_years | set(unknown)
        logger.warning(
            "pandas_market_calendars (%s) knows no NSE holidays for %s: every weekday counts as a "
            "session. Upgrade pandas_market_calendars, or list that year's holidays under "
            "`holidays:` in conf/base/calendar.yml",
            NSE_CALENDAR,
            ", ".join(map(str, unknown)),
        )


def _schedule(start: date | str | pd.Timestamp, end: date | str | pd.Timestamp) -> pd.DataFrame:
    """Sessions (open/close in UTC) of a span holding start..end, built out a year either side."""
    first, last = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    first, last = min(first, last), max(first, last)
    with _lock:
        _warn_uncurated(first, last)
        span = _state.span
        if span is None or first < span[0] or last > span[1]:
            low = min(first, span[0]) if span else first
            high = max(last, span[1]) if span else last
            span = (pd.Timestamp(low.year - 1, 1, 1), pd.Timestamp(high.year + 1, 12, 31))
            _state.schedule = _build(*span)
            _state.local_hours = _state.schedule.apply(
                lambda column: column.dt.tz_convert(NSE_TIMEZONE).dt.tz_localize(None)
            )
            _state.span = span
        return _state.schedule


def schedule(start: date | str, end: date | str) -> pd.DataFrame:
    """NSE sessions from start to end inclusive, with their open and close (UTC)."""
    frame = _schedule(start, end)
    return frame[(frame.index >= pd.Timestamp(start)) & (frame.index <= pd.Timestamp(end))]


def _span_of(dates: pd.Series) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and last day among the dates (today when there are none)."""
    present = dates.dropna()
    if present.empty:
        today = pd.Timestamp.now().normalize()
        return today, today
    return present.min().normalize(), present.max().normalize()


def exchange_time(moment: datetime | str) -> pd.Timestamp:
    """A moment as naive Asia/Kolkata wall-clock time (naive input is read as UTC)."""
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp
    return stamp.tz_convert(NSE_TIMEZONE).tz_localize(None)


def nse_sessions(start: date | str, end: date | str) -> pd.DatetimeIndex:
    """NSE session dates (naive, midnight) from start to end inclusive."""
    sessions = _schedule(start, end).index
    return sessions[sessions.slice_indexer(pd.Timestamp(start), pd.Timestamp(end))]


def is_session(dates: pd.Series) -> pd.Series:
    """True where a date is an NSE session."""
    return dates.dt.normalize().isin(_schedule(*_span_of(dates)).index)


def is_special_session(dates: pd.Series) -> pd.Series:
    """True where a date is one of the configured special sessions (Muhurat, Budget day, ...)."""
    special = pd.DatetimeIndex(list(_amendments().sessions))
    return pd.Series(dates.dt.normalize().isin(special), index=dates.index, dtype=bool)


def within_session_hours(stamps: pd.Series) -> pd.Series:
    """True where a bar starts inside its NSE session: at or after the open, before the close (IST)."""
    days = stamps.dt.normalize()
    _schedule(*_span_of(stamps))
    hours = _state.local_hours
    opens = days.map(hours["market_open"])
    closes = days.map(hours["market_close"])
    return (stamps >= opens) & (stamps < closes)


def last_closed_session(now: datetime | None = None) -> pd.Timestamp:
    """The latest session whose close is at or before now: a bar for it is final."""
    now_utc = pd.Timestamp(now or datetime.now(UTC))
    now_utc = now_utc.tz_localize(UTC) if now_utc.tzinfo is None else now_utc.tz_convert(UTC)
    day = now_utc.tz_localize(None).normalize()
    closes = _schedule(day - pd.Timedelta(days=31), day + pd.Timedelta(days=1))["market_close"]
    return closes.index[closes <= now_utc].max()


def sessions_back(day: date | str, count: int) -> pd.Timestamp:
    """The session `count` sessions before `day` (day itself when count is 0 and it is a session)."""
    day = pd.Timestamp(day)
    sessions = _schedule(day - pd.Timedelta(days=2 * count + 31), day).index
    position = sessions.searchsorted(day, side="right") - 1
    return sessions[max(position - count, 0)]


def expected_last_session(end_date: date | str | None, now: datetime) -> pd.Timestamp:
    """The last session a dataset should hold: the configured end date, capped at the last closed one."""
    closed = last_closed_session(now)
    return closed if end_date is None else min(sessions_back(end_date, 0), closed)


def session_close(day: pd.Timestamp) -> pd.Timestamp:
    """When the session of `day` closed (UTC)."""
    return _schedule(day, day)["market_close"].loc[day]
