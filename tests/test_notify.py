"""Alerts: delivered to a local webhook and a local SMTP server; a dead target never fails a run."""

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from aiosmtpd.controller import Controller
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline, node
from kedro.runner import SequentialRunner

from stock_pipeline.hooks import NotificationHooks
from stock_pipeline.notify import Alert, Notifier, alert_for_saved


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP server that keeps every JSON body posted to it; its URL for apprise."""
    received: list[dict[str, Any]] = []

    class Keep(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Keep)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"json://127.0.0.1:{server.server_port}/alerts", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def smtp() -> Iterator[tuple[str, list[str]]]:
    """A local SMTP server that keeps every message; its URL for apprise."""
    messages: list[str] = []

    class Keep:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            messages.append(envelope.content.decode("utf-8", "replace"))
            return "250 OK"

    with socket.socket() as probe:  # a free port: aiosmtpd's Controller cannot pick one itself
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    yield (
        f"mailto://127.0.0.1:{port}?from=pipeline@example.com&to=ops@example.com&mode=insecure",
        messages,
    )
    controller.stop()


def test_an_alert_reaches_a_webhook_and_an_email(webhook, smtp) -> None:
    (hook_url, posted), (mail_url, mailed) = webhook, smtp
    notifier = Notifier([hook_url, mail_url])

    assert notifier.send(Alert("drift_alerts", "drift in 2 tickers", "INFY.NS volatility"))

    assert posted[0]["title"] == "drift in 2 tickers"
    assert "INFY.NS volatility" in posted[0]["message"]
    deadline = time.monotonic() + 5
    while not mailed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "Subject: drift in 2 tickers" in mailed[0]


def test_only_the_configured_events_are_sent(webhook) -> None:
    url, posted = webhook
    notifier = Notifier([url], events=["run_failed"])
    assert not notifier.send(Alert("stale_data", "stale", "x"))
    assert notifier.send(Alert("run_failed", "failed", "x"))
    assert [body["title"] for body in posted] == ["failed"]
    with pytest.raises(ValueError, match="unknown"):
        Notifier([url], events=["typo"])


def test_a_dead_target_is_logged_and_does_not_raise(caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier(["json://127.0.0.1:9/unreachable"])
    assert notifier.send(Alert("run_failed", "run failed", "boom")) is False
    assert "did not reach every target" in caplog.text


def test_datasets_that_call_for_an_alert() -> None:
    report = {"summary": {"tickers_stale": ["INFY.NS", "TCS.NS"]}}
    assert alert_for_saved("quality_report", report, "r1").event == "stale_data"
    assert alert_for_saved("quality_report", {"summary": {"tickers_stale": []}}, "r1") is None
    alerts = pd.DataFrame({"ticker": ["INFY.NS"], "feature": ["volatility"]})
    assert "INFY.NS volatility" in alert_for_saved("model_health_alerts", alerts, "r1").body
    kinds = alerts.assign(kind="regime")
    assert "INFY.NS volatility (regime)" in alert_for_saved("model_health_alerts", kinds, "r1").body
    assert alert_for_saved("model_health_alerts", alerts.iloc[:0], "r1") is None
    request = {"requested": True, "tickers": ["A.NS"], "share_drifted": 0.6, "as_of": "2020-03-17"}
    assert alert_for_saved("retrain_request", request, "r1").event == "retrain_requested"
    assert alert_for_saved("retrain_request", {"requested": False}, "r1") is None


def request_retraining() -> dict[str, Any]:
    """A retrain request, as the drift pipeline writes one."""
    return {"requested": True, "tickers": ["INFY.NS"], "share_drifted": 1.0, "as_of": "2020-03-17"}


def explode(request: dict[str, Any]) -> None:
    """Fail with a password in the message."""
    raise RuntimeError("cannot reach postgresql://writer:hunter2@db.example/prod")


def test_the_hooks_alert_on_a_retrain_request_and_on_the_failed_run(
    webhook, tmp_path: Path
) -> None:
    url, posted = webhook
    hooks = NotificationHooks()
    hooks._notifier = Notifier([url])  # as after_context_created builds it from the config
    manager = _create_hook_manager()
    manager.register(hooks)
    pipeline = Pipeline(
        [
            node(request_retraining, None, "retrain_request", name="request_retraining_node"),
            node(explode, "retrain_request", None, name="explode_node"),
        ]
    )
    catalog = DataCatalog({"retrain_request": MemoryDataset()})
    params = {"run_id": "run-9", "pipeline_names": ["daily"], "project_path": str(tmp_path)}
    manager.hook.before_pipeline_run(run_params=params, pipeline=pipeline, catalog=catalog)
    with pytest.raises(RuntimeError):
        try:
            SequentialRunner().run(pipeline, catalog, manager, run_id="run-9")
        except RuntimeError as error:
            manager.hook.on_pipeline_error(
                error=error, run_params=params, pipeline=pipeline, catalog=catalog
            )
            raise

    assert [body["title"] for body in posted] == [
        "stock-pipeline: model retraining requested",
        "stock-pipeline run run-9 failed",
    ]
    assert "hunter2" not in posted[1]["message"] and "writer:***@" in posted[1]["message"]
