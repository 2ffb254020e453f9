"""Training: walk-forward validated model, MLflow registry, champion/challenger, predictions."""

from stock_pipeline.pipelines.training.pipeline import create_pipeline

__all__ = ["create_pipeline"]
