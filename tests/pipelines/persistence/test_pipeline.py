"""The persistence node, and the pipeline run with SequentialRunner on an in-memory catalog."""

import json
import logging

import pandas as pd
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from stock_pipeline.datasets import SQLUpsertDataset, TableRecipeDataset
from stock_pipeline.db import upgrade_database
from stock_pipeline.pipelines.persistence import create_pipeline
from stock_pipeline.pipelines.persistence.nodes import select_stock_features
from stock_pipeline.recipes import Recipe, features_recipe, mirror_recipe


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


def gold_recipe(*columns: str) -> str:
    """A gold recipe computing `columns` (as a loaded features frame carries it)."""
    specs = {name: {"talib": name.split("_")[0].upper()} for name in columns}
    return features_recipe({}, specs, None).to_json()


def with_recipe(features: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """The frame as gold loads it: attrs naming the recipe of its indicator columns."""
    features.attrs["recipe"] = gold_recipe(*columns)
    return features


def test_select_keeps_every_row_without_lookback():
    features = make_features()
    pd.testing.assert_frame_equal(
        select_stock_features(features, None, {"lookback_days": None}), features
    )


def test_select_keeps_the_last_lookback_days():
    features = with_recipe(make_features(), "atr_14")
    stored = mirror_recipe(Recipe.from_json(gold_recipe("atr_14")), "sql")
    selected = select_stock_features(features, stored, {"lookback_days": 1})
    assert selected["date"].unique().tolist() == [pd.Timestamp("2024-01-03")]
    assert len(selected) == 2
    assert Recipe.from_json(selected.attrs["recipe"]).layer == "sql"


def test_select_gives_every_row_when_the_recipe_changed(caplog):
    features = with_recipe(make_features(), "atr_14", "cci_14")
    stored = mirror_recipe(Recipe.from_json(gold_recipe("atr_14")), "sql")
    with caplog.at_level(logging.INFO):
        selected = select_stock_features(features, stored, {"lookback_days": 1})
    assert len(selected) == 6
    assert "SQL recipe changed (added cci_14): upserting all 6 feature rows" in caplog.text


def run_persistence(url: str, features: pd.DataFrame, report, lookback_days=None) -> dict:
    """The persistence pipeline on `features`, as the catalog declares its datasets."""
    catalog = DataCatalog(
        {
            "features": MemoryDataset(features, copy_mode="assign"),
            "params:persistence": MemoryDataset({"lookback_days": lookback_days}),
            "stock_features_sql_stored": TableRecipeDataset(table="stock_features", url=url),
            "stock_features_sql": SQLUpsertDataset(
                table="stock_features",
                keys=["ticker", "date"],
                url=url,
                report_filepath=str(report),
                add_columns=True,
            ),
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    return json.loads(report.read_text())


def stored_rows(url: str) -> pd.DataFrame:
    """stock_features as stored."""
    return SQLUpsertDataset(table="stock_features", keys=["ticker", "date"], url=url).load()


def test_pipeline_upserts_features_and_reports(tmp_path):
    url = f"sqlite:///{tmp_path / 'stock.db'}"
    report = tmp_path / "persistence_report.json"
    upgrade_database(url)

    first = run_persistence(url, with_recipe(make_features(), "atr_14"), report)
    second = run_persistence(url, with_recipe(make_features(), "atr_14"), report)

    assert len(stored_rows(url)) == 6
    assert first["inserted"] == 6
    assert (second["inserted"], second["updated"], second["unchanged"]) == (0, 0, 6)


def test_a_new_indicator_fills_its_column_and_a_removed_one_is_emptied(tmp_path):
    url = f"sqlite:///{tmp_path / 'stock.db'}"
    report = tmp_path / "persistence_report.json"
    upgrade_database(url)
    run_persistence(url, with_recipe(make_features(), "atr_14"), report, lookback_days=1)

    added = make_features().drop(columns="atr_14").assign(cci_14=42.0)
    result = run_persistence(url, with_recipe(added, "cci_14"), report, lookback_days=1)

    stored = stored_rows(url)
    assert result["rows"] == 6  # every row despite lookback_days: the recipe changed
    assert stored["cci_14"].eq(42.0).all()
    assert stored["atr_14"].isna().all()
    recipe = TableRecipeDataset(table="stock_features", url=url).load()
    assert recipe.layer == "sql" and "cci_14" in recipe.settings["indicators"]
