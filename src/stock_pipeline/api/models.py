"""Response models of the API, with the examples shown in the OpenAPI docs."""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from stock_pipeline.api.validation import as_utc

Value = float | int | bool | str | None
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]  # always with its offset, in UTC


def _example(example: dict[str, Any]) -> ConfigDict:
    """Model config that shows one example in the OpenAPI schema."""
    return ConfigDict(json_schema_extra={"examples": [example]})


class Problem(BaseModel):
    """An error answer."""

    model_config = _example({"detail": "unknown ticker: ABC.NS"})

    detail: str


class InvalidInput(BaseModel):
    """A request the API cannot read: FastAPI's list of errors, or one sentence."""

    model_config = _example({"detail": "unknown columns: nope"})

    detail: str | list[dict[str, Any]]


class Liveness(BaseModel):
    """The process answers, and what it has loaded."""

    model_config = _example(
        {"status": "ok", "features_loaded": True, "tickers": 8, "last_date": "2026-11-24"}
    )

    status: Literal["ok"]
    features_loaded: bool
    tickers: int
    last_date: date | None


class TickerInfo(BaseModel):
    """One ticker in the feature dataset."""

    model_config = _example(
        {"ticker": "INFY.NS", "first_date": "2024-03-14", "last_date": "2026-11-24", "rows": 667}
    )

    ticker: str
    first_date: date
    last_date: date
    rows: int


class FeatureRows(BaseModel):
    """A ticker's feature rows, one record per session."""

    model_config = _example(
        {
            "ticker": "INFY.NS",
            "version": "12",
            "columns": ["date", "close", "rsi_14"],
            "order": "desc",
            "count": 2,
            "rows": [
                {"date": "2026-11-24", "close": 1543.2, "rsi_14": 48.1},
                {"date": "2026-11-21", "close": 1538.9, "rsi_14": 46.7},
            ],
        }
    )

    ticker: str
    version: str = Field(description="The version of the feature data served")
    columns: list[str]
    order: Literal["asc", "desc"]
    count: int
    rows: list[dict[str, Any]] = Field(
        description="One record per session: date (ISO) and the chosen columns (null for NaN)"
    )


class FeaturePage(BaseModel):
    """One page of a bulk JSON download; send next_cursor back as `cursor` for the next page."""

    model_config = _example(
        {
            "version": "12",
            "columns": ["ticker", "date", "close"],
            "count": 2,
            "next_cursor": "WyJmZWF0dXJlcy1zaGEyNTY6M2YyYTljMWI3ZDRlNWY2MCIsIDJd",
            "rows": [
                {"ticker": "INFY.NS", "date": "2026-11-23", "close": 1538.9},
                {"ticker": "INFY.NS", "date": "2026-11-24", "close": 1543.2},
            ],
        }
    )

    version: str = Field(description="The version of the feature data served")
    columns: list[str]
    count: int
    next_cursor: str | None = Field(description="Where the next page starts; null on the last")
    rows: list[dict[str, Any]] = Field(
        description="One record per (ticker, date), sorted so: ticker, date and the chosen columns"
    )


class LatestBar(BaseModel):
    """The latest stored bar of one ticker, with every column of the view latest_stock_data."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "ticker": "INFY.NS",
                    "date": "2026-11-24",
                    "open": 1530.0,
                    "high": 1549.9,
                    "low": 1525.1,
                    "close": 1543.2,
                    "volume": 5123400,
                    "daily_return": 0.0028,
                    "rsi_14": 48.1,
                }
            ]
        },
    )

    ticker: str
    date: date


class MarketSummaryDay(BaseModel):
    """Market-wide aggregates of one session, with every column of daily_market_summary."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "date": "2026-11-24",
                    "tickers": 62,
                    "avg_daily_return": 0.0041,
                    "total_volume": 812345600,
                    "avg_rsi_14": 52.3,
                }
            ]
        },
    )

    date: date


class HealthComponent(BaseModel):
    """One check that feeds the overall health score."""

    status: Literal["ok", "degraded", "down", "unknown"]
    score: float = Field(ge=0, le=1)
    detail: str


