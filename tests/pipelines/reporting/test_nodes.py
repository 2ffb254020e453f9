"""Reporting nodes: the parameters each report notebook runs with."""

import pandas as pd

from stock_pipeline.pipelines.reporting.nodes import (
    build_drift_report,
    build_quality_report,
)

PARAMS = {
    "tickers": None,
    "start": "2024-01-01",
    "end": None,
    "max_charts": 20,
    "drift": {"as_of": None, "features": None, "max_charts": 12},
}
DRIFT = {"alpha": 0.05, "transforms": {"rsi_14": "diff"}}
RUN_CONTEXT = {
    "run_id": "2024-06-03T10.00.00.000Z",
    "started_at": "2024-06-03T10:00:00+00:00",
    "env": "sample",
}


def _drift_results(rows: list[tuple[str, str]]) -> pd.DataFrame:
    """drift_results rows with the given (as_of, run_id) pairs."""
    return pd.DataFrame(
        [
            {
                "as_of": pd.Timestamp(as_of),
                "ticker": "INFY.NS",
                "feature": "rsi_14",
                "method": "calibrated",
                "p_value": 0.5,
                "drift": False,
                "run_id": run,
            }
            for as_of, run in rows
        ]
    )


def test_quality_parameters_name_every_reported_ticker_when_none_is_configured():
    report = {"tickers": {"TCS.NS": {}, "INFY.NS": {}}}

    clean, quarantine = pd.DataFrame({"ticker": ["TCS.NS"]}), pd.DataFrame()
    built = build_quality_report(report, clean, quarantine, PARAMS, RUN_CONTEXT)

    assert built["inputs"] == {
        "quality_report": report,
        "clean_prices": clean,
        "quarantine": quarantine,
    }
    assert built["parameters"] == {
        "env": "sample",
        "run_id": "2024-06-03T10.00.00.000Z",
        "tickers": ["INFY.NS", "TCS.NS"],
        "start": "2024-01-01",
        "end": None,
        "max_charts": 20,
    }


def test_quality_parameters_keep_the_configured_tickers():
    params = {**PARAMS, "tickers": ["TCS.NS"]}

    built = build_quality_report(
        {"tickers": {}}, pd.DataFrame(), pd.DataFrame(), params, RUN_CONTEXT
    )

    assert built["parameters"]["tickers"] == ["TCS.NS"]


def test_drift_report_shows_the_as_of_of_the_latest_drift_run():
    results = _drift_results(
        [("2024-06-03", "2024-06-03T10.00.00.000Z"), ("2020-03-17", "2024-06-04T09.00.00.000Z")]
    )

    built = build_drift_report(results, pd.DataFrame(), {}, PARAMS, DRIFT, RUN_CONTEXT)

    assert built["parameters"] == {
        "env": "sample",
        "as_of": "2020-03-17",
        "tickers": None,
        "features": None,
        "max_charts": 12,
        "alpha": 0.05,
        "transforms": {"rsi_14": "diff"},
    }
    assert list(built["inputs"]) == ["drift_results", "recommendations", "drift_windows"]


def test_a_configured_as_of_wins_and_no_results_give_none():
    params = {**PARAMS, "drift": {"as_of": "2024-05-02", "features": ["rsi_14"], "max_charts": 1}}

    configured = build_drift_report(
        _drift_results([("2024-06-03", "r")]), pd.DataFrame(), {}, params, DRIFT, RUN_CONTEXT
    )
    empty = build_drift_report(_drift_results([]), pd.DataFrame(), {}, PARAMS, DRIFT, RUN_CONTEXT)

    shown = configured["parameters"]
    assert (shown["as_of"], shown["features"]) == ("2024-05-02", ["rsi_14"])
    assert empty["parameters"]["as_of"] is None
