"""MLOps views: system health, pipeline-run metrics, data quality and drift per ticker."""

from datetime import UTC, datetime
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import JSONResponse

from stock_pipeline.api.database import DatabaseUnavailable
from stock_pipeline.api.health import (
    freshness_component,
    overall_score,
    quality_component,
)
from stock_pipeline.api.models import (
    DataQuality,
    Distribution,
    DriftReport,
    FeatureDrift,
    HealthComponent,
    PipelineMetrics,
    Problem,
    RunSummary,
    SystemHealth,
)
from stock_pipeline.api.routes.data import ERRORS, Ticker
from stock_pipeline.api.services import DataNotReady, Services, ServicesDep
from stock_pipeline.contract import FINISHED_RUN_STATUSES, RunStatus, freshness

router = APIRouter(prefix="/mlops", tags=["mlops"])

NOT_FOUND = {404: {"model": Problem, "description": "Unknown ticker"}}


def database_check(services: Services) -> tuple[HealthComponent, RunSummary | None]:
    """Whether the database answers, and the last recorded run when it does."""
    try:
        latency = services.db.ping()
    except DatabaseUnavailable:
        return HealthComponent(status="down", score=0.0, detail="database unreachable"), None
    component = HealthComponent(
        status="ok", score=1.0, detail=f"{services.db.dialect}: {latency:.1f} ms"
    )
    try:
        runs = services.db.recent_runs(1)
    except DatabaseUnavailable:
        return component, None
    return component, RunSummary.model_validate(runs[0]) if runs else None


def run_component(run: RunSummary | None) -> HealthComponent:
    """The last run's outcome as a health check."""
    if run is None:
        return HealthComponent(status="unknown", score=0.0, detail="no recorded run")
    scores = {
        RunStatus.SUCCESS: ("ok", 1.0),
        RunStatus.RUNNING: ("ok", 1.0),
        RunStatus.FAILED: ("down", 0.0),
        RunStatus.ABANDONED: ("down", 0.0),
    }
    state, score = scores.get(run.status, ("unknown", 0.0))
    return HealthComponent(status=state, score=score, detail=f"{run.run_id}: {run.status}")


@router.get(
    "/system-health",
    response_model=SystemHealth,
    responses={503: {"model": SystemHealth, "description": "Stale data or database down"}},
)
def system_health(services: ServicesDep) -> Any:
    """Data freshness against the NSE calendar, database status, last run and a 0-100 score."""
    now = datetime.now(UTC)
    snapshot = services.store.features.snapshot()
    fresh = freshness(snapshot.last_date if snapshot else None, now)
    max_hours = services.config.max_staleness_hours
    database, last_run = database_check(services)
    components = {
        "data_freshness": freshness_component(fresh, max_hours),
        "database": database,
        "last_run": run_component(last_run),
        "data_quality": quality_component(services.store.quality.get()),
    }
    failing = fresh.is_stale(max_hours) or database.status == "down"
    degraded = any(c.status != "ok" for c in components.values())
    health = SystemHealth(
        status="unhealthy" if failing else "degraded" if degraded else "healthy",
        overall_health_score=overall_score(components),
        data_freshness_hours=fresh.hours_behind,
        max_staleness_hours=max_hours,
        last_data_date=fresh.last_session,
        expected_session=fresh.expected_session,
        database="down" if database.status == "down" else "ok",
        components=components,
        last_pipeline_run=last_run,
        checked_at=now,
    )
    if failing:
        return JSONResponse(health.model_dump(mode="json"), status.HTTP_503_SERVICE_UNAVAILABLE)
    return health


def distribution(values: list[float]) -> Distribution:
    """Mean, median, 95th percentile and maximum; all None without values."""
    if not values:
        return Distribution(mean=None, p50=None, p95=None, max=None)
    array = np.asarray(values, dtype=float)
    return Distribution(
        mean=round(float(array.mean()), 4),
        p50=round(float(np.percentile(array, 50)), 4),
        p95=round(float(np.percentile(array, 95)), 4),
        max=round(float(array.max()), 4),
    )


