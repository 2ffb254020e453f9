"""Persistence node: the feature rows to upsert into `stock_features`."""

import logging
from typing import Any

import pandas as pd

from stock_pipeline.recipes import Recipe, mirror_recipe

logger = logging.getLogger(__name__)


def select_stock_features(
    features: pd.DataFrame, stored_recipe: Recipe | None, params: dict[str, Any]
) -> pd.DataFrame:
    """Feature rows of the last `lookback_days` calendar days (all rows when null) to upsert,
    carrying the SQL recipe (gold's, `mirror_recipe`) in `attrs`; every row when it differs from
    the table's `stored_recipe`, so that a changed gold reaches every stored row."""
    gold = Recipe.from_json(features.attrs.get("recipe"))
    recipe = mirror_recipe(gold, "sql") if gold is not None else None
    change = recipe.changes_from(stored_recipe) if recipe is not None else None
    lookback_days = params.get("lookback_days")
    if change:
        logger.info("SQL recipe changed (%s): upserting all %d feature rows", change, len(features))
    if change or lookback_days is None or features.empty:
        rows = features
    else:
        start = features["date"].max() - pd.Timedelta(days=lookback_days)
        rows = features[features["date"] > start].reset_index(drop=True)
    rows.attrs["recipe"] = recipe and recipe.to_json()
    return rows
