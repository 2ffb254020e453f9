"""Reporting nodes: each hands a report notebook the datasets it reads and its parameters."""

from typing import Any

import pandas as pd


def build_quality_report(
    quality_report: dict[str, Any],
    clean_prices: pd.DataFrame,
    quarantine: pd.DataFrame,
    params: dict[str, Any],
    run_context: dict[str, Any],
) -> dict[str, Any]:
    """notebooks/quality_report.ipynb's inputs, and its parameters: the run, tickers, date range."""
    parameters = {
        "env": run_context["env"],
        "run_id": run_context["run_id"],
        "tickers": params["tickers"] or sorted(quality_report["tickers"]),
        "start": params["start"],
        "end": params["end"],
        "max_charts": params["max_charts"],
    }
    inputs = {
        "quality_report": quality_report,
        "clean_prices": clean_prices,
        "quarantine": quarantine,
    }
    return {"parameters": parameters, "inputs": inputs}


def build_drift_report_parameters(
    drift_results: pd.DataFrame, params: dict[str, Any], run_context: dict[str, Any]
) -> dict[str, Any]:
    """Parameters of notebooks/drift_report.ipynb: the as_of to show, its tickers and features."""
    as_of = params["drift"]["as_of"] or _latest_run_as_of(drift_results)
    parameters = {
        "env": run_context["env"],
        "as_of": as_of,
        "tickers": params["tickers"],
        "features": params["drift"]["features"],
    }
    return {"parameters": parameters}


def _latest_run_as_of(drift_results: pd.DataFrame) -> str | None:
    """The as_of (YYYY-MM-DD) that the most recent drift run computed; None when there are no results."""
    if drift_results.empty:
        return None
    latest = drift_results.loc[drift_results["run_id"] == drift_results["run_id"].max(), "as_of"]
    return pd.Timestamp(latest.max()).date().isoformat()


def build_model_report(
    training_metrics: dict[str, Any],
    training_oos_ic: pd.DataFrame | dict,
    model_summary: dict[str, Any],
    drift_results: pd.DataFrame,
    run_context: dict[str, Any],
) -> dict[str, Any]:
    """notebooks/model_report.ipynb's inputs, and its parameters: the run and the model version."""
    parameters = {
        "env": run_context["env"],
        "run_id": run_context["run_id"],
        "model_version": (training_metrics or {}).get("model_version"),
    }
    inputs = {
        "training_metrics": training_metrics,
        "training_oos_ic": training_oos_ic,
        "model_summary": model_summary,
        "drift_results": drift_results,
    }
    return {"parameters": parameters, "inputs": inputs}
