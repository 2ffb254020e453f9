"""Where ingestion's fetches run: threads of this process, the local worker processes, or threads
of every dask worker.

Every request to Yahoo waits for one rate limit (`ingestion.rate_limit`): an in-process
`LocalLimiter` with `compute.engine: local`, where Yahoo's tickers are fetched by
`ingestion.max_workers` threads of this process (they mostly wait on the network), or a
`ClusterLimiter` kept on the scheduler with `compute.engine: dask`, where tickers go to the workers
in chunks (tasks) and each task fetches its chunk with `ingestion.max_workers` threads. A source
that sends no request (csv, synthetic) is pure CPU work: on the local engine its chunks go to the
worker processes, one ticker at a time each, on every core. Outcomes come back to the caller,
which writes the files, so every engine stores the same bronze.
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
LOCAL_CHUNK = 50  # tickers per task on the local worker processes: balance vs. overhead


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
    """A task: one chunk of tickers, each request under the cluster's one rate limit (dask), or
    one ticker after the other (a local worker process: `max_workers` 1, no request to limit)."""
    limiter = NO_LIMIT
    if settings:
        from distributed import get_client  # noqa: PLC0415  (a dask worker has it)

        limiter = ClusterLimiter(settings, get_client())
    source = make_source(limiter)
    if max_workers == 1:
        return [(ticker, ingest(ticker, loaders.get(ticker), source)) for ticker in tickers]
    return list(_fetch_all(ingest, tickers, loaders, source, max_workers))


def ingest_tickers(
    ingest: Ingest,
    tickers: list[str],
    loaders: dict[str, Loader],
    make_source: SourceFactory,
    params: dict[str, Any],
    compute: dict[str, Any] | None,
    sends_requests: bool = True,
) -> Iterator[tuple[str, Any]]:
    """(ticker, ingest(ticker, its stored loader, a source)) for every ticker, as each finishes.

    Local, a source that `sends_requests`: one source in this process, its threads. Otherwise
    chunks of tickers as tasks (dask: `4 x max_workers` tickers each), each building its own
    source where it runs (`make_source` and the loaders travel with the task).
    """
    settings = RateSettings.from_params(params.get("rate_limit"))
    max_workers = params["max_workers"]
    compute = compute or {}
    local = compute.get("engine", "local") == "local"
    if local and sends_requests:
        limiter = LocalLimiter(settings) if settings else NO_LIMIT
        yield from _fetch_all(ingest, tickers, loaders, make_source(limiter), max_workers)
        return
    if local:  # the worker processes, one ticker at a time each: no request to wait for
        settings, max_workers, size = None, 1, LOCAL_CHUNK
    else:  # dask (map_buckets refuses any other engine)
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
            "ingesting on %s: %d/%d tickers, %d failed",
            "the local workers" if local else "the cluster",
            done,
            len(tickers),
            failures,
        )
        yield from outcomes
