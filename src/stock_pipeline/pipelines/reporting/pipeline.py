"""Reporting pipeline: runs after cleaning, drift and training, from what they wrote."""

from kedro.pipeline import Node, Pipeline

from stock_pipeline.pipelines.reporting.nodes import (
    build_drift_report,
    build_model_report,
    build_quality_report,
)


def create_pipeline(**kwargs) -> Pipeline:
    """The quality, drift and model reports, each a notebook run by its catalog dataset."""
    return Pipeline(
        [
            Node(
                func=build_quality_report,
                inputs=[
                    "quality_report",
                    "clean_prices",
                    "quarantine",
                    "params:reporting",
                    "run_context",
                ],
                outputs="quality_report_html",
                name="build_quality_report_node",
            ),
            Node(
                func=build_drift_report,
                inputs=[
                    "drift_results",
                    "features",
                    "drift_baseline",
                    "params:reporting",
                    "params:drift",
                    "run_context",
                ],
                outputs="drift_report_html",
                name="build_drift_report_node",
            ),
            Node(
                func=build_model_report,
                inputs=[
                    "training_metrics",
                    "training_oos_ic",
                    "model_summary",
                    "drift_results",
                    "run_context",
                ],
                outputs="model_report_html",
                name="build_model_report_node",
            ),
        ]
    )
