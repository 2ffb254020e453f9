"""GET /models and GET /predictions/{ticker}: served from the training pipeline's files."""

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from stock_pipeline.api.config import load_config


def test_models_lists_the_champion_and_the_challenger(client: TestClient) -> None:
    response = client.get("/models")
    assert response.status_code == 200
    body = response.json()
    assert body["model_name"] == "stock-pipeline-ranker"
    assert body["champion"]["version"] == 2
    assert body["challenger"]["version"] == 3
    assert body["champion"]["data_version"] == "3"
    assert body["champion"]["metrics"]["oos_rank_ic"] == pytest.approx(0.03)
    assert body["champion"]["trained_at"]


def test_predictions_default_to_the_latest_date_with_the_model_version(
    client: TestClient, fresh_date: date
) -> None:
    response = client.get("/predictions/INFY.NS")
    assert response.status_code == 200
    body = response.json()
    assert body["ticker"] == "INFY.NS"
    assert body["model_version"] == 2
    assert body["horizon"] == 1
    assert body["count"] == 1
    (latest,) = body["predictions"]
    assert latest["date"] == fresh_date.isoformat()
    assert latest["in_sample"] is False
    assert 0 < latest["rank_pct"] <= 1


def test_predictions_in_a_date_range_come_newest_first(client: TestClient, project: Path) -> None:
    stored = pd.read_parquet(load_config(project).files["model_predictions"])
    dates = sorted(stored.loc[stored["ticker"] == "M&M.NS", "date"].dt.date.unique())
    start, end = dates[10], dates[19]

    body = client.get(f"/predictions/M&M.NS?start={start}&end={end}").json()

    assert body["count"] == 10
    assert [p["date"] for p in body["predictions"]] == [d.isoformat() for d in dates[19:9:-1]]
    limited = client.get(f"/predictions/M&M.NS?start={start}&limit=3").json()
    assert limited["count"] == 3 and limited["predictions"][0]["date"] == dates[-1].isoformat()


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/predictions/ABC.NS", 404),
        ("/predictions/infy", 422),
        ("/predictions/INFY.NS?limit=0", 422),
        ("/predictions/INFY.NS?start=yesterday", 422),
        ("/predictions/INFY.NS?start=0", 422),
    ],
)
def test_bad_requests_are_4xx(client: TestClient, path: str, code: int) -> None:
    assert client.get(path).status_code == code


def test_start_after_end_is_no_predictions(client: TestClient) -> None:
    response = client.get("/predictions/INFY.NS?start=2026-02-01&end=2026-01-01")
    assert (response.status_code, response.json()["predictions"]) == (200, [])


def test_without_a_model_both_endpoints_answer_503(
    project: Path, make_client: Callable[..., TestClient]
) -> None:
    (load_config(project).files["model_summary"]).unlink()
    (load_config(project).files["model_predictions"]).unlink()
    client = make_client()

    for path in ("/models", "/predictions/INFY.NS"):
        response = client.get(path)
        assert response.status_code == 503
        assert "no model yet" in response.json()["detail"]


def test_a_new_champion_is_served_once_its_files_change(client: TestClient, project: Path) -> None:
    assert client.get("/predictions/INFY.NS").json()["model_version"] == 2
    stored = pd.read_parquet(load_config(project).files["model_predictions"]).assign(
        model_version=3
    )
    stored.to_parquet(load_config(project).files["model_predictions"], index=False)

    assert client.get("/predictions/INFY.NS").json()["model_version"] == 3


def test_the_api_key_guards_the_model_endpoints(
    monkeypatch: pytest.MonkeyPatch, make_client: Callable[..., TestClient]
) -> None:
    monkeypatch.setenv("STOCK_PIPELINE_API_KEY", "secret")
    client = make_client()
    assert client.get("/models").status_code == 401
    assert client.get("/models", headers={"X-API-Key": "secret"}).status_code == 200
