"""Ingestion pipeline: bronze files per ticker plus an ingestion report."""

from collections.abc import Callable
from typing import Any

from kedro.pipeline import Node, Pipeline

from stock_pipeline.pipelines.ingestion.nodes import (
    check_daily_ingestion_settings,
    check_failure_budget,
    ingest_prices,
)


def create_pipeline(
    settings: Callable[[dict[str, Any]], dict[str, Any]] = check_daily_ingestion_settings,
    **kwargs,
) -> Pipeline:
    """Check the interval, fetch prices incrementally, then stop the run if too many tickers failed.

    `settings` is the node that checks `params:ingestion` for this bronze layer: daily bars here,
    5m/15m bars in the intraday pipeline (`check_intraday_ingestion_settings`).
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
                func=ingest_prices,
                inputs=["raw_prices_stored", "ingestion_settings", "run_context", "params:compute"],
                outputs=["raw_prices", "ingestion_report"],
                name="ingest_prices_node",
            ),
            Node(
                func=check_failure_budget,
                inputs=["ingestion_report", "params:ingestion.max_failed_ratio"],
                outputs=None,
                name="check_failure_budget_node",
            ),
        ]
    )
