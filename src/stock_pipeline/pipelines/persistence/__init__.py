"""Persistence: upsert the feature dataset into the SQL table `stock_features`."""

from stock_pipeline.pipelines.persistence.pipeline import create_pipeline

__all__ = ["create_pipeline"]
