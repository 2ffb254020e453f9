"""Project pipelines, registered explicitly so that composite names load on their own."""

from kedro.pipeline import Pipeline

from stock_pipeline.pipelines import (
    cleaning,
    drift,
    features,
    ingestion,
    intraday,
    persistence,
    reporting,
    training,
)

STAGES = {
    "ingestion": ingestion,
    "cleaning": cleaning,
    "features": features,
    "persistence": persistence,
    "drift": drift,
    "reporting": reporting,
    "training": training,
}


def register_pipelines() -> dict[str, Pipeline]:
    """Every stage by name, its nodes tagged with it (a deployment groups tasks by stage),
    `daily` (all of them in the order their datasets impose, also `__default__`), `baseline` and
    `intraday` (the stages at 5m/15m bars into their own datasets; not part of daily)."""
    pipelines = {
        name: Pipeline(module.create_pipeline(), tags=name) for name, module in STAGES.items()
    }
    daily = sum(pipelines.values(), Pipeline([]))
    pipelines["daily"] = daily
    pipelines["__default__"] = daily
    pipelines["baseline"] = drift.create_baseline_pipeline()
    pipelines["intraday"] = intraday.create_pipeline()
    return pipelines
