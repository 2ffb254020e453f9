"""One run at a time: a lock on the data folder, and an advisory lock on PostgreSQL for SQL writes.

The folder lock is an OS lock (flock) on data/.run.lock, so a killed process releases it with its
last breath; the file also names its holder (run id, pid, host, start time) for the message a
waiting run gives, and for the log line when a run takes over after a killed one.
"""

import fcntl
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

from stock_pipeline.db import connect, create_db_engine, mask_url

logger = logging.getLogger(__name__)

LOCK_FILE = "data/.run.lock"
ADVISORY_KEY = "stock_pipeline.run"  # hashed by PostgreSQL's hashtext into the lock's number
POLL_SECONDS = 0.5


class RunLockedError(RuntimeError):
    """Another run holds the lock and did not let go within the configured wait."""


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a lock."""

    run_id: str
    pid: int
    host: str
    started_at: str

    @classmethod
    def me(cls, run_id: str) -> "Holder":
        """This process, running `run_id`, from now."""
        return cls(run_id, os.getpid(), socket.gethostname(), datetime.now(UTC).isoformat())

    def describe(self) -> str:
        """`run 2026-... (pid 123 on host, started 2026-...)`."""
        return f"run {self.run_id} (pid {self.pid} on {self.host}, started {self.started_at})"

    def is_alive(self) -> bool:
        """Whether the holder's process still runs (always assumed for another host)."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _read_holder(stream: IO[str]) -> Holder | None:
    """The holder written in the lock file, None when it holds nothing readable."""
    stream.seek(0)
    try:
        return Holder(**json.loads(stream.read()))
    except (ValueError, TypeError):
        return None


def _wait(try_once: Any, timeout: float) -> bool:
    """Call try_once until it returns True or timeout seconds have passed."""
    deadline = time.monotonic() + timeout
    while not try_once():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


class FolderLock:
    """The data folder's lock, taken for one run."""

    def __init__(self, project_path: Path):
        self.path = project_path / LOCK_FILE
        self._stream: IO[str] | None = None

    def acquire(self, holder: Holder, timeout: float) -> None:
        """Take the lock, waiting up to timeout seconds; RunLockedError naming the holder if not."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        stream = self.path.open("a+", encoding="utf-8")

        def try_once() -> bool:
            try:
                fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        if not _wait(try_once, timeout):
            previous = _read_holder(stream)
            stream.close()
            raise RunLockedError(
                f"Another run holds {self.path}: "
                f"{previous.describe() if previous else 'an unknown run'}; waited {timeout:g} s "
                "(run.lock_timeout_seconds)"
            )
        previous = _read_holder(stream)
        if previous and previous.pid != holder.pid:
            state = "still running?" if previous.is_alive() else "no longer running"
            logger.warning("Taking over the lock left by %s (%s)", previous.describe(), state)
        stream.seek(0)
        stream.truncate()
        stream.write(json.dumps(holder.__dict__))
        stream.flush()
        self._stream = stream

    def release(self) -> None:
        """Let the lock go (the holder's name is cleared, so nobody is told of a finished run)."""
        if self._stream is None:
            return
        self._stream.truncate(0)
        fcntl.flock(self._stream, fcntl.LOCK_UN)
        self._stream.close()
        self._stream = None


class DatabaseLock:
    """A session-level PostgreSQL advisory lock held for the run, so that runs on other machines
    writing the same database wait too; the holder's connection names its run."""

    def __init__(self, url: str):
        self.url = url
        self._engine: sa.Engine | None = None
        self._connection: sa.Connection | None = None

    def acquire(self, holder: Holder, timeout: float) -> None:
        """Take the advisory lock, waiting up to timeout seconds; RunLockedError if not."""
        name = f"stock_pipeline {holder.describe()}"[:63]
        engine = create_db_engine(self.url)
        connection = connect(engine)
        connection.execute(
            sa.text("SELECT set_config('application_name', :name, false)"), {"name": name}
        )
        connection.commit()

        def try_once() -> bool:
            taken = connection.execute(
                sa.text("SELECT pg_try_advisory_lock(hashtext(:key))"), {"key": ADVISORY_KEY}
            ).scalar_one()
            connection.commit()
            return bool(taken)

        if not _wait(try_once, timeout):
            other = self._holder_name(connection)
            connection.close()
            engine.dispose()
            raise RunLockedError(
                f"Another run holds the advisory lock on {mask_url(self.url)}: {other}; "
                f"waited {timeout:g} s (run.lock_timeout_seconds)"
            )
        self._engine, self._connection = engine, connection

    @staticmethod
    def _holder_name(connection: sa.Connection) -> str:
        """The application name of the session holding the advisory lock."""
        name = connection.execute(
            sa.text(
                "SELECT a.application_name FROM pg_locks AS l "
                "JOIN pg_stat_activity AS a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted "
                "AND l.objid = (hashtext(:key)::bigint & 4294967295) LIMIT 1"
            ),
            {"key": ADVISORY_KEY},
        ).scalar()
        return name or "an unknown session"

    def release(self) -> None:
        """Let the lock go by closing its session."""
        if self._connection is not None:
            self._connection.close()
        if self._engine is not None:
            self._engine.dispose()
        self._connection = self._engine = None
