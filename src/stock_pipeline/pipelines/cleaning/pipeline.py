"""Cleaning pipeline: bronze to silver (clean_prices, quarantine, quality report) and primary (prices)."""

from kedro.pipeline import Node, Pipeline

from stock_pipeline.pipelines.cleaning.nodes import (
    combine_raw_prices,
    consolidate_prices,
    record_quarantine,
    report_quality,
    validate_prices,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Combine bronze files, apply the rules, report quality, consolidate the primary table."""
    return Pipeline(
        [
            Node(
                func=combine_raw_prices,
                inputs=["raw_prices", "ingestion_report"],
                outputs=["raw_price_rows", "unreadable_bronze"],
                name="combine_raw_prices_node",
            ),
            Node(
                func=validate_prices,
                inputs=["raw_price_rows", "params:cleaning", "run_context"],
                outputs=["clean_prices", "rejected_rows"],
                name="validate_prices_node",
            ),
            Node(
                func=record_quarantine,
                inputs="rejected_rows",
                outputs="quarantine",
                name="record_quarantine_node",
            ),
            Node(
                func=report_quality,
                inputs=[
                    "raw_price_rows",
                    "clean_prices",
                    "rejected_rows",
                    "unreadable_bronze",
                    "ingestion_report",
                    "params:cleaning",
                    "run_context",
                ],
                outputs="quality_report",
                name="report_quality_node",
            ),
            Node(
                func=consolidate_prices,
                inputs="clean_prices",
                outputs="prices",
                name="consolidate_prices_node",
            ),
        ]
    )
