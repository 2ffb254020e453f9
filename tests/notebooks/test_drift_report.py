"""notebooks/drift_report.ipynb, executed with Papermill through the drift_report_html dataset."""

from collections.abc import Callable
from pathlib import Path

import nbformat
import pandas as pd
from kedro.io import DataCatalog

from stock_pipeline.contract import DRIFT_RESULT_COLUMNS
from stock_pipeline.pipelines.reporting.nodes import build_drift_report

TICKERS = ["INFY.NS", "TCS.NS", "WIPRO.NS", "HCLTECH.NS", "SBIN.NS", "ITC.NS", "LT.NS", "NTPC.NS"]
FEATURES = ["sma_20", "rsi_14", "macd", "volatility", "daily_return"]
REPORTING = {"tickers": None, "drift": {"as_of": None, "features": None, "max_charts": 12}}


def drift_results(as_of: pd.Timestamp, run_id: str, drifted: set[tuple[str, str]]) -> pd.DataFrame:
    """One calibrated run's rows for the sample's 8 tickers: `drifted` (ticker, feature) flagged,
    by the regime signal except TCS.NS's, a shock alone."""
    drivers = {ticker: feature for ticker, feature in sorted(drifted, reverse=True)}
    kinds = {ticker: "shock" if ticker == "TCS.NS" else "regime" for ticker in drivers}
    rows = [
        {
            "as_of": as_of,
            "ticker": ticker,
            "feature": feature,
            "method": "calibrated",
            "statistic": 9.0 if (ticker, feature) in drifted else 1.0,
            "p_value": 0.002 if (ticker, feature) in drifted else 0.4 + 0.01 * number,
            "shock_statistic": 2.0,
            "shock_p_value": 0.2 + 0.01 * number,
            "alpha": 0.05,
            "baseline_sample_size": 60,
            "current_sample_size": 7,
            "drift": (ticker, feature) in drifted,
            "ticker_p_value": 0.004 if ticker in drivers else 0.6,
            "ticker_drift": ticker in drivers,
            "kind": kinds.get(ticker),
            "driver": drivers.get(ticker),
            "run_id": run_id,
        }
        for number, ticker in enumerate(TICKERS)
        for feature in FEATURES
    ]
    return pd.DataFrame(rows, columns=list(DRIFT_RESULT_COLUMNS)).sort_values(["ticker", "feature"])


def executed_images(project: Path) -> int:
    """How many PNG outputs the executed notebook next to the HTML holds."""
    executed = nbformat.read(project / "data/08_reporting/reports/drift_report.ipynb", as_version=4)
    outputs = [output for cell in executed.cells for output in cell.get("outputs", [])]
    return sum("image/png" in output.get("data", {}) for output in outputs)


def test_the_report_charts_p_values_windows_and_history_of_drifted_features(
    report_project: Callable[[], DataCatalog], features: pd.DataFrame
):
    catalog = report_project()
    latest = features["date"].max()
    earlier = drift_results(latest - pd.Timedelta(days=7), "run-0", {("TCS.NS", "macd")})
    results = drift_results(
        latest,
        "run-1",
        {("INFY.NS", "daily_return"), ("INFY.NS", "sma_20"), ("TCS.NS", "volatility")},
    )
    catalog.save("features", features)
    catalog.save("drift_results", earlier)
    catalog.save("drift_results", results)  # appended: two as_of dates
    report = build_drift_report(
        catalog.load("drift_results"),
        features,
        {},
        REPORTING,
        catalog.load("params:drift"),
        {"env": None, "run_id": "run-2"},
    )

    catalog.save("drift_report_html", report)

    html = catalog.load("drift_report_html")
    # the p-value heatmap, three baseline-against-current charts, drifted share, alert timeline
    assert html.count('src="data:image/png;base64') == 6
    assert executed_images(Path.cwd()) == 6
    assert f"Drift as of <strong>{latest.date()}</strong>" in html
    assert "<strong>2 drifted tickers (25% of those tested)</strong>" in html
    assert (
        "drift in 2 of 5 tested features (calibrated): daily_return, sma_20; "
        "a regime change against the baseline" in html
    )
    assert "the regime holds, so watch" in html  # TCS.NS: a shock alone
    assert "shock only (watch)" in html  # the history's kinds
    assert "daily_return (p = 0.002), sma_20 (p = 0.002)" in html  # what drove INFY.NS
    assert all(ticker in html for ticker in TICKERS)


def test_the_report_renders_when_no_ticker_drifted(report_project: Callable[[], DataCatalog]):
    catalog = report_project()
    catalog.save("drift_results", drift_results(pd.Timestamp("2024-06-03"), "run-1", set()))
    # opened by hand: parameters only, the notebook builds its inputs from the catalog
    catalog.save("drift_report_html", {"parameters": {"env": None}})

    html = catalog.load("drift_report_html")
    assert html.count('src="data:image/png;base64') == 1  # the p-value heatmap
    assert executed_images(Path.cwd()) == 1
    assert "No ticker drifted as of 2024-06-03." in html
    assert "no drift in 5 tested features (calibrated)" in html
    assert "No drifted feature to chart." in html
    assert "One <code>as_of</code> so far (2024-06-03)" in html
