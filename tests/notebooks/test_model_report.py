"""notebooks/model_report.ipynb, executed with Papermill through the model_report_html dataset."""

from collections.abc import Callable
from pathlib import Path

import nbformat
import pandas as pd
from kedro.io import DataCatalog

from stock_pipeline.pipelines.reporting.nodes import build_model_report
from stock_pipeline.pipelines.training.nodes import (
    build_model_input,
    fit_model,
    report_training,
    validate_model,
)
from tests.pipelines.training.simulation import project_parameters, simulated_features

RUN_CONTEXT = {"run_id": "run-7", "started_at": "2024-06-03T18:00:00+00:00", "env": "local"}


def training_outputs() -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """metrics.json and the daily OOS ICs of a small simulated market, and its features."""
    features = simulated_features(tickers=12, sessions=420, phi=0.2, seed=4)
    params = project_parameters("training")
    params["model"] = {**params["model"], "n_estimators": 30, "min_child_samples": 40}
    params["validation"] = {**params["validation"], "min_train_dates": 150}
    model_input, version = build_model_input(features, params)
    decision = {
        "train": True,
        "reason": "forced (training.force=true)",
        "forced": True,
        "request": None,
    }
    validation = validate_model(model_input, decision, params)
    registration = {"model_name": "ranker", "version": 4, "promoted": False, "champion_version": 3}
    comparison = {"method": "same_folds", "promote": False, "champion_version": 3, "reason": "kept"}
    metrics, daily = report_training(
        validation,
        fit_model(model_input, decision, params),
        comparison,
        registration,
        decision,
        version,
        params,
        RUN_CONTEXT,
    )
    return metrics, daily, features


def executed(project: Path) -> nbformat.NotebookNode:
    """The executed notebook next to the HTML."""
    return nbformat.read(project / "data/08_reporting/reports/model_report.ipynb", as_version=4)


def test_the_report_shows_folds_ic_over_time_importance_and_drift(
    report_project: Callable[[], DataCatalog],
):
    catalog = report_project()
    metrics, daily, _ = training_outputs()
    catalog.save("training_metrics", metrics)
    catalog.save("training_oos_ic", daily)
    as_of = pd.Timestamp(daily["date"].iloc[-10])
    catalog.save(
        "drift_results",
        pd.DataFrame(
            {
                "as_of": [as_of, as_of],
                "ticker": ["T000.NS", "T001.NS"],
                "feature": ["volatility", "volatility"],
                "method": "calibrated",
                "statistic": [9.0, 1.0],
                "p_value": [0.001, 0.5],
                "alpha": 0.05,
                "baseline_sample_size": 60,
                "current_sample_size": 7,
                "drift": [True, False],
                "run_id": "run-6",
            }
        ),
    )

    report = build_model_report(
        catalog.load("training_metrics"),
        catalog.load("training_oos_ic"),
        {},
        catalog.load("drift_results"),
        {"env": None, "run_id": "run-7"},
    )
    catalog.save("model_report_html", report)

    html = (Path.cwd() / "data/08_reporting/reports/model_report.html").read_text()
    assert "version <strong>4</strong>" in html
    assert "kept as <strong>challenger</strong>" in html
    assert "historical_mean" in html and "ridge" in html
    outputs = [output for cell in executed(Path.cwd()).cells for output in cell.get("outputs", [])]
    images = sum("image/png" in output.get("data", {}) for output in outputs)
    assert images == 3  # folds against baselines, IC over time with drift, feature importance


def test_the_report_says_so_when_no_model_exists(report_project: Callable[[], DataCatalog]):
    catalog = report_project()

    # opened by hand: parameters only, the notebook reads the catalog itself
    catalog.save(
        "model_report_html", {"parameters": {"env": None, "run_id": "run-1", "model_version": None}}
    )

    html = (Path.cwd() / "data/08_reporting/reports/model_report.html").read_text()
    assert "No model trained yet" in html
