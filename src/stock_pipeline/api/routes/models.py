"""The model loop's serving side: the registry's champion and challenger, and the champion's scores.

Both are files the training pipeline writes (catalog entries model_summary and model_predictions),
cached in memory and reloaded when they change, so no request touches MLflow.
"""

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, HTTPException, Query, Request, status

from stock_pipeline.api.models import ModelsOverview, Predictions, Problem
from stock_pipeline.api.routes.data import ERRORS, End, Start, Ticker
from stock_pipeline.api.services import DataNotReady
from stock_pipeline.api.store import CachedFile, read_json

router = APIRouter(tags=["models"])

NO_MODEL = "no model yet: run `kedro run --pipelines=training`"
MODEL_ERRORS = {**ERRORS, 503: {"model": Problem, "description": "No model has been trained yet"}}


def read_predictions(path: Path) -> dict[str, pd.DataFrame]:
    """The champion's scores by ticker, each newest first."""
    frame = pd.read_parquet(
        path, columns=["ticker", "date", "score", "rank_pct", "in_sample", "model_version"]
    )
    frame["date"] = pd.to_datetime(frame["date"]).dt.tz_localize(None).dt.normalize()
    frame = frame.sort_values(["ticker", "date"], ascending=[True, False], kind="stable")
    return {str(ticker): rows.reset_index(drop=True) for ticker, rows in frame.groupby("ticker")}


class TrainingFiles:
    """The two training outputs the API serves, each cached and reloaded when it changes."""

    def __init__(self, files: dict[str, Path]):
        self.models = CachedFile(files["model_summary"], read_json)
        self.predictions = CachedFile(files["model_predictions"], read_predictions)

    def overview(self) -> dict[str, Any]:
        """models.json, or 503 while no model exists."""
        self.models.refresh()
        models = self.models.get()
        if not models or not models.get("champion"):
            raise DataNotReady(NO_MODEL)
        return models

    def scores(self) -> dict[str, pd.DataFrame]:
        """The champion's scores by ticker, or 503 while there are none."""
        self.predictions.refresh()
        scores = self.predictions.get()
        if scores is None:
            raise DataNotReady(NO_MODEL)
        return scores


def training_files(request: Request) -> TrainingFiles:
    """The app's TrainingFiles, made on first use under the served project root."""
    state = request.app.state
    if getattr(state, "training_files", None) is None:
        state.training_files = TrainingFiles(state.services.config.files)
    return state.training_files


@router.get("/models", response_model=ModelsOverview, responses=MODEL_ERRORS)
def list_models(request: Request) -> dict[str, Any]:
    """The champion and challenger: version, out-of-sample metrics, trained_at, data version."""
    models = training_files(request).overview()
    return {key: models.get(key) for key in ("model_name", "champion", "challenger")}


@router.get(
    "/predictions/{ticker}",
    response_model=Predictions,
    responses={404: {"model": Problem, "description": "Unknown ticker"}, **MODEL_ERRORS},
)
def get_predictions(
    request: Request,
    ticker: Ticker,
    start: Start = None,
    end: End = None,
    limit: Annotated[int, Query(ge=1, le=10000, description="At most this many dates")] = 1000,
) -> dict[str, Any]:
    """The champion's scores for a ticker, newest first: the latest date, or every date in [start, end]."""
    files = training_files(request)
    scores = files.scores()
    models = files.models.get() or {}
    rows = scores.get(ticker)
    if rows is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"unknown ticker: {ticker}")
    dates = rows["date"].to_numpy(dtype="datetime64[D]")
    keep = np.ones(len(rows), dtype=bool)
    if start:
        keep &= dates >= np.datetime64(start, "D")
    if end:
        keep &= dates <= np.datetime64(end, "D")
    chosen = rows[keep].head(limit if start or end else 1)
    champion = models.get("champion") or {}
    version = int(rows["model_version"].iloc[0])
    return {
        "ticker": ticker,
        "model_name": models.get("model_name", ""),
        "model_version": version,
        "horizon": champion.get("horizon") if champion.get("version") == version else None,
        "count": len(chosen),
        "predictions": [
            {
                "date": day.date(),
                "score": float(score),
                "rank_pct": None if np.isnan(rank) else float(rank),
                "in_sample": bool(in_sample),
            }
            for day, score, rank, in_sample in zip(
                chosen["date"],
                chosen["score"],
                chosen["rank_pct"],
                chosen["in_sample"],
                strict=True,
            )
        ],
    }
