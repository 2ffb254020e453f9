"""Shared fixtures: simulated markets (built once per session) and a private MLflow store per test."""

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from stock_pipeline.pipelines.training.registry import ModelRegistryDataset, RegistryLocation
from tests.pipelines.training.simulation import project_parameters, simulated_features


@pytest.fixture(scope="session")
def signal_features() -> pd.DataFrame:
    """50 tickers x 1000 sessions whose daily returns are AR(1) with coefficient 0.2."""
    return simulated_features(tickers=50, sessions=1000, phi=0.2)


@pytest.fixture(scope="session")
def noise_features() -> pd.DataFrame:
    """50 tickers x 1000 sessions of independent returns: nothing to predict."""
    return simulated_features(tickers=50, sessions=1000, phi=0.0)


@pytest.fixture(scope="session")
def small_signal_features() -> pd.DataFrame:
    """20 tickers x 500 sessions of AR(1) 0.2 returns, for the pipeline tests."""
    return simulated_features(tickers=20, sessions=500, phi=0.2, seed=5)


@pytest.fixture
def params() -> dict[str, Any]:
    """The project's training parameters."""
    return project_parameters("training")


@pytest.fixture
def fast_params(params: dict[str, Any]) -> dict[str, Any]:
    """Training parameters with a smaller model and a shorter first fold, for the pipeline tests."""
    return {
        **params,
        "model": {**params["model"], "n_estimators": 40, "min_child_samples": 50},
        "validation": {**params["validation"], "min_train_dates": 150, "n_splits": 4},
    }


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its tables created (creating them takes a second or two)."""
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    registry = RegistryLocation(f"sqlite:///{path}", None, None).connect(
        {"experiment": "template", "model_name": "template"}
    )
    registry.version("champion")  # creates the tables
    return path


@pytest.fixture
def registry_dataset(tmp_path: Path, empty_store: Path) -> ModelRegistryDataset:
    """The catalog's registry dataset on a private copy of the empty store, artifacts in tmp_path."""
    store = tmp_path / "mlflow.db"
    shutil.copy(empty_store, store)
    return ModelRegistryDataset(
        default_tracking_uri=f"sqlite:///{store}", artifact_location=str(tmp_path / "artifacts")
    )


@pytest.fixture(autouse=True)
def no_tracking_uri_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests use their own store whatever the shell exports."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
