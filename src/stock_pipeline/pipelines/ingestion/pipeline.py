"""Ingestion pipeline: bronze files per ticker plus an ingestion report."""

from kedro.pipeline import Node, Pipeline

from stock_pipeline.pipelines.ingestion.nodes import check_failure_budget_node, ingest_prices_node


def create_pipeline(**kwargs) -> Pipeline:
    """Fetch prices incrementally, then stop the run if too many tickers failed."""
    return Pipeline(
        [
            Node(
                func=ingest_prices_node,
                inputs=["raw_prices_stored", "params:ingestion", "run_context"],
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
