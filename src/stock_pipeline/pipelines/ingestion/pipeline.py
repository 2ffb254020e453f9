"""Ingestion pipeline: bronze files per ticker plus an ingestion report."""

from collections.abc import Callable
from typing import Any

from kedro.pipeline import Node, Pipeline

from stock_pipeline.pipelines.ingestion.nodes import (
    check_failure_budget_node,
    daily_ingestion_settings_node,
    ingest_prices_node,
)


def create_pipeline(
    settings: Callable[[dict[str, Any]], dict[str, Any]] = daily_ingestion_settings_node,
    **kwargs,
) -> Pipeline:
    """Check the interval, fetch prices incrementally, then stop the run if too many tickers failed.

    `settings` is the node that checks `params:ingestion` for this bronze layer: daily bars here,
    5m/15m bars in the intraday pipeline (`intraday_ingestion_settings_node`).
    """
    return Pipeline(
        [
            Node(
                func=settings,
                inputs="params:ingestion",
                outputs="ingestion_settings",
                name="check_ingestion_settings_node",
            ),
            Node(
                func=ingest_prices_node,
                inputs=["raw_prices_stored", "ingestion_settings", "run_context"],
                outputs=["raw_prices", "ingestion_report"],
                name="ingest_prices_node",
            ),
            Node(
                func=check_failure_budget_node,
                inputs=["ingestion_report", "params:ingestion.max_failed_ratio"],
                outputs=None,
                name="check_failure_budget_node",
            ),
        ]
    )
