"""Persistence node: the feature rows to upsert into `stock_features`."""

from typing import Any

import pandas as pd


def select_stock_features(features: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Feature rows of the last `lookback_days` calendar days (all rows when null) to upsert."""
    lookback_days = params.get("lookback_days")
    if lookback_days is None or features.empty:
        return features
    start = features["date"].max() - pd.Timedelta(days=lookback_days)
    return features[features["date"] > start].reset_index(drop=True)
