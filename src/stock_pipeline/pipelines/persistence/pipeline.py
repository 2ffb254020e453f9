"""Persistence pipeline: `features` upserted into SQL `stock_features` (migrated on first use)."""

from kedro.pipeline import Node, Pipeline

from stock_pipeline.pipelines.persistence.nodes import select_stock_features


def create_pipeline(**kwargs) -> Pipeline:
    """Upsert the feature rows into the database named by STOCK_PIPELINE_DB_URL."""
    return Pipeline(
        [
            Node(
                func=select_stock_features,
                inputs=["features", "stock_features_sql_stored", "params:persistence"],
                outputs="stock_features_sql",
                name="select_stock_features_node",
            )
        ]
    )
