"""Where per-bucket work runs: this process on both cores (`local`) or a dask.distributed cluster.

`compute.engine: local | dask`; with `dask`, `compute.dask.address` names a running scheduler
(`tcp://host:8786`, a Kubernetes or SSH cluster's, a managed service's), and none starts a
LocalCluster. The same functions run either way, so both give identical results.
"""

import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

logger = logging.getLogger(__name__)

_clients: dict[str | None, Any] = {}


def _client(address: str | None) -> Any:
    """A dask.distributed client of the configured cluster (one per process and address)."""
    if address not in _clients:
        from distributed import Client, LocalCluster  # noqa: PLC0415  (only when configured)

        client = Client(address) if address else Client(LocalCluster(processes=True))
        client.forward_logging("stock_pipeline", level=logging.WARNING)  # workers' warnings here
        _clients[address] = client
        logger.info("dask engine: %s", client)
    return _clients[address]


def submit_buckets(
    function: Callable[..., Any], work: dict[str, tuple], compute: dict[str, Any]
) -> dict[str, Callable[[], Any]]:
    """One function per bucket returning function(*arguments): computed when called (local, so
    memory holds one bucket), or started on the cluster at once and fetched when called (dask)."""
    if compute.get("engine", "local") != "dask":
        return {bucket: partial(function, *arguments) for bucket, arguments in work.items()}
    client = _client((compute.get("dask") or {}).get("address"))
    futures = {bucket: client.submit(function, *arguments) for bucket, arguments in work.items()}
    return {bucket: future.result for bucket, future in futures.items()}


def map_buckets(
    function: Callable[..., Any], work: dict[str, tuple], compute: dict[str, Any]
) -> Iterator[tuple[str, Any]]:
    """(bucket, function(*arguments)) for each bucket of `work`, as each finishes."""
    engine = compute.get("engine", "local")
    if engine == "dask":
        from distributed import as_completed  # noqa: PLC0415

        client = _client((compute.get("dask") or {}).get("address"))
        futures = {
            client.submit(
                function, *arguments, key=f"{function.__name__}-{bucket}-{os.getpid()}"
            ): bucket
            for bucket, arguments in work.items()
        }
        for future in as_completed(futures):
            yield futures[future], future.result()
            future.release()
        return
    if engine != "local":
        raise ValueError(f"compute.engine must be local or dask, got {engine!r}")
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = {bucket: pool.submit(function, *arguments) for bucket, arguments in work.items()}
        for bucket, result in results.items():
            yield bucket, result.result()


def close_clients() -> None:
    """Disconnect from every cluster this process used (for a script or test that stops them)."""
    while _clients:
        _clients.popitem()[1].close()
