"""Intraday: the daily flow at 5m/15m bars into its own bronze folder, files and SQL table."""

from stock_pipeline.pipelines.intraday.pipeline import create_pipeline

__all__ = ["create_pipeline"]
