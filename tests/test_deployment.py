"""Deployment outside the checkout: the wheel `kedro package` builds, installed into a fresh virtual
environment, runs the daily pipeline on the sample and serves the API from a folder of
configuration and data only; Airflow 3, installed beside the wheel in its own virtual
environment, runs the DAG `make airflow-dag` writes, every task succeeding, and a task that finds
the run lock held waits and fails naming the holder. Slow (fresh virtual environments):
`make test-deploy`."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

from stock_pipeline.run_lock import FolderLock, Holder
from tests.test_end_to_end import copy_project

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

KEDRO = str(Path(sys.executable).with_name("kedro"))
AIRFLOW = "apache-airflow>=3.2,<4"
DAG_ID = "stock_pipeline_daily"


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 900):
    """Run a command; fail the test with its output when it fails."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env=os.environ | {"KEDRO_DISABLE_TELEMETRY": "true"} | (env or {}),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def virtual_environment(folder: Path, *requirements: str) -> Path:
    """A fresh virtual environment with the requirements installed; its bin folder."""
    run([sys.executable, "-m", "venv", str(folder)], folder.parent)
    run([str(folder / "bin/pip"), "install", "--quiet", *requirements], folder.parent)
    return folder / "bin"


@pytest.fixture(scope="module")
def built(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`kedro package` in a copy of the project: dist/ with the wheel and the conf archive."""
    project = copy_project(project_root, tmp_path_factory.mktemp("project"))
    shutil.copytree(project_root / "airflow", project / "airflow")
    run([KEDRO, "package"], project)
    return project


def wheel(project: Path) -> str:
    """The wheel kedro package built."""
    (path,) = (project / "dist").glob("stock_pipeline-*.whl")
    return str(path)


def deployment_folder(project: Path, folder: Path) -> Path:
    """A folder holding only the packaged configuration and the sample's prices."""
    folder.mkdir()
    with tarfile.open(project / "dist/conf-stock_pipeline.tar.gz") as archive:
        archive.extractall(folder, filter="data")
    shutil.copytree(project / "data/sample/prices", folder / "data/sample/prices")
    return folder


def free_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_json(url: str, attempts: int = 60) -> dict:
    """The JSON answer of `url`, waiting for the server to start."""
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer")


def test_the_installed_package_runs_the_daily_pipeline_and_serves_the_api(
    built: Path, tmp_path: Path
):
    bin_ = virtual_environment(tmp_path / "venv", wheel(built))
    folder = deployment_folder(built, tmp_path / "srv")
    run(
        [str(bin_ / "python"), "-m", "stock_pipeline", "--env=sample", "--conf-source=conf"],
        folder,
    )
    for output in (
        "data/04_feature/features/_delta_log",
        "data/stock_pipeline.db",
        "data/08_reporting/reports/quality_report.html",
        "data/08_reporting/reports/drift_report.html",
        "data/08_reporting/reports/model_report.html",
    ):
        assert (folder / output).exists(), output
    assert not (folder / "src").exists() and not (folder / "pyproject.toml").exists()

    port = free_port()
    server = subprocess.Popen(
        [str(bin_ / "uvicorn"), "stock_pipeline.api.main:app", "--port", str(port)],
        cwd=folder,
        env=os.environ | {"KEDRO_ENV": "sample"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        health = get_json(f"http://127.0.0.1:{port}/health")
        features = get_json(f"http://127.0.0.1:{port}/features/INFY.NS?limit=3")
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert health["status"] == "ok" and health["tickers"] == 8
    assert len(features["rows"]) == 3


def json_lines(output: str) -> list[dict]:
    """The JSON list an Airflow command printed (after any warning lines)."""
    (line,) = [line for line in output.splitlines() if line.startswith("[")]
    return json.loads(line)


def airflow_env(home: Path, folder: Path) -> dict[str, str]:
    """An Airflow home on SQLite in a temporary folder, its DAGs the generated ones."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "STOCK_PIPELINE_PROJECT_ROOT": str(folder),
    }


def test_airflow_runs_the_generated_dag_and_the_run_lock_holds(built: Path, tmp_path: Path):
    bin_ = virtual_environment(tmp_path / "airflow-venv", AIRFLOW, wheel(built))
    home = tmp_path / "airflow"
    run(
        [
            KEDRO,
            "airflow",
            "create",
            "--pipelines=daily",
            "--env=sample",
            "--group-by=memory",
            "--jinja-file=airflow/dag_template.j2",
            f"--target-dir={home / 'dags'}",
        ],
        built,
    )
    folder = deployment_folder(built, tmp_path / "srv")
    env = airflow_env(home, folder)
    airflow = str(bin_ / "airflow")
    run([airflow, "db", "migrate"], home, env)
    run([airflow, "dags", "test", DAG_ID, "2026-12-04"], folder, env)

    runs = json_lines(run([airflow, "dags", "list-runs", DAG_ID, "-o", "json"], folder, env).stdout)
    assert [entry["state"] for entry in runs] == ["success"]
    states = run(
        [airflow, "tasks", "states-for-dag-run", DAG_ID, runs[0]["run_id"], "-o", "json"],
        folder,
        env,
    ).stdout
    tasks = json_lines(states)
    groups = {task["task_id"].split(".")[0] for task in tasks}
    assert groups == {
        "ingestion", "cleaning", "features", "persistence", "drift", "training", "reporting"
    }  # fmt: skip
    assert {task["state"] for task in tasks} == {"success"}
    assert (folder / "data/08_reporting/reports/model_report.html").exists()
    request = json.loads((folder / "data/08_reporting/drift/retrain_request.json").read_text())
    assert request["run_id"] == runs[0]["run_id"]  # every task stamped the DAG run's id

    # a cron run holds the data folder: the DAG's task waits, then fails naming the holder, and
    # Airflow retries it (`airflow tasks test` itself exits 0 whatever the task did)
    (folder / "conf/sample/parameters_run.yml").write_text("run:\n  lock_timeout_seconds: 1\n")
    lock = FolderLock(folder)
    lock.acquire(Holder.me("cron-run"), 0)
    try:
        task = next(t["task_id"] for t in tasks if t["task_id"].startswith("features."))
        blocked = subprocess.run(
            [airflow, "tasks", "test", DAG_ID, task, "2026-12-05"],
            cwd=folder,
            env=os.environ | env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        lock.release()
    output = blocked.stdout + blocked.stderr
    assert "Another run holds" in output and "exit_code=75" in output  # EX_TEMPFAIL
    assert "new_state=up_for_retry" in output  # Airflow tries again later
