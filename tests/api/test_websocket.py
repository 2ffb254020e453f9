"""/ws/latest: the latest bars on connect, and again when the feature dataset changes."""

from pathlib import Path

from fastapi.testclient import TestClient

from stock_pipeline.versions import load_features
from tests.api.conftest import write_features


def test_latest_bars_on_connect(client: TestClient, tickers: tuple[str, ...]) -> None:
    with client.websocket_connect("/ws/latest") as socket:
        message = socket.receive_json()
    assert message["type"] == "latest"
    assert [bar["ticker"] for bar in message["bars"]] == sorted(tickers)
    assert all(bar["date"] == message["last_date"] for bar in message["bars"])
    assert {"close", "rsi_14", "volatility"} <= set(message["bars"][0])


def test_latest_bars_again_when_the_features_change(client: TestClient, project: Path) -> None:
    with client.websocket_connect("/ws/latest") as socket:
        first = socket.receive_json()
        frame = load_features(project_path=project)
        frame = frame[frame["ticker"] != "INFY.NS"]
        write_features(frame, project)
        second = socket.receive_json()
    assert len(first["bars"]) == 3
    assert [bar["ticker"] for bar in second["bars"]] == ["BAJAJ-AUTO.NS", "M&M.NS"]
    assert first["version"] != second["version"]
    assert second["version"] == client.get("/tickers").headers["X-Data-Version"]
    assert client.get("/features/INFY.NS").status_code == 404
