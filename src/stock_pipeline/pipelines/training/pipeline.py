"""Training pipeline: runs when the drift pipeline's retrain request is pending (or when forced)."""

from kedro.pipeline import Node, Pipeline

from stock_pipeline.pipelines.training.nodes import (
    build_model_input,
    compare_with_champion,
    consume_retrain_request,
    decide_training,
    fit_model,
    register_model,
    report_training,
    score_with_champion,
    summarize_models,
    validate_model,
)

PARAMS = "params:training"


def create_pipeline(**kwargs) -> Pipeline:
    """Decide, validate walk-forward, fit, register and promote, consume the request, serve."""
    return Pipeline(
        [
            Node(
                func=build_model_input,
                inputs=["features", PARAMS],
                outputs=["model_input", "training_data_version"],
                name="build_model_input_node",
            ),
            Node(
                func=decide_training,
                inputs=[
                    "retrain_request",
                    "retrain_ledger_stored",
                    "model_input",
                    "model_registry",
                    PARAMS,
                ],
                outputs="training_decision",
                name="decide_training_node",
            ),
            Node(
                func=validate_model,
                inputs=["model_input", "training_decision", PARAMS],
                outputs="validation_results",
                name="validate_model_node",
            ),
            Node(
                func=fit_model,
                inputs=["model_input", "training_decision", PARAMS],
                outputs="trained_model",
                name="fit_model_node",
            ),
            Node(
                func=compare_with_champion,
                inputs=["features", "validation_results", "model_registry", PARAMS],
                outputs="champion_comparison",
                name="compare_with_champion_node",
            ),
            Node(
                func=register_model,
                inputs=[
                    "trained_model",
                    "validation_results",
                    "champion_comparison",
                    "training_data_version",
                    "training_decision",
                    "model_registry",
                    PARAMS,
                    "run_context",
                ],
                outputs="model_registration",
                name="register_model_node",
            ),
            Node(
                func=consume_retrain_request,
                inputs=[
                    "training_decision",
                    "model_registration",
                    "retrain_ledger_stored",
                    "run_context",
                ],
                outputs="retrain_ledger",
                name="consume_retrain_request_node",
            ),
            Node(
                func=report_training,
                inputs=[
                    "validation_results",
                    "trained_model",
                    "champion_comparison",
                    "model_registration",
                    "training_decision",
                    "training_data_version",
                    PARAMS,
                    "run_context",
                ],
                outputs=["training_metrics", "training_oos_ic"],
                name="report_training_node",
            ),
            Node(
                func=score_with_champion,
                inputs=["features", "model_registration", "model_registry", PARAMS],
                outputs="model_predictions",
                name="score_with_champion_node",
            ),
            Node(
                func=summarize_models,
                inputs=["model_registration", "model_registry", PARAMS, "run_context"],
                outputs="model_summary",
                name="summarize_models_node",
            ),
        ]
    )
