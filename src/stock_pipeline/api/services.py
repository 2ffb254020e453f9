"""What every request shares: configuration, cached files, the database and the change feed."""

import asyncio
import logging
import math
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status

from stock_pipeline.api.config import ApiConfig
from stock_pipeline.api.database import Database
from stock_pipeline.api.security import (
    API_KEY_HEADER,
    KEY_NAME_STATE,
    RateLimiter,
    api_key_header,
    key_name,
)
from stock_pipeline.api.store import DataStore, FeatureSnapshot

logger = logging.getLogger(__name__)


class DataNotReady(RuntimeError):
    """A file the pipeline writes does not exist yet."""


class ChangeFeed:
    """Wakes every waiter when the feature dataset changes."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        """The event the next change will set."""
        return self._event

    def publish(self) -> None:
        """Wake the waiters of the current event and start a new one."""
        self._event.set()
        self._event = asyncio.Event()


@dataclass
class Services:
    """The app's shared state."""

    config: ApiConfig
    store: DataStore
    db: Database
    limiter: RateLimiter
    changes: ChangeFeed = field(default_factory=ChangeFeed)

    @classmethod
    def from_config(cls, config: ApiConfig) -> "Services":
        """Services for a configuration; nothing is read or connected yet."""
        return cls(
            config=config,
            store=DataStore(config.files, config.catalog_entries),
            db=Database(config.db_url),
            limiter=RateLimiter(config.rate_limit),
        )

    async def features(self, version: str | None = None) -> FeatureSnapshot:
        """The snapshot of a version (None: the current one).

        DataNotReady before the pipeline wrote the features; UnknownVersion for a version there is
        not. A pinned version may load files, so it is looked up off the event loop.
        """
        if version is None:
            snapshot = self.store.features.snapshot()
        else:
            snapshot = await asyncio.to_thread(self.store.features.snapshot, version)
        if snapshot is None:
            raise DataNotReady("feature data is not available yet: run the features pipeline")
        return snapshot


async def get_services(request: Request) -> Services:
    """The app's services (async: a plain def would cost a thread-pool hop per request)."""
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def require_api_key(
    request: Request,
    services: ServicesDep,
    given: Annotated[str | None, Security(api_key_header)],
) -> None:
    """401 unless the request carries one of the configured keys; its name goes to the log."""
    name = key_name(given, services.config.api_keys)
    if name is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or invalid API key",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )
    setattr(request.state, KEY_NAME_STATE, name)


async def rate_limit(request: Request, services: ServicesDep) -> None:
    """429 with Retry-After when the client (its key's name, else its address) is over its rate."""
    client = getattr(request.state, KEY_NAME_STATE, None) or (
        request.client.host if request.client else "unknown"
    )
    wait = services.limiter.wait(client)
    if wait > 0:
        retry_after = max(1, math.ceil(wait))
        raise HTTPException(
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"rate limit exceeded: retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
