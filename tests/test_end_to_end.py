"""End to end: `kedro run` on the sample environment in a temporary copy of the project."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from stock_pipeline.datasets import AppendParquetDataset
from stock_pipeline.versions import load_features, load_table

pytestmark = pytest.mark.e2e

COPIED = ["conf", "notebooks", "data/sample", "pyproject.toml", ".telemetry"]
KEDRO = str(Path(sys.executable).with_name("kedro"))


def copy_project(source: Path, target: Path) -> Path:
    """The project's configuration, notebooks, sample and code in a fresh folder."""
    for item in COPIED:
        origin = source / item
        if origin.is_dir():
            shutil.copytree(origin, target / item, ignore=shutil.ignore_patterns("local"))
        else:
            shutil.copy(origin, target / item)
    (target / "conf" / "local").mkdir(exist_ok=True)
    (target / "logs").mkdir(exist_ok=True)  # conf/logging.yml writes logs/pipeline.log
    shutil.copytree(source / "src", target / "src", ignore=shutil.ignore_patterns("__pycache__"))
    return target


def kedro(project: Path, *args: str, db_url: str | None = None) -> subprocess.CompletedProcess:
    """Run the kedro CLI in the project copy; fail the test with its output when it fails."""
    env = os.environ | {"KEDRO_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1"}
    env.pop("STOCK_PIPELINE_DB_URL", None)
    if db_url:
        env["STOCK_PIPELINE_DB_URL"] = db_url
    result = subprocess.run(
        [KEDRO, *args],
        check=False,
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return result


@pytest.fixture(scope="module")
def daily_run(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One daily run of the sample environment on the embedded SQLite database."""
    project = copy_project(project_root, tmp_path_factory.mktemp("project"))
    kedro(project, "run", "--pipeline=daily", "--env=sample")
    return project


def test_daily_run_writes_every_layer(daily_run: Path):
    raw_files = sorted(p.name for p in (daily_run / "data/01_raw/prices").glob("*.csv"))
    assert len(raw_files) == 8
    prices = load_table(daily_run / "data/03_primary/prices")
    features = load_features(project_path=daily_run)
    assert prices.groupby("ticker").size().min() > 400
    assert len(features) == len(prices) - 8 * 49
    assert not features[["sma_50", "rsi_14", "macd_signal", "volatility"]].isna().any().any()
    quality = json.loads((daily_run / "data/08_reporting/quality/quality_report.json").read_text())
    assert quality["summary"]["tickers_ok"] == 8
    quarantine = AppendParquetDataset(str(daily_run / "data/02_intermediate/quarantine")).load()
    assert quarantine.empty  # the weekend Muhurat sessions are special sessions, not off days
    special = features.loc[features["is_special_session"]].groupby("date").size()
    assert special.to_dict() == {pd.Timestamp("2019-10-27"): 8, pd.Timestamp("2020-11-14"): 8}
    drift = AppendParquetDataset(
        str(daily_run / "data/08_reporting/drift/drift_results"), replace_on=["as_of"]
    ).load()
    assert set(drift["ticker"]) == set(features["ticker"])
    reports = {p.name for p in (daily_run / "data/08_reporting/reports").glob("*.html")}
    assert {"quality_report.html", "drift_report.html", "model_report.html"} <= reports
    training = json.loads((daily_run / "data/08_reporting/training/metrics.json").read_text())
    assert training["model_version"] == 1 and training["promoted"] is True
    records = [
        json.loads(p.read_text()) for p in (daily_run / "data/08_reporting/runs").glob("*.json")
    ]
    (record,) = [r for r in records if "features" in r.get("versions", {})]
    # a model's data_version is the gold version the run wrote, as the API's X-Data-Version names it
    assert training["data_version"] == str(record["versions"]["features"])
    assert "ingestion of 8 tickers" in (daily_run / "logs/pipeline.log").read_text()


def test_daily_run_fills_the_embedded_database(daily_run: Path):
    engine = create_engine(f"sqlite:///{daily_run / 'data/stock_pipeline.db'}")
    features = load_features(project_path=daily_run)
    with engine.connect() as connection:
        rows = connection.execute(text("select count(*) from stock_features")).scalar_one()
        latest = connection.execute(text("select count(*) from latest_stock_data")).scalar_one()
        special = connection.execute(
            text("select count(*) from stock_features where is_special_session")
        ).scalar_one()
    assert rows == len(features)
    assert latest == 8
    assert special == features["is_special_session"].sum() == 16  # two Muhurat sessions


def test_stages_run_alone_and_a_rerun_adds_nothing(daily_run: Path):
    engine = create_engine(f"sqlite:///{daily_run / 'data/stock_pipeline.db'}")
    with engine.connect() as connection:
        before = connection.execute(
            text("select max(updated_at), count(*) from stock_features")
        ).one()
    kedro(daily_run, "run", "--pipelines=features,persistence,drift", "--env=sample")
    with engine.connect() as connection:
        after = connection.execute(
            text("select max(updated_at), count(*) from stock_features")
        ).one()
    assert tuple(after) == tuple(before)


def test_daily_run_against_postgresql(daily_run: Path, pg_url: str):
    kedro(daily_run, "run", "--pipelines=persistence,drift", "--env=sample", db_url=pg_url)
    features = load_features(project_path=daily_run)
    engine = create_engine(pg_url)
    with engine.connect() as connection:
        rows = connection.execute(text("select count(*) from stock_features")).scalar_one()
    engine.dispose()
    assert rows == len(features)


def test_viz_build_places_every_dataset_in_its_layer(daily_run: Path):
    result = kedro(daily_run, "viz", "build", "--include-hooks")
    graph = json.loads((daily_run / "build/api/main").read_text())
    layers = {node["name"]: node.get("layer") for node in graph["nodes"] if node["type"] == "data"}
    assert (daily_run / "build/index.html").exists()
    assert "circular" not in result.stdout + result.stderr
    assert graph["layers"] == [
        "raw",
        "intermediate",
        "primary",
        "feature",
        "model_input",
        "reporting",
    ]
    assert layers["features"] == "feature"
    assert layers["quarantine"] == "intermediate"
