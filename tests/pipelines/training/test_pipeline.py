"""The training pipeline with SequentialRunner: when it trains, the retrain ledger, the registry.

Files a run writes (ledger, metrics, predictions, models summary) live in tmp_path through the
catalog's own dataset types; the MLflow store is a private SQLite file.
"""

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from stock_pipeline.datasets import SkipEmptyDataset
from stock_pipeline.pipelines.training import create_pipeline
from stock_pipeline.pipelines.training.registry import (
    CHALLENGER,
    CHAMPION,
    ModelRegistryDataset,
)
from tests.pipelines.catalog_helpers import KeptDataset

NO_REQUEST = {"requested": False, "run_id": "drift-0", "as_of": "2021-01-01"}
REQUEST = {
    "requested": True,
    "run_id": "drift-1",
    "as_of": "2021-01-01",
    "share_drifted": 0.6,
    "tickers": ["T000.NS"],
    "requested_at": "2021-01-01T18:00:00+00:00",
}


def file_dataset(path: Path, kind: str = "json") -> SkipEmptyDataset:
    """A SkipEmptyDataset over JSON or Parquet at path, as the catalog declares them."""
    inner = {
        "type": f"{kind}.JSONDataset" if kind == "json" else "pandas.ParquetDataset",
        "filepath": str(path),
    }
    return SkipEmptyDataset(dataset=inner)


