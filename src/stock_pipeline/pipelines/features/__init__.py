"""Features: technical indicators per ticker, consolidated (gold)."""

from stock_pipeline.pipelines.features.pipeline import create_pipeline

__all__ = ["create_pipeline"]