def run_metrics(runs: list[RunSummary]) -> PipelineMetrics:
    """Latency, throughput, success rate and rows over the runs."""
    finished = [r for r in runs if r.status in FINISHED_RUN_STATUSES]
    timed = [r for r in finished if r.duration_seconds]
    return PipelineMetrics(
        runs=len(runs),
        finished_runs=len(finished),
        running_runs=sum(r.status == RunStatus.RUNNING for r in runs),
        abandoned_runs=sum(r.status == RunStatus.ABANDONED for r in runs),
        success_rate=(
            round(sum(r.status == RunStatus.SUCCESS for r in finished) / len(finished), 4)
            if finished
            else None
        ),
        total_rows=sum(r.rows_out or 0 for r in runs),
        duration_seconds=distribution([r.duration_seconds for r in timed]),
        throughput_rows_per_second=distribution(
            [(r.rows_out or 0) / r.duration_seconds for r in timed]
        ),
        last_runs=runs,
    )


@router.get("/pipeline-metrics", response_model=PipelineMetrics, responses=ERRORS)
def pipeline_metrics(
    services: ServicesDep,
    runs: Annotated[
        int | None, Query(ge=1, le=1000, description="How many recent runs (default 20)")
    ] = None,
) -> PipelineMetrics:
    """Latency, throughput, success rate and total rows of the last recorded pipeline runs."""
    recent = services.db.recent_runs(runs or services.config.metrics_default_runs)
    return run_metrics([RunSummary.model_validate(r) for r in recent])


@router.get("/data-quality/{ticker}", response_model=DataQuality, responses={**NOT_FOUND, **ERRORS})
def data_quality(services: ServicesDep, ticker: Ticker) -> DataQuality:
    """The ticker's entry in the last quality report: completeness, OHLC checks, outliers, score."""
    report = services.store.quality.get()
    if report is None:
        raise DataNotReady("quality report is not available yet: run the cleaning pipeline")
    entry = (report.get("tickers") or {}).get(ticker)
    if not isinstance(entry, dict):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no quality report for {ticker}")
    return DataQuality.model_validate(
        {
            **entry,
            "ticker": ticker,
            "run_id": report.get("run_id"),
            "generated_at": report.get("generated_at"),
        }
    )


def feature_tests(rows: pd.DataFrame) -> list[FeatureDrift]:
    """One FeatureDrift per row of a ticker's drift results on one date."""
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    return [FeatureDrift.model_validate(r) for r in records]


def drift_history(results: pd.DataFrame, depth: int) -> list[dict[str, Any]]:
    """Drifted and tested feature counts for the latest `depth` dates, newest first."""
    counts = results.groupby("as_of")["drift"].agg(drifted="sum", tested="count")
    latest = counts.sort_index(ascending=False).head(depth).reset_index()
    return [
        {"as_of": row.as_of.date(), "drifted": int(row.drifted), "tested": int(row.tested)}
        for row in latest.itertuples()
    ]


@router.get(
    "/drift-detection/{ticker}", response_model=DriftReport, responses={**NOT_FOUND, **ERRORS}
)
def drift_detection(
    services: ServicesDep,
    ticker: Ticker,
    history: Annotated[int, Query(ge=0, le=365, description="Earlier dates to summarise")] = 10,
) -> DriftReport:
    """The ticker's latest drift tests per feature, the recommendation, and recent history."""
    by_ticker = services.store.drift.get()
    if by_ticker is None:
        raise DataNotReady("drift results are not available yet: run the drift pipeline")
    results = by_ticker.get(ticker)
    if results is None or results.empty:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no drift results for {ticker}")
    as_of = results["as_of"].max()
    latest = results[results["as_of"] == as_of]
    advice = ((services.store.recommendations.get() or {}).get("tickers") or {}).get(ticker) or {}
    drifted = sorted(latest.loc[latest["drift"].astype(bool), "feature"].astype(str))
    p_values = latest.set_index(latest["feature"].astype(str))["p_value"].astype(float)
    kinds = latest["kind"].dropna() if "kind" in latest else latest.iloc[:0]
    return DriftReport(
        ticker=ticker,
        as_of=as_of.date(),
        drift_detected=bool(drifted),
        features_with_drift=drifted,
        p_values={name: None if pd.isna(value) else value for name, value in p_values.items()},
        kind=str(kinds.iloc[0]) if len(kinds) else None,
        recommendation=advice.get("recommendation"),
        reason=advice.get("reason"),
        features=feature_tests(latest.drop(columns=["ticker", "as_of"], errors="ignore")),
        history=drift_history(results, history),
    )
