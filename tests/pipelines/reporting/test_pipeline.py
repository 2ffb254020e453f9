"""The reporting pipeline on an in-memory catalog: it reads what cleaning and drift wrote."""

import pandas as pd
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from stock_pipeline.pipelines.reporting import create_pipeline


def test_the_pipeline_hands_each_report_dataset_its_notebook_parameters():
    pipeline = create_pipeline()
    catalog = DataCatalog(
        {
            "quality_report": MemoryDataset({"tickers": {"INFY.NS": {}}}),
            "drift_results": MemoryDataset(
                pd.DataFrame({"as_of": [pd.Timestamp("2024-06-03")], "run_id": ["run-1"]})
            ),
            "params:reporting": MemoryDataset(
                {
                    "tickers": None,
                    "start": None,
                    "end": None,
                    "max_charts": 5,
                    "drift": {"as_of": None, "features": None},
                }
            ),
            "run_context": MemoryDataset(
                {"run_id": "run-2", "started_at": "2024-06-03T10:00:00+00:00", "env": "sample"}
            ),
            "training_metrics": MemoryDataset({"model_version": 3}),
            "quality_report_html": MemoryDataset(),
            "drift_report_html": MemoryDataset(),
            "model_report_html": MemoryDataset(),
        }
    )

    SequentialRunner().run(pipeline, catalog)

    assert pipeline.inputs() == {
        "quality_report",
        "drift_results",
        "training_metrics",
        "params:reporting",
        "run_context",
    }
    assert catalog.load("quality_report_html")["tickers"] == ["INFY.NS"]
    assert catalog.load("quality_report_html")["run_id"] == "run-2"
    assert catalog.load("drift_report_html")["as_of"] == "2024-06-03"
    assert catalog.load("model_report_html") == {
        "env": "sample",
        "run_id": "run-2",
        "model_version": 3,
    }
