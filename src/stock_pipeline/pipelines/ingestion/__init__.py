"""Ingestion: fetch OHLCV per ticker, incrementally, into the bronze layer."""

from stock_pipeline.pipelines.ingestion.pipeline import create_pipeline

__all__ = ["create_pipeline"]
