"""The HTTP face of stock-pipeline: features, market views and MLOps health over FastAPI."""
