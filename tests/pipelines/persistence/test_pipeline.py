"""The persistence node, and the pipeline run with SequentialRunner on an in-memory catalog."""

import json

import pandas as pd
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from sqlalchemy import create_engine, text

from stock_pipeline.datasets import SQLUpsertDataset
from stock_pipeline.db import add_feature_columns, upgrade_database
from stock_pipeline.pipelines.persistence import create_pipeline
from stock_pipeline.pipelines.persistence.nodes import select_stock_features


def make_features() -> pd.DataFrame:
    """Three sessions of two tickers with every contract column and one extra indicator."""
    dates = pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"])
    frame = pd.DataFrame({"ticker": ["AAA.NS"] * 3 + ["BBB.NS"] * 3, "date": list(dates) * 2})
    return frame.assign(
        open=10.0,
        high=12.0,
        low=9.0,
        close=11.0,
        adj_close=11.0,
        volume=1000,
        daily_return=0.01,
        sma_20=10.5,
        sma_50=10.2,
        rsi_14=55.0,
        macd=0.1,
        macd_signal=0.05,
        macd_hist=0.05,
        volatility=0.02,
        atr_14=1.5,
    )


def test_select_keeps_every_row_without_lookback():
    features = make_features()
    pd.testing.assert_frame_equal(
        select_stock_features(features, {"lookback_days": None}), features
    )


def test_select_keeps_the_last_lookback_days():
    selected = select_stock_features(make_features(), {"lookback_days": 1})
    assert selected["date"].unique().tolist() == [pd.Timestamp("2024-01-03")]
    assert len(selected) == 2


def test_pipeline_upserts_features_and_reports(tmp_path):
    url = f"sqlite:///{tmp_path / 'stock.db'}"
    report = tmp_path / "persistence_report.json"
    upgrade_database(url)
    add_feature_columns(url, ["atr_14"])  # as the run's hook does for a configured indicator

    def run() -> dict:
        catalog = DataCatalog(
            {
                "features": MemoryDataset(make_features()),
                "params:persistence": MemoryDataset({"lookback_days": None}),
                "stock_features_sql": SQLUpsertDataset(
                    table="stock_features",
                    keys=["ticker", "date"],
                    url=url,
                    report_filepath=str(report),
                ),
            }
        )
        SequentialRunner().run(create_pipeline(), catalog)
        return json.loads(report.read_text())

    first, second = run(), run()

    engine = create_engine(url)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT count(*) FROM stock_features")).scalar_one()
    engine.dispose()
    assert stored == 6
    assert first["inserted"] == 6
    assert (second["inserted"], second["updated"], second["unchanged"]) == (0, 0, 6)
