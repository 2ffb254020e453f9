"""Cleaning pipeline: bronze to silver (clean_prices, quarantine, quality report) and primary (prices)."""

from kedro.pipeline import Node, Pipeline

from stock_pipeline.pipelines.cleaning.nodes import (
    combine_raw_prices,
    record_quarantine,
    report_quality,
    select_changed_prices,
    validate_prices,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Combine the new bronze rows, apply the rules, report quality, write the changed rows."""
    return Pipeline(
        [
            Node(
                func=combine_raw_prices,
                inputs=[
                    "raw_prices",
                    "ingestion_report",
                    "clean_price_dates",
                    "params:cleaning",
                    "params:rebuild",
                ],
                outputs=["raw_price_rows", "unreadable_bronze", "cleaning_plan"],
                name="combine_raw_prices_node",
            ),
            Node(
                func=validate_prices,
                inputs=["raw_price_rows", "params:cleaning", "run_context"],
                outputs=["cleaned_prices", "rejected_rows"],
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
                    "cleaned_prices",
                    "rejected_rows",
                    "unreadable_bronze",
                    "ingestion_report",
                    "params:cleaning",
                    "run_context",
                    "cleaning_plan",
                ],
                outputs="quality_report",
                name="report_quality_node",
            ),
            Node(
                func=select_changed_prices,
                inputs=["cleaned_prices", "cleaning_plan"],
                outputs=["clean_prices", "prices", "price_changes"],
                name="select_changed_prices_node",
            ),
        ]
    )
