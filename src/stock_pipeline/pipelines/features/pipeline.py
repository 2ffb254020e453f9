"""Features pipeline: `prices` to `features` (gold)."""

from kedro.pipeline import Node, Pipeline

from stock_pipeline.pipelines.features.nodes import compute_features


def create_pipeline(**kwargs) -> Pipeline:
    """Compute the configured indicators for every ticker."""
    return Pipeline(
        [
            Node(
                func=compute_features,
                inputs=["prices", "params:features"],
                outputs="features",
                name="compute_features_node",
            )
        ]
    )
