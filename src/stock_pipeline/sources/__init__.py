"""Where prices come from: Yahoo Finance (yfinance), a folder of CSV files, or a seeded synthetic market."""

from typing import Any

from stock_pipeline.rate_limit import NO_LIMIT, RateLimiter
from stock_pipeline.sources.base import NoDataError, PriceSource, SourceError
from stock_pipeline.sources.csv_source import CSVSource
from stock_pipeline.sources.synthetic_source import SyntheticSource

SOURCES = ("yfinance", "csv", "synthetic")


def build_source(ingestion_params: dict[str, Any], limiter: RateLimiter = NO_LIMIT) -> PriceSource:
    """The source named by `ingestion.source`, configured from the same parameters; Yahoo's
    requests wait for `limiter` (the other sources send none)."""
    name = ingestion_params["source"]
    if name == "csv":
        return CSVSource(ingestion_params["csv_dir"], ingestion_params.get("interval", "1d"))
    if name == "synthetic":
        return SyntheticSource(
            ingestion_params.get("seed", 42), ingestion_params.get("interval", "1d")
        )
    if name == "yfinance":
        from stock_pipeline.sources.yfinance_source import YFinanceSource  # noqa: PLC0415

        return YFinanceSource.from_params(ingestion_params, limiter=limiter)
    raise ValueError(f"ingestion.source must be one of {SOURCES}, got {name!r}")


__all__ = [
    "SOURCES",
    "CSVSource",
    "NoDataError",
    "PriceSource",
    "SourceError",
    "SyntheticSource",
    "build_source",
]
