"""Reporting: run the report notebooks with Papermill and write them as HTML."""

from stock_pipeline.pipelines.reporting.pipeline import create_pipeline

__all__ = ["create_pipeline"]