def run_training(
    tmp_path: Path,
    features: pd.DataFrame,
    params: dict[str, Any],
    registry: ModelRegistryDataset,
    request: dict[str, Any] | None = None,
    run_id: str = "run-1",
) -> DataCatalog:
    """One run of the training pipeline; the catalog to inspect afterwards."""
    ledger = tmp_path / "retrain_ledger.json"
    features.attrs["version"] = 7  # the gold table's version, as its dataset loads it
    catalog = DataCatalog(
        {
            "features": MemoryDataset(features),
            "retrain_request": MemoryDataset(request or NO_REQUEST),
            "retrain_ledger_stored": file_dataset(ledger),
            "retrain_ledger": file_dataset(ledger),
            "model_registry": registry,
            "params:training": MemoryDataset(params),
            "run_context": MemoryDataset(
                {
                    "run_id": run_id,
                    "started_at": f"2024-06-03T18:00:0{run_id[-1]}+00:00",
                    "env": "test",
                }
            ),
            "training_metrics": file_dataset(tmp_path / "metrics.json"),
            "model_summary": file_dataset(tmp_path / "models.json"),
            "training_oos_ic": file_dataset(tmp_path / "oos_ic.parquet", "pandas"),
            "model_predictions": file_dataset(tmp_path / "predictions.parquet", "pandas"),
            **{
                name: KeptDataset()
                for name in [
                    "model_input",
                    "training_data_version",
                    "training_decision",
                    "validation_results",
                    "trained_model",
                    "champion_comparison",
                    "model_registration",
                ]
            },
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    return catalog


def aliases(registry: ModelRegistryDataset, params: dict[str, Any]) -> dict[str, int | None]:
    """The versions behind champion and challenger."""
    connected = registry.load().connect(params["mlflow"])
    return {
        alias: (found or {}).get("version")
        for alias in (CHAMPION, CHALLENGER)
        for found in [connected.version(alias)]
    }


def test_the_first_run_trains_registers_a_champion_and_writes_its_outputs(
    tmp_path, small_signal_features, fast_params, registry_dataset
):
    catalog = run_training(tmp_path, small_signal_features, fast_params, registry_dataset)

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["trigger"]["reason"] == "no model registered yet"
    assert metrics["model_version"] == 1 and metrics["promoted"] is True
    assert metrics["model"]["oos_rank_ic"] > 0.05
    assert set(metrics["baselines"]) == {"zero", "historical_mean", "ridge"}
    assert {"oos_rank_ic", "oos_rank_ic_tstat", "hit_rate", "top_bottom_decile_return"} <= set(
        metrics["baselines"]["ridge"]
    )
    assert len(metrics["folds"]) == fast_params["validation"]["n_splits"]
    assert metrics["data_version"] == catalog.load("training_data_version")
    assert metrics["data_version"] == "7"  # the gold table's version, as the API names it
    assert aliases(registry_dataset, fast_params) == {CHAMPION: 1, CHALLENGER: 1}

    predictions = pd.read_parquet(tmp_path / "predictions.parquet")
    assert predictions["model_version"].eq(1).all()
    assert predictions.groupby("date")["rank_pct"].max().eq(1.0).all()
    assert not predictions.loc[predictions["date"] == predictions["date"].max(), "in_sample"].any()
    models = json.loads((tmp_path / "models.json").read_text())
    assert models["champion"]["version"] == 1
    assert models["champion"]["data_version"] == metrics["data_version"]
    assert models["champion"]["metrics"]["oos_rank_ic"] == pytest.approx(
        metrics["model"]["oos_rank_ic"]
    )
    oos_ic = pd.read_parquet(tmp_path / "oos_ic.parquet")
    assert len(oos_ic) == metrics["model"]["dates"]
    assert not (tmp_path / "retrain_ledger.json").exists()  # no request was pending


def test_without_a_request_a_run_logs_it_and_trains_nothing(
    tmp_path, small_signal_features, fast_params, registry_dataset, caplog
):
    run_training(tmp_path, small_signal_features, fast_params, registry_dataset)
    written = (tmp_path / "metrics.json").read_text()

    with caplog.at_level(logging.INFO):
        catalog = run_training(
            tmp_path, small_signal_features, fast_params, registry_dataset, run_id="run-2"
        )

    assert "No retrain requested" in caplog.text
    assert catalog.load("model_registration") == {}
    assert (tmp_path / "metrics.json").read_text() == written
    assert aliases(registry_dataset, fast_params) == {CHAMPION: 1, CHALLENGER: 1}


def test_a_retrain_request_is_consumed_exactly_once(
    tmp_path, small_signal_features, fast_params, registry_dataset
):
    run_training(tmp_path, small_signal_features, fast_params, registry_dataset)

    first = run_training(
        tmp_path, small_signal_features, fast_params, registry_dataset, REQUEST, "run-2"
    )
    second = run_training(
        tmp_path, small_signal_features, fast_params, registry_dataset, REQUEST, "run-3"
    )

    assert first.load("training_decision")["train"] is True
    assert second.load("training_decision")["train"] is False
    ledger = json.loads((tmp_path / "retrain_ledger.json").read_text())
    assert len(ledger["consumed"]) == 1
    assert ledger["consumed"][0] | {"tickers": None} == {
        "request_run_id": "drift-1",
        "as_of": "2021-01-01",
        "requested_at": "2021-01-01T18:00:00+00:00",
        "tickers": None,
        "consumed_by_run_id": "run-2",
        "consumed_at": "2024-06-03T18:00:02+00:00",
        "model_version": 2,
    }
    assert aliases(registry_dataset, fast_params)[CHALLENGER] == 2
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["trigger"]["retrain_request_run_id"] == "drift-1"
    # a later drift run's request is a new one
    later = {**REQUEST, "run_id": "drift-2"}
    run_training(tmp_path, small_signal_features, fast_params, registry_dataset, later, "run-4")
    ledger = json.loads((tmp_path / "retrain_ledger.json").read_text())
    assert [e["request_run_id"] for e in ledger["consumed"]] == ["drift-1", "drift-2"]


def test_force_trains_without_a_request_and_an_equal_model_does_not_replace_the_champion(
    tmp_path, small_signal_features, fast_params, registry_dataset
):
    run_training(tmp_path, small_signal_features, fast_params, registry_dataset)

    forced = {**fast_params, "force": "true"}  # as --params=training.force=true may pass it
    catalog = run_training(
        tmp_path, small_signal_features, forced, registry_dataset, run_id="run-2"
    )

    comparison = catalog.load("champion_comparison")
    assert comparison["method"] == "same_folds"
    assert comparison["challenger_oos_rank_ic"] == comparison["champion_oos_rank_ic"]
    assert comparison["promote"] is False
    assert aliases(registry_dataset, fast_params) == {CHAMPION: 1, CHALLENGER: 2}


def weak(params: dict[str, Any]) -> dict[str, Any]:
    """A recipe blind to the planted signal: it sees neither returns nor anything built on closes."""
    return {**params, "features": ["volatility", "adx_14"], "relative_to_close": []}


@pytest.mark.parametrize("order", ["strong_then_weak", "weak_then_strong"])
def test_promotion_keeps_the_better_model(
    tmp_path, small_signal_features, fast_params, registry_dataset, order
):
    strong, blind = {**fast_params, "force": True}, {**weak(fast_params), "force": True}
    first, second = (strong, blind) if order == "strong_then_weak" else (blind, strong)
    run_training(tmp_path, small_signal_features, first, registry_dataset)

    catalog = run_training(
        tmp_path, small_signal_features, second, registry_dataset, run_id="run-2"
    )

    comparison = catalog.load("champion_comparison")
    assert comparison["method"] == "same_folds"
    better = 1 if order == "strong_then_weak" else 2
    assert aliases(registry_dataset, fast_params) == {CHAMPION: better, CHALLENGER: 2}
    assert comparison["promote"] is (better == 2)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["promoted"] is (better == 2)
    predictions = pd.read_parquet(tmp_path / "predictions.parquet")
    assert predictions["model_version"].eq(better).all()


def test_a_champion_with_unseen_dates_is_compared_frozen_on_them(
    tmp_path, small_signal_features, fast_params, registry_dataset
):
    cut = small_signal_features["date"].sort_values().unique()[-60]
    older = small_signal_features[small_signal_features["date"] <= cut]
    run_training(tmp_path, older, weak(fast_params), registry_dataset)

    catalog = run_training(
        tmp_path, small_signal_features, fast_params, registry_dataset, REQUEST, "run-2"
    )

    comparison = catalog.load("champion_comparison")
    assert comparison["method"] == "fresh_dates"
    assert comparison["dates"] == 58  # dates after all the champion saw, but the last (no target)
    assert comparison["promote"] is True
    assert aliases(registry_dataset, fast_params) == {CHAMPION: 2, CHALLENGER: 2}


def test_too_little_history_trains_nothing_and_keeps_the_request_pending(
    tmp_path, small_signal_features, fast_params, registry_dataset
):
    short = small_signal_features[
        small_signal_features["date"] <= small_signal_features["date"].unique()[100]
    ]

    catalog = run_training(tmp_path, short, fast_params, registry_dataset, REQUEST)

    assert catalog.load("training_decision")["reason"].startswith("too little history")
    assert not (tmp_path / "retrain_ledger.json").exists()
    assert not (tmp_path / "metrics.json").exists()
    assert aliases(registry_dataset, fast_params) == {CHAMPION: None, CHALLENGER: None}
