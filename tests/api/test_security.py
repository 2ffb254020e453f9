"""The API key (401 without or with a wrong one, /health open), CORS off unless configured."""

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

KEY = "test-key-0123456789"
SECURED = (
    "/tickers",
    "/features/INFY.NS",
    "/latest",
    "/market-summary",
    "/mlops/system-health",
    "/mlops/pipeline-metrics",
    "/mlops/data-quality/INFY.NS",
    "/mlops/drift-detection/INFY.NS",
)


@pytest.fixture
def keyed_client(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> TestClient:
    """A client on an app that requires KEY."""
    monkeypatch.setenv("STOCK_PIPELINE_API_KEY", KEY)
    return make_client()


@pytest.mark.parametrize("path", SECURED)
def test_every_endpoint_needs_the_key(keyed_client: TestClient, path: str) -> None:
    assert keyed_client.get(path).status_code == 401
    assert keyed_client.get(path, headers={"X-API-Key": "wrong"}).status_code == 401
    assert keyed_client.get(path, headers={"X-API-Key": KEY}).status_code == 200


def test_health_needs_no_key(keyed_client: TestClient) -> None:
    assert keyed_client.get("/health").status_code == 200


def test_the_key_never_appears_in_answers(keyed_client: TestClient) -> None:
    response = keyed_client.get("/features/INFY.NS", headers={"X-API-Key": "wrong"})
    assert response.json() == {"detail": "missing or invalid API key"}
    assert KEY not in keyed_client.get("/openapi.json").text


def test_websocket_needs_the_key(keyed_client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as closed, keyed_client.websocket_connect("/ws/latest"):
        pass
    assert closed.value.code == 1008
    with keyed_client.websocket_connect("/ws/latest", headers={"X-API-Key": KEY}) as socket:
        assert socket.receive_json()["type"] == "latest"


def test_openapi_declares_the_key(keyed_client: TestClient) -> None:
    schema = keyed_client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"


def test_cors_is_off_by_default(client: TestClient) -> None:
    response = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers


def test_cors_allows_only_configured_origins(
    project: Path, make_client: Callable[..., TestClient]
) -> None:
    (project / "conf/local/parameters.yml").write_text(
        "api:\n  cors_origins: ['https://dash.example']\n"
    )
    client = make_client()
    allowed = client.get("/health", headers={"Origin": "https://dash.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://dash.example"
    other = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
