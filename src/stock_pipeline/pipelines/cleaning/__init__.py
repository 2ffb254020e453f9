"""Cleaning: validate, repair what can be repaired, quarantine what cannot (silver)."""

from stock_pipeline.pipelines.cleaning.pipeline import create_pipeline

__all__ = ["create_pipeline"]
