"""Reporting nodes: each hands a report notebook the datasets it reads and its parameters."""

from typing import Any

import pandas as pd

from stock_pipeline.pipelines.drift.nodes import (
    FROZEN_PARTITION,
    drift_windows,
    recommend_retraining,
)


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


def build_drift_report(
    drift_results: pd.DataFrame,
    features: pd.DataFrame,
    drift_baseline: dict[str, Any],
    params: dict[str, Any],
    drift_params: dict[str, Any],
    run_context: dict[str, Any],
) -> dict[str, Any]:
    """notebooks/drift_report.ipynb's inputs: every result, and for the as_of shown the drift
    pipeline's own recommendations and the windows its drifted features were tested on."""
    as_of = params["drift"]["as_of"] or _latest_run_as_of(drift_results)
    parameters = {
        "env": run_context["env"],
        "as_of": as_of,
        "tickers": params["tickers"],
        "features": params["drift"]["features"],
        "max_charts": params["drift"]["max_charts"],
        "alpha": drift_params["alpha"],
        "transforms": drift_params.get("transforms", {}),
    }
    shown = _shown_rows(drift_results, as_of, params)
    inputs = {
        "drift_results": drift_results,
        "recommendations": _recommendations(shown),
        "drift_windows": _drifted_windows(shown, features, drift_baseline, params, drift_params),
    }
    return {"parameters": parameters, "inputs": inputs}


def _shown_rows(
    drift_results: pd.DataFrame, as_of: str | None, params: dict[str, Any]
) -> pd.DataFrame:
    """The latest run's rows of the shown as_of, for the configured tickers and features."""
    if as_of is None or drift_results.empty:
        return drift_results.iloc[:0]
    rows = drift_results[pd.to_datetime(drift_results["as_of"]) == pd.Timestamp(as_of)]
    rows = rows[rows["run_id"] == rows["run_id"].max()] if len(rows) else rows
    for column, wanted in (("ticker", params["tickers"]), ("feature", params["drift"]["features"])):
        rows = rows[rows[column].isin(wanted)] if wanted else rows
    return rows


def _recommendations(shown: pd.DataFrame) -> pd.DataFrame:
    """Per ticker, the drift pipeline's recommendation and reason for the rows shown."""
    if shown.empty:
        return pd.DataFrame(columns=["ticker", "recommendation", "reason"])
    recommended = recommend_retraining(shown, {"run_id": shown["run_id"].iloc[0]})["tickers"]
    frame = pd.DataFrame.from_dict(recommended, orient="index").rename_axis("ticker")
    return frame[["recommendation", "reason"]].reset_index()


def _drifted_windows(
    shown: pd.DataFrame,
    features: pd.DataFrame,
    drift_baseline: dict[str, Any],
    params: dict[str, Any],
    drift_params: dict[str, Any],
) -> pd.DataFrame:
    """The baseline and current values the method tested, for the first max_charts drifted features."""
    columns = ["ticker", "date", "value", "window", "feature", "method"]
    if shown.empty:
        return pd.DataFrame(columns=columns)
    drifted = shown[shown["drift"].astype(bool)].sort_values(["ticker", "p_value"])
    frozen = None
    if drift_params.get("baseline") == "frozen" and FROZEN_PARTITION in drift_baseline:
        frozen = drift_baseline[FROZEN_PARTITION]()
    windows = [
        drift_windows(
            features[features["ticker"] == row.ticker],
            row.feature,
            {**drift_params, "as_of": str(pd.Timestamp(row.as_of).date()), "method": row.method},
            frozen=None if frozen is None else frozen[frozen["ticker"] == row.ticker],
        ).assign(feature=row.feature, method=row.method)
        for row in drifted.head(params["drift"]["max_charts"]).itertuples()
    ]
    return pd.concat(windows, ignore_index=True) if windows else pd.DataFrame(columns=columns)


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
