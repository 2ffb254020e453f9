"""Drift pipelines: `drift` (tests, recommendations, retrain request, alerts) and `baseline`."""

from kedro.pipeline import Node, Pipeline

from stock_pipeline.pipelines.drift.nodes import (
    build_health_alerts_node,
    detect_drift_node,
    freeze_drift_baseline_node,
    recommend_retraining_node,
    request_retraining_node,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Test every monitored feature of every ticker as of `drift.as_of` and act on the results."""
    return Pipeline(
        [
            Node(
                func=detect_drift_node,
                inputs=["features", "drift_baseline", "params:drift", "run_context"],
                outputs="drift_results",
                name="detect_drift_node",
            ),
            Node(
                func=recommend_retraining_node,
                inputs=["drift_results", "run_context"],
                outputs="drift_recommendations",
                name="recommend_retraining_node",
            ),
            Node(
                func=request_retraining_node,
                inputs=["drift_recommendations", "params:drift", "run_context"],
                outputs="retrain_request",
                name="request_retraining_node",
            ),
            Node(
                func=build_health_alerts_node,
                inputs=["drift_results", "run_context"],
                outputs="model_health_alerts",
                name="build_health_alerts_node",
            ),
        ]
    )


def create_baseline_pipeline(**kwargs) -> Pipeline:
    """Freeze the baseline window that `drift.baseline: frozen` compares against."""
    return Pipeline(
        [
            Node(
                func=freeze_drift_baseline_node,
                inputs=["features", "params:drift"],
                outputs="drift_baseline",
                name="freeze_drift_baseline_node",
            )
        ]
    )
