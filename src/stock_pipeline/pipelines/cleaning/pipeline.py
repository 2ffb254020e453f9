"""Cleaning pipeline: bronze to silver (clean_prices, quarantine, quality report) and primary (prices)."""

from kedro.pipeline import Node, Pipeline

from stock_pipeline.pipelines.cleaning.nodes import (
    clear_rewritten_marks,
    record_quarantine,
    validate_bronze,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Clean the new bronze rows bucket by bucket, write the changed rows, record the rejected,
    then unmark the rewritten bronze files cleaned whole (once silver is saved)."""
    return Pipeline(
        [
            Node(
                func=validate_bronze,
                inputs=[
                    "raw_prices",
                    "ingestion_report",
                    "clean_prices_stored",
                    "params:cleaning",
                    "params:rebuild",
                    "run_context",
                    "params:compute",
                ],
                # primary before silver: a run stopped between the two saves finds silver's old
                # state and cleans those rows again
                outputs=[
                    "prices@table",
                    "clean_prices",
                    "price_changes",
                    "rejected_rows",
                    "quality_report",
                ],
                name="validate_bronze_node",
            ),
            Node(
                func=record_quarantine,
                inputs="rejected_rows",
                outputs="quarantine",
                name="record_quarantine_node",
            ),
            Node(
                func=clear_rewritten_marks,
                inputs=["raw_prices", "quality_report"],
                outputs=None,
                name="clear_rewritten_marks_node",
            ),
        ]
    )
