"""What every request shares: configuration, cached files, the database and the change feed."""

import asyncio
import hmac
import logging
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from api.config import ApiConfig
from api.database import Database
from api.store import DataStore, FeatureSnapshot

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)


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
    changes: ChangeFeed = field(default_factory=ChangeFeed)

    @classmethod
    def from_config(cls, config: ApiConfig) -> "Services":
        """Services for a configuration; nothing is read or connected yet."""
        return cls(config=config, store=DataStore(config.files), db=Database(config.db_url))

    def features(self) -> FeatureSnapshot:
        """The feature snapshot, or DataNotReady when the pipeline has not written it."""
        snapshot = self.store.features.get()
        if snapshot is None:
            raise DataNotReady("feature data is not available yet: run the features pipeline")
        return snapshot


async def get_services(request: Request) -> Services:
    """The app's services (async: a plain def would cost a thread-pool hop per request)."""
    return request.app.state.services


def key_matches(given: str | None, expected: str | None) -> bool:
    """True when no key is configured, or the given one equals it (constant-time)."""
    if expected is None:
        return True
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


async def require_api_key(
    services: Annotated[Services, Depends(get_services)],
    given: Annotated[str | None, Security(api_key_header)],
) -> None:
    """Reject the request with 401 when an API key is configured and not presented."""
    if not key_matches(given, services.config.api_key):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or invalid API key",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )


ServicesDep = Annotated[Services, Depends(get_services)]