class RunSummary(BaseModel):
    """One pipeline run as recorded by the run-record hooks."""

    model_config = _example(
        {
            "run_id": "2026-11-24T18.30.01.123Z",
            "pipeline": "daily",
            "env": "local",
            "status": "success",
            "started_at": "2026-11-24T18:30:01Z",
            "finished_at": "2026-11-24T18:31:12Z",
            "duration_seconds": 71.2,
            "rows_in": 420000,
            "rows_out": 390000,
            "tickers_ok": 62,
            "tickers_failed": 1,
        }
    )

    run_id: str
    pipeline: str
    env: str | None
    status: str
    started_at: UtcDatetime
    finished_at: UtcDatetime | None
    duration_seconds: float | None
    rows_in: int | None
    rows_out: int | None
    tickers_ok: int | None
    tickers_failed: int | None


class SystemHealth(BaseModel):
    """Whether the data is fresh, the database answers and the last run worked."""

    model_config = _example(
        {
            "status": "healthy",
            "overall_health_score": 100.0,
            "data_freshness_hours": 0.0,
            "max_staleness_hours": 36.0,
            "last_data_date": "2026-11-24",
            "expected_session": "2026-11-24",
            "database": "ok",
            "components": {
                "data_freshness": {"status": "ok", "score": 1.0, "detail": "up to date"},
                "database": {"status": "ok", "score": 1.0, "detail": "sqlite: 1.2 ms"},
            },
            "last_pipeline_run": None,
            "checked_at": "2026-11-25T03:00:00Z",
        }
    )

    status: Literal["healthy", "degraded", "unhealthy"]
    overall_health_score: float = Field(ge=0, le=100)
    data_freshness_hours: float | None
    max_staleness_hours: float
    last_data_date: date | None
    expected_session: date | None
    database: Literal["ok", "down"]
    components: dict[str, HealthComponent]
    last_pipeline_run: RunSummary | None
    checked_at: UtcDatetime


class Distribution(BaseModel):
    """Summary statistics of one measure over the runs."""

    mean: float | None
    p50: float | None
    p95: float | None
    max: float | None


class PipelineMetrics(BaseModel):
    """Latency, throughput and success of the last pipeline runs."""

    model_config = _example(
        {
            "runs": 3,
            "finished_runs": 2,
            "running_runs": 0,
            "abandoned_runs": 1,
            "success_rate": 0.5,
            "total_rows": 780000,
            "duration_seconds": {"mean": 70.0, "p50": 70.0, "p95": 71.1, "max": 71.2},
            "throughput_rows_per_second": {"mean": 5500.0, "p50": 5500.0, "p95": 5600, "max": 5610},
            "last_runs": [],
        }
    )

    runs: int
    finished_runs: int = Field(description="Runs that ended in success or failure")
    running_runs: int = Field(description="Runs still running")
    abandoned_runs: int = Field(
        description="Runs whose process died while running; not in the success rate or timings"
    )
    success_rate: float | None
    total_rows: int
    duration_seconds: Distribution
    throughput_rows_per_second: Distribution
    last_runs: list[RunSummary]


