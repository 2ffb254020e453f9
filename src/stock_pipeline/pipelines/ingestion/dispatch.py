"""Where ingestion's fetches run: threads of this process, or threads of every dask worker.

Either way every request to the source waits for one rate limit (`ingestion.rate_limit`): an
in-process `LocalLimiter` with `compute.engine: local`, a `ClusterLimiter` kept on the scheduler
with `compute.engine: dask`, where tickers go to the workers in chunks (tasks) and each task
fetches its chunk with `ingestion.max_workers` threads. Outcomes come back to the caller, which
writes the files, so both engines store the same bronze.
"""

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from stock_pipeline.contract import TickerStatus
from stock_pipeline.engine import map_buckets
from stock_pipeline.progress import run_concurrently
from stock_pipeline.rate_limit import (
    NO_LIMIT,
    ClusterLimiter,
    LocalLimiter,
    RateLimiter,
    RateSettings,
)
from stock_pipeline.sources import PriceSource

logger = logging.getLogger(__name__)

Loader = Callable[[], pd.DataFrame]
Ingest = Callable[
    [str, Loader | None, PriceSource], Any
]  # (ticker, stored bars, source) -> outcome
SourceFactory = Callable[[RateLimiter], PriceSource]
CHUNK_ROUNDS = 4  # a task holds this many rounds of its threads' tickers: balance vs. overhead


def _failed(outcome: Any) -> bool:
    """True for a ticker that could not be ingested."""
    return outcome.status == TickerStatus.FAILED


def _fetch_all(
    ingest: Ingest,
    tickers: list[str],
    loaders: dict[str, Loader],
    source: PriceSource,
    max_workers: int,
) -> Iterator[tuple[str, Any]]:
    """(ticker, outcome) for each ticker, `max_workers` at a time in this process's threads."""
    return run_concurrently(
        lambda ticker: ingest(ticker, loaders.get(ticker), source),
        tickers,
        max_workers,
        failed=_failed,
        description="ingesting",
    )


def ingest_chunk(
    ingest: Ingest,
    tickers: list[str],
    loaders: dict[str, Loader],
    make_source: SourceFactory,
    settings: RateSettings | None,
    max_workers: int,
) -> list[tuple[str, Any]]:
    """A dask task: one chunk of tickers, each request under the cluster's one rate limit."""
    from distributed import get_client  # noqa: PLC0415  (a worker has it)

    limiter = ClusterLimiter(settings, get_client()) if settings else NO_LIMIT
    return list(_fetch_all(ingest, tickers, loaders, make_source(limiter), max_workers))


def ingest_tickers(
    ingest: Ingest,
    tickers: list[str],
    loaders: dict[str, Loader],
    make_source: SourceFactory,
    params: dict[str, Any],
    compute: dict[str, Any] | None,
) -> Iterator[tuple[str, Any]]:
    """(ticker, ingest(ticker, its stored loader, a source)) for every ticker, as each finishes.

    Local: one source in this process. Dask: chunks of `4 x max_workers` tickers as tasks, each
    building its own source on its worker (`make_source` and the loaders travel with the task).
    """
    settings = RateSettings.from_params(params.get("rate_limit"))
    max_workers = params["max_workers"]
    compute = compute or {}
    if compute.get("engine", "local") == "local":
        limiter = LocalLimiter(settings) if settings else NO_LIMIT
        yield from _fetch_all(ingest, tickers, loaders, make_source(limiter), max_workers)
        return
    # dask (map_buckets refuses any other engine)
    size = CHUNK_ROUNDS * max(1, max_workers)
    chunks = {
        f"{start // size:05d}": tickers[start : start + size]
        for start in range(0, len(tickers), size)
    }
    work = {
        chunk: (
            ingest,
            names,
            {ticker: loaders[ticker] for ticker in names if ticker in loaders},
            make_source,
            settings,
            max_workers,
        )
        for chunk, names in chunks.items()
    }
    done, failures = 0, 0
    for _, outcomes in map_buckets(ingest_chunk, work, compute):
        done += len(outcomes)
        failures += sum(_failed(outcome) for _, outcome in outcomes)
        logger.info(
            "ingesting on the cluster: %d/%d tickers, %d failed", done, len(tickers), failures
        )
        yield from outcomes
