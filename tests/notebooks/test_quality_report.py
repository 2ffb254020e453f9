"""notebooks/quality_report.ipynb, executed with Papermill through the quality_report_html dataset."""

from collections.abc import Callable

import pandas as pd
from kedro.io import DataCatalog

from stock_pipeline.pipelines.reporting.nodes import build_quality_report


def test_the_report_charts_prices_completeness_and_quarantine_rules(
    report_project: Callable[[], DataCatalog],
    clean_prices: pd.DataFrame,
    quarantine: pd.DataFrame,
    quality_report_of: Callable[[pd.DataFrame, pd.DataFrame], dict],
):
    catalog = report_project()
    catalog.save("clean_prices", clean_prices)
    catalog.save("quarantine", quarantine)
    catalog.save("quality_report", quality_report_of(clean_prices, quarantine))

    report = build_quality_report(
        catalog.load("quality_report"),
        clean_prices,
        quarantine,
        {"tickers": None, "start": "2024-01-03", "end": None, "max_charts": 20},
        {"env": None, "run_id": "this-run"},
    )
    catalog.save("quality_report_html", report)

    html = catalog.load("quality_report_html")
    assert html.count("<img") == 4  # two price charts, the completeness heatmap, rules
    assert "INFY.NS" in html and "TCS.NS" in html
    assert "ohlc_consistency" in html and "unparsable_value" in html
    assert "rendered by run <code>this-run</code>" in html


def test_the_report_renders_when_nothing_was_quarantined(
    report_project: Callable[[], DataCatalog],
    clean_prices: pd.DataFrame,
    quarantine: pd.DataFrame,
    quality_report_of: Callable[[pd.DataFrame, pd.DataFrame], dict],
):
    catalog = report_project()
    nothing = quarantine.iloc[0:0]
    catalog.save("clean_prices", clean_prices)
    catalog.save("quarantine", nothing)
    catalog.save("quality_report", quality_report_of(clean_prices, nothing))

    # opened by hand: parameters only, the notebook reads the catalog itself
    catalog.save(
        "quality_report_html",
        {
            "parameters": {
                "env": None,
                "run_id": "this-run",
                "tickers": ["TCS.NS"],
                "start": None,
                "end": None,
                "max_charts": 20,
            }
        },
    )

    html = catalog.load("quality_report_html")
    assert "No rows were quarantined for these tickers and dates." in html
    assert html.count("<img") == 2  # the price chart and the completeness heatmap
