"""/mlops/*: system health (and its 503s), pipeline metrics, data quality and drift per ticker."""

import os
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from stock_pipeline.contract import PIPELINE_RUNS, RunStatus
from stock_pipeline.versions import load_features
from tests.api.conftest import write_features


def test_system_health_is_healthy_on_fresh_data(client: TestClient, fresh_date: date) -> None:
    response = client.get("/mlops/system-health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["overall_health_score"] == pytest.approx(99.8, abs=0.5)
    assert body["data_freshness_hours"] == 0
    assert body["database"] == "ok"
    assert body["last_data_date"] == fresh_date.isoformat()
    assert body["last_pipeline_run"]["run_id"] == "run-2"
    assert set(body["components"]) == {"data_freshness", "database", "last_run", "data_quality"}


def test_system_health_is_503_on_stale_data(
    project: Path, make_client: Callable[..., TestClient]
) -> None:
    stale = load_features(project_path=project)
    stale["date"] = stale["date"] - pd.Timedelta(days=30)
    write_features(stale, project)
    response = make_client().get("/mlops/system-health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["data_freshness_hours"] > 36
    assert body["components"]["data_freshness"]["status"] == "down"
    assert body["database"] == "ok"


def test_system_health_is_503_when_the_database_is_down(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STOCK_PIPELINE_DB_URL", f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    response = make_client().get("/mlops/system-health")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "down"
    assert body["last_pipeline_run"] is None
    assert not (tmp_path / "missing").exists()


def test_system_health_never_shows_the_database_password(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "postgresql+psycopg2://reader:s3cret-pw@127.0.0.1:1/nowhere"
    monkeypatch.setenv("STOCK_PIPELINE_DB_URL", url)
    client = make_client()
    for path in ("/mlops/system-health", "/latest", "/mlops/pipeline-metrics"):
        response = client.get(path)
        assert response.status_code == 503
        assert "s3cret" not in response.text


def test_pipeline_metrics_summarise_recorded_runs(client: TestClient) -> None:
    body = client.get("/mlops/pipeline-metrics").json()
    assert body["runs"] == 3
    assert body["finished_runs"] == 3
    assert body["success_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert body["total_rows"] == 10100
    assert body["duration_seconds"]["max"] == 100.0
    assert body["duration_seconds"]["p50"] == 50.0
    assert body["throughput_rows_per_second"]["max"] == 100.0
    assert [run["run_id"] for run in body["last_runs"]] == ["run-2", "run-1", "run-0"]


def test_pipeline_metrics_limits_runs(client: TestClient) -> None:
    body = client.get("/mlops/pipeline-metrics", params={"runs": 1}).json()
    assert [run["run_id"] for run in body["last_runs"]] == ["run-2"]
    assert body["success_rate"] == 1.0


@pytest.mark.parametrize("runs", ["0", "1001", "many"])
def test_pipeline_metrics_bad_runs_is_422(client: TestClient, runs: str) -> None:
    assert client.get(f"/mlops/pipeline-metrics?runs={runs}").status_code == 422


def test_data_quality_of_a_ticker(client: TestClient) -> None:
    body = client.get("/mlops/data-quality/M&M.NS").json()
    assert body["ticker"] == "M&M.NS"
    assert body["run_id"] == "run-2"
    assert body["quality_score"] == 97.5
    assert body["quarantine_by_rule"] == {"ohlc_consistency": 2}
    assert body["freshness"]["stale"] is False


def test_data_quality_unknown_and_malformed(client: TestClient) -> None:
    assert client.get("/mlops/data-quality/TCS.NS").status_code == 404
    assert client.get("/mlops/data-quality/tcs").status_code == 422


def test_drift_detection_of_a_ticker(client: TestClient, fresh_date: date) -> None:
    body = client.get("/mlops/drift-detection/M&M.NS").json()
    assert body["as_of"] == fresh_date.isoformat()
    assert body["drift_detected"] is True
    assert body["features_with_drift"] == ["volatility"]
    assert set(body["p_values"]) == {"daily_return", "volatility"}
    assert body["p_values"]["volatility"] < 0.05
    assert body["recommendation"] == "retrain"
    assert body["kind"] == "shock+regime"
    assert {f["feature"]: f["shock_p_value"] for f in body["features"]} == {
        "daily_return": 0.5,
        "volatility": 0.004,
    }
    assert {f["feature"]: f["drift"] for f in body["features"]} == {
        "daily_return": False,
        "volatility": True,
    }
    assert body["history"] == [
        {"as_of": fresh_date.isoformat(), "drifted": 1, "tested": 2},
        {"as_of": (fresh_date - timedelta(days=7)).isoformat(), "drifted": 0, "tested": 2},
    ]


def test_drift_detection_without_recommendation(client: TestClient) -> None:
    body = client.get("/mlops/drift-detection/INFY.NS", params={"history": 0}).json()
    assert body["recommendation"] is None
    assert body["kind"] is None
    assert body["history"] == []


def test_drift_detection_unknown_and_malformed(client: TestClient) -> None:
    assert client.get("/mlops/drift-detection/BAJAJ-AUTO.NS").status_code == 404
    assert client.get("/mlops/drift-detection/INFY.NS?history=-1").status_code == 422
    assert client.get("/mlops/drift-detection/INFY.NS?history=366").status_code == 422


def test_before_the_pipeline_ran_answers_are_503(
    project: Path, make_client: Callable[..., TestClient]
) -> None:
    for path in project.joinpath("data").rglob("*"):
        if path.is_file():
            os.remove(path)
    client = make_client()
    assert client.get("/health").json()["features_loaded"] is False
    for path in (
        "/tickers",
        "/features/INFY.NS",
        "/latest",
        "/market-summary",
        "/mlops/system-health",
        "/mlops/pipeline-metrics",
        "/mlops/data-quality/INFY.NS",
        "/mlops/drift-detection/INFY.NS",
    ):
        response = client.get(path)
        assert response.status_code == 503, path
        assert response.json()["status" if "system-health" in path else "detail"]


def test_pipeline_metrics_count_abandoned_runs_apart(project: Path, client: TestClient) -> None:
    engine = sa.create_engine(f"sqlite:///{project / 'data/stock_pipeline.db'}")
    started = datetime(2026, 5, 1, 18, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(
            PIPELINE_RUNS.insert().values(
                run_id="run-killed",
                pipeline="daily",
                status=RunStatus.ABANDONED,
                started_at=started,
                rows_out=7,
                error="abandoned: its process (pid 4242 on cron-host) is gone",
            )
        )
    engine.dispose()
    body = client.get("/mlops/pipeline-metrics").json()
    assert (body["runs"], body["finished_runs"], body["abandoned_runs"]) == (4, 3, 1)
    assert body["running_runs"] == 0
    assert body["success_rate"] == pytest.approx(2 / 3, abs=1e-4)  # not counted as a finished run
    assert body["last_runs"][0]["status"] == "abandoned"
    health = client.get("/mlops/system-health").json()
    assert health["components"]["last_run"]["status"] == "down"
