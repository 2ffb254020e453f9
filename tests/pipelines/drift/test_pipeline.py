"""The drift and baseline pipelines run with SequentialRunner on an in-memory catalog."""

from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from stock_pipeline.pipelines.drift import create_baseline_pipeline, create_pipeline
from tests.pipelines.catalog_helpers import KeptDataset
from tests.pipelines.drift.simulation import RUN_CONTEXT, simulated_features


def make_catalog(features, params, drift_baseline=None) -> DataCatalog:
    return DataCatalog(
        {
            "features": MemoryDataset(features),
            "drift_baseline": MemoryDataset(drift_baseline or {}),
            "params:drift": MemoryDataset(params),
            "run_context": MemoryDataset(RUN_CONTEXT),
            "drift_results": KeptDataset(),
            "drift_recommendations": KeptDataset(),
            "retrain_request": MemoryDataset(),
            "model_health_alerts": MemoryDataset(),
        }
    )


def test_drift_pipeline_writes_results_recommendations_request_and_alerts(params):
    features = simulated_features(tickers=10, vol_factor=3.0)
    catalog = make_catalog(features, params)

    SequentialRunner().run(create_pipeline(), catalog)

    results = catalog.load("drift_results")
    recommendations = catalog.load("drift_recommendations")
    request = catalog.load("retrain_request")
    alerts = catalog.load("model_health_alerts")
    assert len(results) == 10 * len(params["features"])
    assert results["run_id"].eq("run-1").all()
    assert set(recommendations["tickers"]) == set(features["ticker"])
    assert request["requested"] is (recommendations["share_drifted"] >= 0.5)
    assert len(alerts) == results["drift"].sum()
    assert not alerts.duplicated(["ticker", "feature", "as_of"]).any()


def test_a_replay_writes_every_as_of_and_acts_on_the_latest(params):
    features = simulated_features(tickers=6, vol_factor=3.0)
    catalog = make_catalog(features, {**params, "as_of_start": "2020-06-01"})

    SequentialRunner().run(create_pipeline(), catalog)

    results = catalog.load("drift_results")
    latest = results[results["as_of"] == results["as_of"].max()]
    recommendations = catalog.load("drift_recommendations")
    alerts = catalog.load("model_health_alerts")
    assert (
        results["as_of"].nunique()
        == (features["date"] >= "2020-06-01").groupby(features["date"]).any().sum()
    )
    assert recommendations["as_of"] == results["as_of"].max().date().isoformat()
    regime = latest.groupby("ticker")["kind"].first().fillna("").str.contains("regime")
    assert recommendations["share_drifted"] == regime.mean()
    assert len(alerts) == latest["drift"].sum() > 0
    assert set(alerts["as_of"]) == {results["as_of"].max().date()}


def test_baseline_pipeline_freezes_what_a_frozen_drift_run_reads(params):
    features = simulated_features(tickers=3, sessions=300)
    params = {**params, "baseline": "frozen", "frozen_end": "2019-06-28"}
    catalog = make_catalog(features, params)

    SequentialRunner().run(create_baseline_pipeline(), catalog)
    frozen = catalog.load("drift_baseline")
    SequentialRunner().run(create_pipeline(), make_catalog(features, params, frozen))

    assert create_pipeline().inputs() == {
        "features",
        "drift_baseline",
        "params:drift",
        "run_context",
    }
    assert frozen["baseline"].groupby("ticker").size().eq(60).all()
