"""One rate limit for the requests a run sends to Yahoo, however many threads and processes send them.

A token bucket in its GCRA form: requests wait in line (a lock) for the next free slot of a
schedule spaced 1 / `requests_per_second` apart, of which `burst` may come at once after a quiet
spell; at most `max_concurrent` requests are in flight. So any time window of W seconds holds at
most `burst + requests_per_second * W` requests. A request takes its slot when it actually goes,
so a thread that wakes late moves the schedule back rather than bunching the requests after it. `LocalLimiter` keeps the schedule in this process
(`compute.engine: local`); `ClusterLimiter` keeps it on the dask scheduler, shared by every
thread of every worker (`compute.engine: dask`). Both have the same interface: `with
limiter.request(): send()`.
"""

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

SHARED_NAME = "stock-pipeline-yahoo"  # the scheduler's lock and semaphore of the limit
NEXT_FREE = f"{SHARED_NAME}-next-free"  # the scheduler metadata key of the shared schedule


@dataclass(frozen=True)
class RateSettings:
    """`ingestion.rate_limit`: requests per second, how many may come at once, how many in flight."""

    requests_per_second: float
    burst: int = 1
    max_concurrent: int | None = None

    def __post_init__(self) -> None:
        if not self.requests_per_second > 0:
            raise ValueError(
                f"ingestion.rate_limit.requests_per_second is {self.requests_per_second!r}: "
                "use a number above 0 (or rate_limit: null for no limit)"
            )
        if not isinstance(self.burst, int) or self.burst < 1:
            raise ValueError(f"ingestion.rate_limit.burst is {self.burst!r}: use an integer >= 1")
        if self.max_concurrent is not None and (
            not isinstance(self.max_concurrent, int) or self.max_concurrent < 1
        ):
            raise ValueError(
                f"ingestion.rate_limit.max_concurrent is {self.max_concurrent!r}: "
                "use an integer >= 1, or null for no bound"
            )

    @classmethod
    def from_params(cls, rate_limit: dict[str, Any] | None) -> "RateSettings | None":
        """The settings of `ingestion.rate_limit`; None when it is null (no limit)."""
        if rate_limit is None:
            return None
        unknown = set(rate_limit) - {"requests_per_second", "burst", "max_concurrent"}
        if unknown:
            raise ValueError(f"ingestion.rate_limit has unknown keys {sorted(unknown)}")
        return cls(**rate_limit)

    @property
    def interval(self) -> float:
        """Seconds between two slots of the schedule."""
        return 1.0 / self.requests_per_second


def earliest_start(next_free: float, settings: RateSettings) -> float:
    """When a request may go (GCRA): up to `burst - 1` intervals ahead of the schedule's next
    free slot, the theoretical arrival time of the next request at the steady rate."""
    return next_free - (settings.burst - 1) * settings.interval


def next_free_after(next_free: float, sent_at: float, settings: RateSettings) -> float:
    """The schedule's next free slot once a request went at `sent_at`: a quiet spell (a slot
    in the past) refills the burst, never more."""
    return max(next_free, sent_at) + settings.interval


class RateLimiter(Protocol):
    """Waits until a request may be sent, and holds its place among those in flight."""

    def request(self) -> AbstractContextManager[None]:
        """Enter before sending a request, leave when its answer is in."""
        ...


class NoLimit:
    """Every request goes at once (`ingestion.rate_limit: null`, and sources that send none)."""

    def request(self) -> AbstractContextManager[None]:
        """Nothing to wait for."""
        return nullcontext()


NO_LIMIT = NoLimit()


class LocalLimiter:
    """The limit for the threads of this process."""

    def __init__(
        self,
        settings: RateSettings,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_free = -math.inf
        self._in_flight = (
            threading.BoundedSemaphore(settings.max_concurrent) if settings.max_concurrent else None
        )

    @contextmanager
    def request(self) -> Iterator[None]:
        """Take a place in flight, then wait in line for the request's slot."""
        with self._in_flight or nullcontext(), self._lock:
            self._sleep(max(0.0, earliest_start(self._next_free, self.settings) - self._clock()))
            self._next_free = next_free_after(self._next_free, self._clock(), self.settings)
        yield


class ClusterLimiter:
    """The limit for every thread of every process of a dask.distributed cluster.

    The schedule's next free slot is scheduler metadata (`Client.get_metadata`), read and moved
    under a `distributed.Lock`; requests in flight are leases of a `distributed.Semaphore`. Slots are
    wall-clock times (`time.time()`), so the workers' clocks must agree (NTP): a skew of d seconds
    lets at most d x requests_per_second extra requests through. Build it in a task (or in a
    process with a client): its objects talk to the scheduler through that process's client, from
    any thread.
    """

    def __init__(self, settings: RateSettings, client: Any):
        from distributed import Lock, Semaphore  # noqa: PLC0415  (only with dask)

        self.settings = settings
        self._client = client
        rpc = {"scheduler_rpc": client.scheduler, "loop": client.loop}
        self._lock = Lock(f"{SHARED_NAME}-schedule", **rpc)
        # the lease count is part of the name: the scheduler refuses one name with two counts
        self._in_flight = (
            Semaphore(settings.max_concurrent, f"{SHARED_NAME}-{settings.max_concurrent}", **rpc)
            if settings.max_concurrent
            else None
        )

    def _wait_for_slot(self) -> None:
        """Wait in line (the lock) for the next slot of the shared schedule, and take it."""
        with self._lock:
            next_free = self._client.get_metadata(NEXT_FREE, None)  # None: the cluster's first
            next_free = -math.inf if next_free is None else next_free
            time.sleep(max(0.0, earliest_start(next_free, self.settings) - time.time()))
            self._client.set_metadata(
                NEXT_FREE, next_free_after(next_free, time.time(), self.settings)
            )

    @contextmanager
    def request(self) -> Iterator[None]:
        """Take a place in flight, then wait in line for the request's slot."""
        with self._in_flight or nullcontext():
            self._wait_for_slot()
            yield
