"""How fresh the data is against the NSE calendar, and the health score built on it."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd

from api.models import HealthComponent
from stock_pipeline.trading_calendar import NSE_TIMEZONE, last_closed_session, nse_sessions

NSE_CLOSE = time(15, 30)
WEIGHTS = {"data_freshness": 0.4, "database": 0.3, "last_run": 0.2, "data_quality": 0.1}


@dataclass(frozen=True)
class Freshness:
    """How far the data lags the calendar."""

    last_data_date: date | None
    expected_session: date
    hours_behind: float | None

    def is_stale(self, max_hours: float) -> bool:
        """True when data is missing or has lacked a closed session for more than max_hours."""
        return self.hours_behind is None or self.hours_behind > max_hours


def session_close(day: date) -> datetime:
    """When the NSE session of that day closes, in UTC."""
    local = datetime.combine(day, NSE_CLOSE, tzinfo=ZoneInfo(NSE_TIMEZONE))
    return local.astimezone(UTC)


def freshness(last_data_date: date | None, now: datetime) -> Freshness:
    """Hours since the close of the first NSE session missing from the data (0 when none is)."""
    expected = last_closed_session(now).date()
    if last_data_date is None:
        return Freshness(None, expected, None)
    if last_data_date >= expected:
        return Freshness(last_data_date, expected, 0.0)
    missing = nse_sessions(last_data_date + timedelta(days=1), expected)
    first_missing = missing[0].date() if len(missing) else expected
    hours = (now - session_close(first_missing)).total_seconds() / 3600
    return Freshness(last_data_date, expected, round(max(hours, 0.0), 2))


def freshness_component(fresh: Freshness, max_hours: float) -> HealthComponent:
    """The freshness check: ok, or down with how far behind the data is."""
    if fresh.hours_behind is None:
        return HealthComponent(status="down", score=0.0, detail="no feature data loaded")
    if fresh.is_stale(max_hours):
        detail = f"{fresh.hours_behind:.1f} h behind session {fresh.expected_session}"
        return HealthComponent(status="down", score=0.0, detail=detail)
    detail = "up to date" if fresh.hours_behind == 0 else f"{fresh.hours_behind:.1f} h behind"
    return HealthComponent(status="ok", score=1.0, detail=detail)


def quality_component(report: dict | None) -> HealthComponent:
    """The mean quality score of the last quality report, scaled to 0..1."""
    tickers = (report or {}).get("tickers") or {}
    scores = [
        float(entry["quality_score"])
        for entry in tickers.values()
        if isinstance(entry, dict) and isinstance(entry.get("quality_score"), int | float)
    ]
    if not scores:
        return HealthComponent(status="unknown", score=0.0, detail="no quality report")
    mean = float(pd.Series(scores).mean())
    scaled = min(max(mean / 100 if mean > 1 else mean, 0.0), 1.0)
    status = "ok" if scaled >= 0.9 else "degraded"
    return HealthComponent(status=status, score=scaled, detail=f"mean quality score {mean:.1f}")


def overall_score(components: dict[str, HealthComponent]) -> float:
    """The weighted mean of the components' scores, 0..100."""
    total = sum(WEIGHTS[name] * components[name].score for name in WEIGHTS if name in components)
    return round(100 * total / sum(WEIGHTS[name] for name in WEIGHTS if name in components), 1)
