"""Features pipeline: `prices` to `features` (gold)."""

from kedro.pipeline import Node, Pipeline

from stock_pipeline.pipelines.features.nodes import update_features


def create_pipeline(**kwargs) -> Pipeline:
    """Compute the configured indicators for the tickers whose prices changed (all: rebuild)."""
    return Pipeline(
        [
            Node(
                func=update_features,
                inputs=[
                    "prices@buckets",
                    "price_changes",
                    "features_stored",
                    "params:features",
                    "params:rebuild",
                    "params:compute",
                ],
                outputs="features",
                name="update_features_node",
            )
        ]
    )
