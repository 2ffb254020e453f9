"""The training pipeline's serving files (models.json, predictions.parquet) for the API tests."""

import json
from pathlib import Path

import pandas as pd

from stock_pipeline.api.config import load_config


def model_entry(version: int, train_end: str) -> dict:
    """One model version as the training pipeline's summarize_models node writes it."""
    return {
        "version": version,
        "run_id": f"mlflow-run-{version}",
        "trained_at": "2026-04-30T18:00:00+00:00",
        "data_version": "3",
        "train_end": train_end,
        "horizon": 1,
        "target": "rank",
        "features": ["daily_return", "rsi_14"],
        "metrics": {"oos_rank_ic": 0.03, "oos_rank_ic_tstat": 2.1, "ridge.oos_rank_ic": 0.01},
    }


def write_training_outputs(root: Path, features: pd.DataFrame, tickers: tuple[str, ...]) -> None:
    """A champion (version 2) and a challenger (version 3), and the champion's scores of `tickers`."""
    rows = features[features["ticker"].isin(tickers)][["ticker", "date"]].reset_index(drop=True)
    rows["score"] = (rows.index % 7 - 3) / 100.0
    rows["rank_pct"] = rows.groupby("date")["score"].rank(pct=True)
    rows["model_version"] = 2
    train_end = rows["date"].sort_values().iloc[-5]
    rows["in_sample"] = rows["date"] <= train_end
    files = load_config(root).files  # where the project's catalog puts them
    files["model_predictions"].parent.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(files["model_predictions"], index=False)
    summary = {
        "model_name": "stock-pipeline-ranker",
        "generated_by_run": "run-2",
        "champion": model_entry(2, train_end.date().isoformat()),
        "challenger": model_entry(3, train_end.date().isoformat()),
    }
    files["model_summary"].write_text(json.dumps(summary))
