"""Drift pipelines: `drift` (tests, recommendations, retrain request, alerts) and `baseline`."""

from kedro.pipeline import Node, Pipeline

from stock_pipeline.pipelines.drift.nodes import (
    build_health_alerts,
    detect_drift,
    freeze_drift_baseline,
    recommend_retraining,
    request_retraining,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Decide drift per ticker for each as_of (one date or a range) and act on the latest one."""
    return Pipeline(
        [
            Node(
                func=detect_drift,
                inputs=["features", "drift_baseline", "params:drift", "run_context"],
                outputs="drift_results",
                name="detect_drift_node",
            ),
            Node(
                func=recommend_retraining,
                inputs=["drift_results", "run_context"],
                outputs="drift_recommendations",
                name="recommend_retraining_node",
            ),
            Node(
                func=request_retraining,
                inputs=["drift_recommendations", "params:drift", "run_context"],
                outputs="retrain_request",
                name="request_retraining_node",
            ),
            Node(
                func=build_health_alerts,
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
                func=freeze_drift_baseline,
                inputs=["features", "params:drift"],
                outputs="drift_baseline",
                name="freeze_drift_baseline_node",
            )
        ]
    )
