"""The model registry: MLflow tracking and registry, local by default, a server by configuration.

`ModelRegistryDataset` is the catalog's handle on it: loading gives a `RegistryLocation`, which
nodes `connect` with their `training.mlflow` parameters. The tracking URI is, in order:
`training.mlflow.tracking_uri`, the environment variable MLFLOW_TRACKING_URI, and the dataset's
default (a SQLite file under data/, which needs no server).
"""

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kedro.io import AbstractDataset, DatasetError

if TYPE_CHECKING:
    import lightgbm as lgb

DEFAULT_TRACKING_URI = "sqlite:///data/mlflow.db"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
CHAMPION, CHALLENGER = "champion", "challenger"
MODEL_PATH = "model"
RECIPE_FILE = "recipe.json"
VALIDATION_FILE = "validation.json"


def _is_local(uri: str) -> bool:
    """Whether the tracking store is a file on this machine (so artifacts go under data/ too)."""
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


@dataclass
class ModelRegistry:
    """Champion/challenger models of one registered model name in one MLflow store."""

    tracking_uri: str
    experiment: str
    model_name: str
    artifact_location: str | None = None
    _boosters: dict[int, "lgb.Booster"] = field(default_factory=dict, repr=False)

    @property
    def client(self) -> Any:
        """The MLflow client (imported on first use: MLflow takes a second to import)."""
        # a pipeline should not phone home or draw progress bars into the run log (users may opt in)
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def _experiment_id(self) -> str:
        """The experiment's id, created on first use (artifacts under data/ for a local store)."""
        client = self.client
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        location = None
        if self.artifact_location and _is_local(self.tracking_uri):
            location = Path(self.artifact_location).resolve().as_uri()
        return client.create_experiment(self.experiment, artifact_location=location)

    def version(self, alias: str) -> dict[str, Any] | None:
        """The model version behind an alias with its run's metrics, params and tags; None when unset."""
        from mlflow.exceptions import MlflowException

        client = self.client
        try:
            found = client.get_model_version_by_alias(self.model_name, alias)
        except MlflowException:
            return None
        run = client.get_run(found.run_id)
        tags = run.data.tags
        return {
            "version": int(found.version),
            "alias": alias,
            "run_id": found.run_id,
            "metrics": dict(run.data.metrics),
            "params": dict(run.data.params),
            "recipe": json.loads(tags["recipe"]),
            "trained_at": tags.get("trained_at"),
            "data_version": tags.get("data_version"),
            "train_end": tags.get("train_end"),
            "data_end": tags.get("data_end"),
            "folds": json.loads(tags.get("folds", "[]")),
            "kedro_run_id": tags.get("kedro_run_id"),
        }

    def load_model(self, version: dict[str, Any]) -> "lgb.Booster":
        """The LightGBM booster of a version (downloaded once per registry object)."""
        import lightgbm as lgb
        import mlflow.artifacts

        number = int(version["version"])
        if number not in self._boosters:
            with tempfile.TemporaryDirectory() as folder:
                path = mlflow.artifacts.download_artifacts(
                    run_id=version["run_id"],
                    artifact_path=MODEL_PATH,
                    dst_path=folder,
                    tracking_uri=self.tracking_uri,
                )
                self._boosters[number] = lgb.Booster(model_file=str(Path(path) / "model.lgb"))
        return self._boosters[number]

    def log_model(
        self,
        booster: "lgb.Booster",
        *,
        metrics: dict[str, float],
        params: dict[str, Any],
        tags: dict[str, str],
        documents: dict[str, Any],
    ) -> int:
        """Log a run (metrics, params, tags, JSON documents, the model) and register it; its version."""
        import lightgbm as lgb
        import mlflow.lightgbm
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.exceptions import MlflowException

        client = self.client
        run = client.create_run(
            self._experiment_id(), tags={"mlflow.runName": tags.get("kedro_run_id", "")}
        )
        run_id = run.info.run_id
        try:
            client.log_batch(
                run_id,
                metrics=[Metric(k, float(v), 0, 0) for k, v in metrics.items() if math.isfinite(v)],
                params=[Param(k, str(v)[:6000]) for k, v in params.items()],
                tags=[RunTag(k, str(v)) for k, v in tags.items()],
            )
            for name, document in documents.items():
                client.log_dict(run_id, document, name)
            with tempfile.TemporaryDirectory() as folder:
                requirements = [f"lightgbm=={lgb.__version__}"]
                mlflow.lightgbm.save_model(
                    booster, path=f"{folder}/{MODEL_PATH}", pip_requirements=requirements
                )
                client.log_artifacts(run_id, f"{folder}/{MODEL_PATH}", MODEL_PATH)
            client.set_terminated(run_id)
        except Exception:
            client.set_terminated(run_id, status="FAILED")
            raise
        try:
            client.get_registered_model(self.model_name)
        except MlflowException:
            client.create_registered_model(self.model_name)
        created = client.create_model_version(
            self.model_name, source=f"{run.info.artifact_uri}/{MODEL_PATH}", run_id=run_id
        )
        return int(created.version)

    def set_alias(self, alias: str, version: int) -> None:
        """Point an alias (champion, challenger) at a version."""
        self.client.set_registered_model_alias(self.model_name, alias, str(version))


@dataclass(frozen=True)
class RegistryLocation:
    """Where the registry is unless the parameters say otherwise."""

    default_tracking_uri: str
    environment_tracking_uri: str | None
    artifact_location: str | None

    def connect(self, settings: dict[str, Any]) -> ModelRegistry:
        """The registry for `training.mlflow` settings (tracking_uri, experiment, model_name)."""
        uri = (
            settings.get("tracking_uri")
            or self.environment_tracking_uri
            or self.default_tracking_uri
        )
        return ModelRegistry(
            tracking_uri=uri,
            experiment=settings["experiment"],
            model_name=settings["model_name"],
            artifact_location=self.artifact_location,
        )


class ModelRegistryDataset(AbstractDataset[None, RegistryLocation]):
    """Loads where the MLflow registry lives; nodes write to it through the connected client."""

    def __init__(
        self,
        default_tracking_uri: str = DEFAULT_TRACKING_URI,
        artifact_location: str | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._default_tracking_uri = default_tracking_uri
        self._artifact_location = artifact_location
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {
            "default_tracking_uri": self._default_tracking_uri,
            "artifact_location": self._artifact_location,
        }

    def load(self) -> RegistryLocation:
        """The default location, with MLFLOW_TRACKING_URI when it is set."""
        return RegistryLocation(
            default_tracking_uri=self._default_tracking_uri,
            environment_tracking_uri=os.environ.get(TRACKING_URI_ENV) or None,
            artifact_location=self._artifact_location,
        )

    def save(self, data: None) -> None:
        """Read-only: models are registered by the training nodes through the client."""
        raise DatasetError("model_registry is read-only; training registers models through MLflow")
