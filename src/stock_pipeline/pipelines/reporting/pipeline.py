"""Reporting pipeline: runs after cleaning, drift and training, from what they wrote."""

from kedro.pipeline import Node, Pipeline

from stock_pipeline.pipelines.reporting.nodes import (
    build_drift_report_parameters_node,
    build_model_report_parameters,
    build_quality_report_parameters_node,
)


def create_pipeline(**kwargs) -> Pipeline:
    """The quality, drift and model reports, each a notebook run by its catalog dataset."""
    return Pipeline(
        [
            Node(
                func=build_quality_report_parameters_node,
                inputs=["quality_report", "params:reporting", "run_context"],
                outputs="quality_report_html",
                name="build_quality_report_parameters_node",
            ),
            Node(
                func=build_drift_report_parameters_node,
                inputs=["drift_results", "params:reporting", "run_context"],
                outputs="drift_report_html",
                name="build_drift_report_parameters_node",
            ),
            Node(
                func=build_model_report_parameters,
                inputs=["training_metrics", "run_context"],
                outputs="model_report_html",
                name="build_model_report_parameters_node",
            ),
        ]
    )
