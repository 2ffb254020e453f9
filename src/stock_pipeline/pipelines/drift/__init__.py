"""Drift: baseline vs current windows per ticker and feature, recommendations and alerts."""

from stock_pipeline.pipelines.drift.pipeline import create_baseline_pipeline, create_pipeline

__all__ = ["create_baseline_pipeline", "create_pipeline"]
