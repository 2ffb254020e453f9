"""Where per-bucket work runs: worker processes on every core of this machine (`local`) or a
dask.distributed cluster.

`compute.engine: local | dask`; with `dask`, `compute.dask.address` names a running scheduler
(`tcp://host:8786`, a Kubernetes or SSH cluster's, a managed service's), and none starts a
LocalCluster. The same functions run either way, so both give identical results.
"""

import logging
import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from functools import partial
from multiprocessing import forkserver
from typing import Any

from stock_pipeline import trading_calendar

logger = logging.getLogger(__name__)

_clients: dict[str | None, Any] = {}
_pools: list[ProcessPoolExecutor] = []  # the local engine's workers, started once per process


def _cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _local_pool(modules: list[str]) -> ProcessPoolExecutor:
    """One worker process per core, started on first use and kept for later stages and runs.

    Processes, not threads: the per-bucket pandas work holds the GIL. They fork from a fresh
    forkserver that imported the main script (`kedro`) and `modules` once, so a worker starts
    without importing anything (a fork of this process would inherit the Delta Lake runtime,
    whose threads do not survive a fork)."""
    if not _pools:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["__main__", *modules])
        _pools.append(ProcessPoolExecutor(max_workers=_cores(), mp_context=context))
    return _pools[0]


def start_local_workers(modules: list[str]) -> None:
    """Start the local workers' forkserver now, importing `modules` in the background, so that a
    stage's first buckets do not wait for it (a run calls this before loading its inputs)."""
    _local_pool(modules)
    forkserver.ensure_running()


def _sendable(function: Callable[..., Any], work: dict[str, tuple]) -> bool:
    """Whether the work can go to another process; what cannot (a function defined inside a test,
    say) runs in this one."""
    try:
        pickle.dumps((function, work))
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True


class _Records(logging.Handler):
    """A worker's log records, made picklable, for the caller to emit as its own."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record with its message formatted and its traceback as text."""
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args, record.exc_info = record.getMessage(), None, None
        self.records.append(record)


def _run_in_worker(
    context: tuple[trading_calendar.Amendments, str, int],
    function: Callable[..., Any],
    *arguments: Any,
) -> tuple[Any, list[logging.LogRecord]]:
    """function(*arguments) in a worker as in the caller: its calendar, folder and log level; the
    result and the log records it wrote."""
    calendar, folder, level = context
    trading_calendar.adopt(calendar)
    if os.getcwd() != folder:
        os.chdir(folder)  # relative paths resolve as in the caller
    root, records = logging.getLogger(), _Records()
    root.setLevel(level)
    root.addHandler(records)
    try:
        return function(*arguments), records.records
    finally:
        root.removeHandler(records)


def _submit_local(
    function: Callable[..., Any], arguments: tuple
) -> Future[tuple[Any, list[logging.LogRecord]]]:
    """function(*arguments) started in a local worker process."""
    level = logging.getLogger(function.__module__).getEffectiveLevel()
    context = (trading_calendar.amendments_in_force(), os.getcwd(), level)
    return _local_pool([function.__module__]).submit(_run_in_worker, context, function, *arguments)


def _local_result(future: Future[tuple[Any, list[logging.LogRecord]]]) -> Any:
    """A local worker's result, after emitting its log records here."""
    result, records = future.result()
    for record in records:
        target = logging.getLogger(record.name)
        if target.isEnabledFor(record.levelno):
            target.handle(record)
    return result


class _Ahead:
    """Buckets computed in the order they are asked for, at most `ahead` past the one being
    fetched: every worker works while memory holds a few buckets' results (the local workers', or
    a cluster's, which would otherwise hold every bucket's result until the caller fetched it)."""

    def __init__(
        self,
        function: Callable[..., Any],
        work: dict[str, tuple],
        submit: Callable[[Callable[..., Any], tuple], Any],
        result: Callable[[Any], Any],
        ahead: int,
    ):
        self._function, self._work = function, work
        self._submit, self._result, self._ahead = submit, result, ahead
        self._order = list(work)
        self._started: dict[str, Any] = {}
        self._next = 0
        self._lock = threading.Lock()  # a table may fetch several buckets at once

    def __deepcopy__(self, memo: dict) -> "_Ahead":
        """Itself: a handle on work under way (a MemoryDataset copies what it is given)."""
        return self

    def fetch(self, bucket: str) -> Any:
        """The bucket's result; starts the following buckets."""
        with self._lock:
            last = self._order.index(bucket) + self._ahead
            while self._next < len(self._order) and self._next <= last:
                name = self._order[self._next]
                self._started[name] = self._submit(self._function, self._work[name])
                self._next += 1
            future = self._started.pop(bucket, None)  # fetched again: computed again
        return self._result(future or self._submit(self._function, self._work[bucket]))


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
    """One function per bucket returning function(*arguments), computed by the local workers or the
    cluster's a few buckets ahead of the one being fetched (so memory holds a few buckets)."""
    if _engine(compute) == "local":
        if not _sendable(function, work):
            return {bucket: partial(function, *arguments) for bucket, arguments in work.items()}
        ahead = _Ahead(function, work, _submit_local, _local_result, _cores())
    else:
        client = _client((compute.get("dask") or {}).get("address"))
        threads = sum(client.nthreads().values()) or 1

        def submit(function: Callable[..., Any], arguments: tuple) -> Any:
            return client.submit(function, *arguments, pure=False)

        ahead = _Ahead(function, work, submit, lambda future: future.result(), threads)
    return {bucket: partial(ahead.fetch, bucket) for bucket in work}


def map_buckets(
    function: Callable[..., Any], work: dict[str, tuple], compute: dict[str, Any]
) -> Iterator[tuple[str, Any]]:
    """(bucket, function(*arguments)) for each bucket of `work`: in the order of `work` on the local
    workers, as each finishes on a cluster."""
    if _engine(compute) == "dask":
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
    if not _sendable(function, work):
        for bucket, arguments in work.items():
            yield bucket, function(*arguments)
        return
    futures = {bucket: _submit_local(function, arguments) for bucket, arguments in work.items()}
    for bucket, future in futures.items():
        yield bucket, _local_result(future)


def _engine(compute: dict[str, Any]) -> str:
    """The configured engine, checked."""
    engine = compute.get("engine", "local")
    if engine not in ("local", "dask"):
        raise ValueError(f"compute.engine must be local or dask, got {engine!r}")
    return engine


def close_clients() -> None:
    """Disconnect from every cluster this process used (for a script or test that stops them)."""
    while _clients:
        _clients.popitem()[1].close()
