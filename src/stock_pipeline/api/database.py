"""Read-only access to the pipeline's SQL database through one pooled SQLAlchemy engine."""

import logging
import threading
import time
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import QueuePool

from stock_pipeline.contract import PIPELINE_RUNS
from stock_pipeline.db import DatabaseUnavailableError, create_db_engine, driver_url, mask_url

logger = logging.getLogger(__name__)

LATEST_SQL = sa.text("SELECT * FROM latest_stock_data ORDER BY ticker")
SUMMARY_SQL = sa.text(
    "SELECT * FROM daily_market_summary WHERE date >= :start AND date < :stop "
    "ORDER BY date DESC LIMIT :limit"
)


class DatabaseUnavailable(RuntimeError):
    """The database did not answer, or lacks the tables the pipeline creates."""


def read_only_url(url: str) -> sa.URL:
    """The URL to connect with: a SQLite file is opened read-only and never created."""
    parsed = driver_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return parsed
    return parsed.set(database=f"file:{database}", query={"mode": "ro", "uri": "true"})


def _engine_options(url: sa.URL) -> dict[str, Any]:
    """Pool and timeout settings for the dialect."""
    if url.get_backend_name() == "sqlite":
        return {"poolclass": QueuePool, "connect_args": {"timeout": 5}}
    return {
        "poolclass": QueuePool,
        "pool_size": 5,
        "max_overflow": 5,
        "pool_timeout": 5,
        "pool_recycle": 1800,
        "connect_args": {"connect_timeout": 3},
    }


def _records(result: sa.CursorResult) -> list[dict[str, Any]]:
    """Result rows as plain dicts."""
    return [dict(row) for row in result.mappings()]


class Database:
    """The engine, created on first use, and the few queries the API runs."""

    def __init__(self, url: str):
        self.url = url
        self.masked_url = mask_url(url)
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        """The pooled engine (pre-ping drops connections the server closed)."""
        with self._lock:
            if self._engine is None:
                url = read_only_url(self.url)
                self._engine = create_db_engine(url, pool_pre_ping=True, **_engine_options(url))
            return self._engine

    @property
    def dialect(self) -> str:
        """The backend's name, e.g. sqlite or postgresql."""
        return driver_url(self.url).get_backend_name()

    def _query(self, statement: sa.Executable, **params: Any) -> list[dict[str, Any]]:
        """Run a read query; any database error becomes DatabaseUnavailable."""
        try:
            with self.engine.connect() as connection:
                return _records(connection.execute(statement, params))
        except (SQLAlchemyError, DatabaseUnavailableError) as error:
            logger.warning("Query failed on %s: %s", self.masked_url, type(error).__name__)
            raise DatabaseUnavailable(type(error).__name__) from error

    def ping(self) -> float:
        """Milliseconds a trivial query takes."""
        started = time.perf_counter()
        self._query(sa.text("SELECT 1"))
        return (time.perf_counter() - started) * 1000

    def latest(self) -> list[dict[str, Any]]:
        """Every ticker's latest stored bar."""
        return self._query(LATEST_SQL)

    def market_summary(self, start: date, end: date, limit: int) -> list[dict[str, Any]]:
        """Daily market summary rows from start to end inclusive, newest first."""
        stop = min(end, date.max - timedelta(days=1)) + timedelta(days=1)
        return self._query(SUMMARY_SQL, start=start, stop=stop, limit=limit)

    def recent_runs(self, limit: int) -> list[dict[str, Any]]:
        """The last runs recorded in pipeline_runs, newest first."""
        columns = [c for c in PIPELINE_RUNS.columns if c.name != "record"]
        statement = sa.select(*columns).order_by(PIPELINE_RUNS.c.started_at.desc()).limit(limit)
        return self._query(statement)

    def dispose(self) -> None:
        """Close the pool's connections."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