class DataQuality(BaseModel):
    """The quality report of one ticker from the last cleaning run."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "ticker": "INFY.NS",
                    "run_id": "2026-11-24T18.30.01.123Z",
                    "generated_at": "2026-11-24T18:30:40Z",
                    "total_rows": 670,
                    "clean_rows": 667,
                    "date_range": {"start": "2024-01-01", "end": "2026-11-24"},
                    "quality_score": 99.4,
                    "status": "ok",
                    "reason": None,
                }
            ]
        },
    )

    ticker: str
    run_id: str | None = None
    generated_at: str | None = None
    total_rows: int | None = None
    clean_rows: int | None = None
    date_range: dict[str, Any] | None = None
    completeness: dict[str, Any] | None = None
    ohlc_validation: dict[str, Any] | None = None
    outliers: dict[str, Any] | None = None
    quarantine_by_rule: dict[str, Any] | None = None
    freshness: dict[str, Any] | None = None
    quality_score: float | None = None
    status: str | None = None
    reason: str | None = None


class FeatureDrift(BaseModel):
    """The drift tests of one feature on one date: the regime's and the shock's."""

    feature: str
    method: str
    statistic: float | None = Field(description="the regime's: the window against the baseline")
    p_value: float | None
    shock_statistic: float | None = Field(
        default=None, description="the window against the recent conditional scale (calibrated)"
    )
    shock_p_value: float | None = None
    alpha: float | None
    baseline_sample_size: int | None
    current_sample_size: int | None
    drift: bool


class DriftReport(BaseModel):
    """A ticker's latest drift tests and the retraining recommendation."""

    model_config = _example(
        {
            "ticker": "INFY.NS",
            "as_of": "2026-11-24",
            "drift_detected": True,
            "features_with_drift": ["volatility"],
            "p_values": {"volatility": 0.003},
            "kind": "shock+regime",
            "recommendation": "retrain_model",
            "reason": "drift in 1 of 5 tested features (calibrated): volatility; "
            "a shock and a regime change against the baseline",
            "features": [
                {
                    "feature": "volatility",
                    "method": "calibrated",
                    "statistic": 3.1,
                    "p_value": 0.003,
                    "shock_statistic": 2.4,
                    "shock_p_value": 0.01,
                    "alpha": 0.05,
                    "baseline_sample_size": 60,
                    "current_sample_size": 7,
                    "drift": True,
                }
            ],
            "history": [{"as_of": "2026-11-21", "drifted": 0, "tested": 8}],
        }
    )

    ticker: str
    as_of: date
    drift_detected: bool = Field(
        description="whether any monitored feature drifted (the seed's field)"
    )
    features_with_drift: list[str]
    p_values: dict[str, float | None] = Field(description="each tested feature's p-value")
    kind: str | None = Field(
        default=None,
        description="which signals saw the change: shock (this week against the recent "
        "conditional scale), regime (against the baseline) or shock+regime; null: no drift",
    )
    recommendation: str | None = Field(
        description="retrain_model (a regime change), watch (a shock alone) or none"
    )
    reason: str | None
    features: list[FeatureDrift]
    history: list[dict[str, Any]]


class LatestBars(BaseModel):
    """The WebSocket message: every ticker's last row in the feature dataset."""

    type: Literal["latest"] = "latest"
    version: str | None = Field(description="The version of the feature data; null before any")
    last_date: date | None
    bars: list[dict[str, Value]]


class ModelVersionInfo(BaseModel):
    """One registered model version: what it was trained on and how it did out of sample."""

    version: int
    run_id: str = Field(description="the MLflow run that trained it")
    trained_at: str | None
    data_version: str | None = Field(description="the version of the gold layer it was trained on")
    train_end: date | None = Field(description="the last date it was trained on")
    horizon: int = Field(description="sessions ahead that its scores rank forward returns")
    target: str
    features: list[str]
    metrics: dict[str, float | None] = Field(
        description="walk-forward out-of-sample metrics: the model's by name, baselines' as "
        "<baseline>.<metric>, folds' as fold_<n>.<metric>"
    )


class ModelsOverview(BaseModel):
    """The champion (the model that serves predictions) and the latest challenger."""

    model_config = _example(
        {
            "model_name": "stock-pipeline-ranker",
            "champion": {
                "version": 3,
                "run_id": "0ad1d2856bab4ee88f0cc29512aa1bda",
                "trained_at": "2026-11-24T18:00:00+00:00",
                "data_version": "12",
                "train_end": "2026-11-21",
                "horizon": 1,
                "target": "rank",
                "features": ["daily_return", "rsi_14"],
                "metrics": {"oos_rank_ic": 0.021, "ridge.oos_rank_ic": 0.012},
            },
            "challenger": None,
        }
    )

    model_name: str
    champion: ModelVersionInfo | None
    challenger: ModelVersionInfo | None


class Prediction(BaseModel):
    """The champion's score for one date: higher means a higher expected forward return."""

    date: date
    score: float
    rank_pct: float | None = Field(description="the score's percentile among the date's tickers")
    in_sample: bool = Field(description="the model was trained on this date's row")


class Predictions(BaseModel):
    """A ticker's champion scores, newest first."""

    model_config = _example(
        {
            "ticker": "INFY.NS",
            "model_name": "stock-pipeline-ranker",
            "model_version": 3,
            "horizon": 1,
            "count": 1,
            "predictions": [
                {"date": "2026-11-24", "score": 0.013, "rank_pct": 0.875, "in_sample": False}
            ],
        }
    )

    ticker: str
    model_name: str
    model_version: int
    horizon: int | None
    count: int
    predictions: list[Prediction]
