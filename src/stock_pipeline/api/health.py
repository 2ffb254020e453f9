"""How fresh the data is against the NSE calendar, and the health score built on it."""

import pandas as pd

from stock_pipeline.api.models import HealthComponent
from stock_pipeline.contract import QUALITY_SCORE_MAX, Freshness

WEIGHTS = {"data_freshness": 0.4, "database": 0.3, "last_run": 0.2, "data_quality": 0.1}


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
    scaled = min(max(mean / QUALITY_SCORE_MAX, 0.0), 1.0)
    status = "ok" if scaled >= 0.9 else "degraded"
    return HealthComponent(status=status, score=scaled, detail=f"mean quality score {mean:.1f}")


def overall_score(components: dict[str, HealthComponent]) -> float:
    """The weighted mean of the components' scores, 0..100."""
    total = sum(WEIGHTS[name] * components[name].score for name in WEIGHTS if name in components)
    return round(100 * total / sum(WEIGHTS[name] for name in WEIGHTS if name in components), 1)
