"""Intraday pipeline: ingestion, cleaning, features and persistence at 5m/15m bars.

Built from the daily stages' own pipelines under the `intraday` namespace, so every dataset is
`intraday.<name>` (conf/base/catalog_intraday.yml) while the node functions and parameters
(`ingestion`, `cleaning`, `features`, `persistence`) are shared with the daily flow:

    kedro run --pipelines=intraday --params=ingestion.interval=5m    # or 15m

Bar times are naive Asia/Kolkata wall-clock start times in the files and TIMESTAMP WITH TIME ZONE
in SQL (`stock_features_intraday`, key ticker + timestamp). Indicator periods count bars.
"""

from kedro.pipeline import Node, Pipeline

from stock_pipeline.pipelines import cleaning, features, ingestion, persistence
from stock_pipeline.pipelines.ingestion.nodes import check_intraday_ingestion_settings
from stock_pipeline.pipelines.intraday.nodes import stamp_intraday_rows

NAMESPACE = "intraday"
SHARED_PARAMETERS = {
    "params:ingestion",
    "params:ingestion.max_failed_ratio",
    "params:cleaning",
    "params:features",
    "params:persistence",
    "params:rebuild",
    "params:compute",
}


def create_pipeline(**kwargs) -> Pipeline:
    """The daily stages on intraday bars, every dataset in the `intraday` namespace."""
    selected = Pipeline(persistence.create_pipeline(), outputs={"stock_features_sql": "sql_rows"})
    stamped = Pipeline(
        [
            Node(
                func=stamp_intraday_rows,
                inputs="sql_rows",
                outputs="stock_features_sql",
                name="stamp_intraday_rows_node",
            )
        ]
    )
    stages = [
        ingestion.create_pipeline(settings=check_intraday_ingestion_settings),
        cleaning.create_pipeline(),
        features.create_pipeline(),
        selected,
        stamped,
    ]
    return Pipeline(
        stages,
        namespace=NAMESPACE,
        inputs={"run_context"},
        parameters=SHARED_PARAMETERS,
    )
