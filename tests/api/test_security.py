"""API keys (401 without or with a wrong one, /health open, named in the log, never shown), the
per-key rate limit (429 with Retry-After), CORS off unless configured."""

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from stock_pipeline.api.config import ApiConfigError, RateLimit, key_digest, load_config
from stock_pipeline.api.security import RateLimiter, key_name

KEY = "test-key-0123456789"
SECURED = (
    "/tickers",
    "/features/INFY.NS",
    "/features",
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
    features = schema["paths"]["/features/{ticker}"]["get"]
    assert features["security"] == [{"APIKeyHeader": []}]
    assert "401" in features["responses"]
    assert "security" not in schema["paths"]["/health"]["get"]


def test_openapi_without_keys_declares_none(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "securitySchemes" not in schema.get("components", {})
    operations = [path["get"] for path in schema["paths"].values()]
    assert not any("security" in op or "401" in op["responses"] for op in operations)
    assert not any("429" in op["responses"] for op in operations)


def test_several_named_keys_from_credentials_and_environment(
    project: Path,
    make_client: Callable[..., TestClient],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (project / "conf/local/credentials.yml").write_text(
        "api_keys:\n  notebooks: nb-key-0123456789\n  ci: replaced-by-the-environment\n"
    )
    monkeypatch.setenv("STOCK_PIPELINE_API_KEYS", "ci:ci-key:with-colon, trainer:tr-key-0123")
    client = make_client()
    with caplog.at_level(logging.INFO, logger="stock_pipeline.api.access"):
        for key in ("nb-key-0123456789", "ci-key:with-colon", "tr-key-0123"):
            assert client.get("/tickers", headers={"X-API-Key": key}).status_code == 200
        assert (
            client.get("/tickers", headers={"X-API-Key": "replaced-by-the-environment"}).status_code
            == 401
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "stock_pipeline.api.access"]
    assert [line.rsplit(" ", 1)[-1] for line in lines] == [
        "key=notebooks",
        "key=ci",
        "key=trainer",
        "key=-",
    ]
    assert lines[0].startswith("GET /tickers 200 ")
    assert not any("key-0123" in line or "with-colon" in line for line in caplog.text.splitlines())


def test_keys_are_kept_as_digests_only(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCK_PIPELINE_API_KEY", KEY)
    config = load_config(project)
    assert config.api_keys == {"default": key_digest(KEY)}
    assert KEY not in repr(config)


@pytest.mark.parametrize("value", ["no-colon", "bad name:key", "ci:"])
def test_malformed_keys_stop_the_api(
    project: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("STOCK_PIPELINE_API_KEYS", value)
    with pytest.raises(ApiConfigError):
        load_config(project)


@pytest.mark.parametrize(
    "limit",
    ["{requests_per_second: 0}", "{requests_per_second: 5, burst: 0}", "{per_key: {ci: -1}}"],
)
def test_impossible_rate_limits_stop_the_api(project: Path, limit: str) -> None:
    (project / "conf/local/parameters.yml").write_text(f"api:\n  rate_limit: {limit}\n")
    with pytest.raises(ApiConfigError, match="rate_limit"):
        load_config(project)


def test_key_name_finds_the_matching_key_only() -> None:
    keys = {"a": key_digest("alpha-key"), "b": key_digest("beta-key")}
    assert key_name("beta-key", keys) == "b"
    assert key_name("beta-ke", keys) is None
    assert key_name(None, keys) is None


def test_rate_limiter_refills_at_the_rate() -> None:
    now = [100.0]
    limiter = RateLimiter(
        RateLimit(requests_per_second=2, burst=2, per_key={"ci": 10}), lambda: now[0]
    )
    assert [limiter.wait("nb") for _ in range(2)] == [0.0, 0.0]
    assert limiter.wait("nb") == pytest.approx(0.5)
    now[0] += 0.5
    assert limiter.wait("nb") == 0.0
    assert all(limiter.wait("ci") == 0.0 for _ in range(2))
    assert limiter.wait("ci") == pytest.approx(0.1)
    assert RateLimiter(RateLimit()).wait("anyone") == 0.0


def test_rate_limit_answers_429_with_retry_after_per_key(
    project: Path, make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "conf/local/parameters.yml").write_text(
        "api:\n  rate_limit:\n    requests_per_second: 0.01\n    burst: 2\n"
    )
    monkeypatch.setenv("STOCK_PIPELINE_API_KEYS", "one:key-one-0123,two:key-two-0123")
    client = make_client()
    one, two = {"X-API-Key": "key-one-0123"}, {"X-API-Key": "key-two-0123"}
    assert [client.get("/tickers", headers=one).status_code for _ in range(2)] == [200, 200]
    limited = client.get("/tickers", headers=one)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 100
    assert client.get("/tickers", headers=two).status_code == 200
    assert client.get("/health").status_code == 200
    schema = client.get("/openapi.json", headers=two).json()
    assert "Retry-After" in schema["paths"]["/tickers"]["get"]["responses"]["429"]["headers"]


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
