"""Alerts for the people who run the pipeline from cron: a failed run, stale data, drift alerts and
a retrain request, sent with apprise (webhook, Slack, email and 100 more) to the targets in
conf/local/notifications.yml. A notifier that fails is logged and never fails the run."""

import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)

EVENTS = ("run_failed", "stale_data", "drift_alerts", "retrain_requested")
MAX_LISTED = 20  # tickers named in one message before "and N more"


@dataclass(frozen=True)
class Alert:
    """One message: which event, a title and a body."""

    event: str
    title: str
    body: str


def _listed(items: list[str]) -> str:
    """Items joined by commas, at most MAX_LISTED of them."""
    more = len(items) - MAX_LISTED
    return ", ".join(items[:MAX_LISTED]) + (f" and {more} more" if more > 0 else "")


def run_failed(run_id: str, pipeline: str, error: str) -> Alert:
    """The alert for a run that failed."""
    return Alert("run_failed", f"stock-pipeline run {run_id} failed", f"{pipeline}: {error}")


def alert_for_saved(dataset_name: str, data: Any, run_id: str) -> Alert | None:
    """The alert a saved dataset calls for (stale tickers, drift alerts, a retrain request)."""
    name = dataset_name.rsplit(".", 1)[-1]  # intraday.quality_report too
    if name == "quality_report" and isinstance(data, dict):
        stale = list((data.get("summary") or {}).get("tickers_stale") or [])
        if stale:
            return Alert(
                "stale_data",
                f"stock-pipeline: {len(stale)} tickers have stale data ({dataset_name})",
                f"Run {run_id}: no bars for the last closed NSE session from {_listed(stale)}.",
            )
    if name == "model_health_alerts" and isinstance(data, pd.DataFrame) and len(data):
        kinds = data["kind"] if "kind" in data else pd.Series(None, index=data.index)
        pairs = sorted(
            f"{ticker} {feature}" + (f" ({kind})" if isinstance(kind, str) else "")
            for ticker, feature, kind in zip(data["ticker"], data["feature"], kinds, strict=True)
        )
        return Alert(
            "drift_alerts",
            f"stock-pipeline: drift in {data['ticker'].nunique()} tickers",
            f"Run {run_id}: {len(data)} drift alerts: {_listed(pairs)}.",
        )
    if name == "retrain_request" and isinstance(data, dict) and data.get("requested"):
        tickers = list(data.get("tickers") or [])
        return Alert(
            "retrain_requested",
            "stock-pipeline: model retraining requested",
            f"Run {run_id}: {data.get('share_drifted', 0):.0%} of tickers changed regime as of "
            f"{data.get('as_of')} (threshold {data.get('threshold')}): {_listed(tickers)}.",
        )
    return None


class Notifier:
    """Sends alerts for the configured events to the configured apprise targets."""

    def __init__(self, targets: list[str], events: list[str] | None = None):
        unknown = sorted(set(events or []) - set(EVENTS))
        if unknown:
            raise ValueError(f"notifications.events: unknown {unknown}; choose from {EVENTS}")
        self.events = set(events or EVENTS)
        self._apprise = None
        if targets:
            import apprise  # noqa: PLC0415 (apprise loads its 100 plugins: only when configured)

            self._apprise = apprise.Apprise()
            for target in targets:
                if not self._apprise.add(target):
                    logger.warning("notifications: %s is not a valid apprise URL", target[:40])

    def send(self, alert: Alert) -> bool:
        """Deliver the alert if its event is wanted; False (logged) when any target failed."""
        if self._apprise is None or not len(self._apprise) or alert.event not in self.events:
            return False
        try:
            delivered = bool(self._apprise.notify(title=alert.title, body=alert.body))
        except Exception as error:  # a notifier must never fail the run
            logger.warning("notifications: sending %r failed: %s", alert.title, error)
            return False
        if not delivered:
            logger.warning("notifications: %r did not reach every target", alert.title)
        return delivered
