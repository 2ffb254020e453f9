"""The reporting pipeline on an in-memory catalog: it reads what cleaning and drift wrote."""

import pandas as pd
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from stock_pipeline.pipelines.reporting import create_pipeline


def test_the_pipeline_hands_each_report_dataset_its_inputs_and_parameters():
    pipeline = create_pipeline()
    catalog = DataCatalog(
        {
            "quality_report": MemoryDataset({"tickers": {"INFY.NS": {}}}),
            "clean_prices": MemoryDataset(pd.DataFrame({"ticker": ["INFY.NS"]})),
            "quarantine": MemoryDataset(pd.DataFrame({"ticker": []})),
            "drift_results": MemoryDataset(
                pd.DataFrame(
                    {
                        "as_of": [pd.Timestamp("2024-06-03")],
                        "ticker": ["INFY.NS"],
                        "feature": ["rsi_14"],
                        "method": ["calibrated"],
                        "p_value": [0.5],
                        "drift": [False],
                        "run_id": ["run-1"],
                    }
                )
            ),
            "params:reporting": MemoryDataset(
                {
                    "tickers": None,
                    "start": None,
                    "end": None,
                    "max_charts": 5,
                    "drift": {"as_of": None, "features": None, "max_charts": 12},
                }
            ),
            "features": MemoryDataset(pd.DataFrame({"ticker": [], "date": []})),
            "drift_baseline": MemoryDataset({}),
            "params:drift": MemoryDataset({"alpha": 0.05}),
            "run_context": MemoryDataset(
                {"run_id": "run-2", "started_at": "2024-06-03T10:00:00+00:00", "env": "sample"}
            ),
            "training_metrics": MemoryDataset({"model_version": 3}),
            "training_oos_ic": MemoryDataset(pd.DataFrame({"date": [], "model": []})),
            "model_summary": MemoryDataset({"champion": None}),
            "quality_report_html": MemoryDataset(),
            "drift_report_html": MemoryDataset(),
            "model_report_html": MemoryDataset(),
        }
    )

    SequentialRunner().run(pipeline, catalog)

    assert pipeline.inputs() == {
        "quality_report",
        "clean_prices",
        "quarantine",
        "drift_results",
        "features",
        "drift_baseline",
        "params:drift",
        "training_metrics",
        "training_oos_ic",
        "model_summary",
        "params:reporting",
        "run_context",
    }
    quality = catalog.load("quality_report_html")
    assert quality["parameters"]["tickers"] == ["INFY.NS"]
    assert quality["parameters"]["run_id"] == "run-2"
    assert list(quality["inputs"]) == ["quality_report", "clean_prices", "quarantine"]
    assert catalog.load("drift_report_html")["parameters"]["as_of"] == "2024-06-03"
    assert catalog.load("model_report_html")["parameters"] == {
        "env": "sample",
        "run_id": "run-2",
        "model_version": 3,
    }
