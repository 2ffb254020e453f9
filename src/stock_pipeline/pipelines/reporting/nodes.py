"""Reporting nodes: each builds the parameters a report notebook runs with."""

from typing import Any

import pandas as pd


def build_quality_report_parameters_node(
    quality_report: dict[str, Any], params: dict[str, Any], run_context: dict[str, Any]
) -> dict[str, Any]:
    """Parameters of notebooks/quality_report.ipynb: the run, its tickers and date range."""
    return {
        "env": run_context["env"],
        "run_id": run_context["run_id"],
        "tickers": params["tickers"] or sorted(quality_report["tickers"]),
        "start": params["start"],
        "end": params["end"],
        "max_charts": params["max_charts"],
    }


def build_drift_report_parameters_node(
    drift_results: pd.DataFrame, params: dict[str, Any], run_context: dict[str, Any]
) -> dict[str, Any]:
    """Parameters of notebooks/drift_report.ipynb: the as_of to show, its tickers and features."""
    as_of = params["drift"]["as_of"] or _latest_run_as_of(drift_results)
    return {
        "env": run_context["env"],
        "as_of": as_of,
        "tickers": params["tickers"],
        "features": params["drift"]["features"],
    }


def _latest_run_as_of(drift_results: pd.DataFrame) -> str | None:
    """The as_of (YYYY-MM-DD) that the most recent drift run computed; None when there are no results."""
    if drift_results.empty:
        return None
    latest = drift_results.loc[drift_results["run_id"] == drift_results["run_id"].max(), "as_of"]
    return pd.Timestamp(latest.max()).date().isoformat()


def build_model_report_parameters(
    training_metrics: dict[str, Any], run_context: dict[str, Any]
) -> dict[str, Any]:
    """Parameters of notebooks/model_report.ipynb: the run and the model version it reports on."""
    return {
        "env": run_context["env"],
        "run_id": run_context["run_id"],
        "model_version": (training_metrics or {}).get("model_version"),
    }
