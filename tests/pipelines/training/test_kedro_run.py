"""`kedro run --pipelines=training` on the sample in a temporary copy of the project."""

import json
from pathlib import Path

import pytest

from tests.test_end_to_end import copy_project, kedro

pytestmark = pytest.mark.e2e

TRAINING = "data/08_reporting/training"


@pytest.fixture(scope="module")
def project(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's gold layer and a drift run, in a fresh copy of the project."""
    project = copy_project(project_root, tmp_path_factory.mktemp("project"))
    kedro(project, "run", "--pipelines=ingestion,cleaning,features,drift", "--env=sample")
    return project


def train(project: Path, *args: str) -> str:
    """One training run; what it added to logs/pipeline.log (the console wraps long lines)."""
    log = project / "logs" / "pipeline.log"
    before = log.stat().st_size if log.exists() else 0
    kedro(project, "run", "--pipelines=training", "--env=sample", *args)
    with log.open(encoding="utf-8") as handle:
        handle.seek(before)
        return handle.read()


def models(project: Path) -> dict:
    """models.json: the champion and the challenger."""
    return json.loads((project / TRAINING / "models.json").read_text())


def test_training_runs_first_then_only_on_request_or_force(project: Path):
    log = train(project)
    metrics = json.loads((project / TRAINING / "metrics.json").read_text())
    assert "no model registered yet" in log
    assert metrics["model_version"] == 1 and metrics["promoted"] is True
    assert (project / "data/mlflow.db").exists()
    assert models(project)["champion"]["version"] == 1

    assert "No retrain requested" in train(project)
    assert models(project)["challenger"]["version"] == 1

    request = project / "data/08_reporting/drift/retrain_request.json"
    stored = json.loads(request.read_text())
    request.write_text(json.dumps({**stored, "requested": True, "run_id": "drift-run-9"}))
    assert "retrain requested by drift run drift-run-9" in train(project)
    assert "No retrain requested" in train(project)  # consumed exactly once
    ledger = json.loads((project / TRAINING / "retrain_ledger.json").read_text())
    assert [entry["request_run_id"] for entry in ledger["consumed"]] == ["drift-run-9"]
    assert ledger["consumed"][0]["model_version"] == 2

    log = train(project, "--params=training.force=true")
    assert "forced" in log and "version 3 stays challenger" in log
    assert models(project)["champion"]["version"] == 1
    assert models(project)["challenger"]["version"] == 3
