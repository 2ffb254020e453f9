"""Where run records are kept: a JSON file per run and a row of `pipeline_runs`."""

import json
import logging
import os
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from stock_pipeline.atomic import write_json_atomically
from stock_pipeline.contract import PIPELINE_RUNS, RunStatus
from stock_pipeline.db import (
    DatabaseUnavailableError,
    connect,
    create_db_engine,
    mask_secrets,
    mask_url,
)

logger = logging.getLogger(__name__)

RUNS_DIR = "data/08_reporting/runs"
ROW_COLUMNS = tuple(column.name for column in PIPELINE_RUNS.columns if column.name != "record")


def run_row(record: dict[str, Any]) -> dict[str, Any]:
    """The pipeline_runs row of a JSON-ready record (timestamps parsed back, the whole record kept)."""
    row = {column: record.get(column) for column in ROW_COLUMNS}
    for key in ("started_at", "finished_at"):
        row[key] = datetime.fromisoformat(row[key]) if row[key] else None
    return {**row, "record": record}


def process_identity(pid: int) -> str | None:
    """The boot and start time of a process (Linux), so that a reused pid is not taken for it."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return f"{boot}:{fields[19]}"  # field 22 of stat, the start time in clock ticks after boot


def this_process() -> dict[str, Any]:
    """Where this run executes: the fields by which a later run tells whether it is still alive."""
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "process": process_identity(pid)}


def process_gone(record: dict[str, Any]) -> bool:
    """True when the record's process ran on this host and is no longer there (or its pid was reused)."""
    pid, host = record.get("pid"), record.get("host")
    if not isinstance(pid, int) or host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        pass
    identity = record.get("process")
    return identity is not None and process_identity(pid) not in (identity, None)


def orphan_reason(record: dict[str, Any], now: datetime, max_age: timedelta) -> str | None:
    """Why a running record's run can no longer finish, or None while it may still be running."""
    where = f"pid {record.get('pid')} on {record.get('host')}"
    if process_gone(record):
        return f"its process ({where}) is gone"
    started = datetime.fromisoformat(record["started_at"])
    started = started if started.tzinfo else started.replace(tzinfo=UTC)
    if now - started > max_age:
        return f"still running after {max_age} ({where}), over the limit"
    return None


def safe_name(run_id: str) -> str:
    """The run id made safe as a file name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", run_id)


class RunStore:
    """Stores run records in `runs_dir` and the database at `url`; a failure is logged, never raised,
    because a run must not fail for want of its record."""

    def __init__(self, runs_dir: Path, url: str):
        self.runs_dir = runs_dir
        self.url = url

    def save(self, record: dict[str, Any]) -> None:
        """Write the record's JSON file, then insert or update its row."""
        path = self.runs_dir / f"{safe_name(record['run_id'])}.json"
        try:
            write_json_atomically(record, path)
        except OSError as error:
            logger.warning("Could not write the run record %s: %s", path, error)
        try:
            self._save_row(run_row(record))
        except (SQLAlchemyError, DatabaseUnavailableError) as error:
            logger.warning(
                "Could not store the run record in pipeline_runs at %s: %s",
                mask_url(self.url),
                mask_secrets(str(getattr(error, "orig", None) or error).splitlines()[0]),
            )

    def abandon_orphans(self, current_run_id: str, now: datetime, max_age: timedelta) -> list[str]:
        """Mark `abandoned` every other `running` record whose run can no longer finish; their ids."""
        abandoned = []
        for record in self._running_records().values():
            if record["run_id"] == current_run_id:
                continue
            try:
                reason = orphan_reason(record, now, max_age)
            except (TypeError, ValueError) as error:  # a hand-edited or foreign record
                logger.warning("Run record %s is unreadable: %s", record["run_id"], error)
                continue
            if reason is None:
                continue
            logger.warning(
                "Run %s (started %s) is abandoned: %s",
                record["run_id"],
                record["started_at"],
                reason,
            )
            record.update(
                status=str(RunStatus.ABANDONED),
                error=f"abandoned: {reason}",
                abandoned_at=now.isoformat(),
                abandoned_by=current_run_id,
            )
            self.save(record)
            abandoned.append(record["run_id"])
        return abandoned

    def prune(self, cutoff: datetime) -> int:
        """Delete the records of finished runs last written before cutoff (JSON files by their
        modification time, rows by start time): how many files went. Keeps a run's cost flat."""
        removed = 0
        for path in self.runs_dir.glob("*.json"):
            if datetime.fromtimestamp(path.stat().st_mtime, UTC) < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        try:
            self._delete_rows(cutoff)
        except (SQLAlchemyError, DatabaseUnavailableError) as error:
            logger.warning("Could not prune pipeline_runs: %s", error)
        if removed:
            logger.info("Pruned %d run records older than %s", removed, cutoff.date())
        return removed

    def _delete_rows(self, cutoff: datetime) -> None:
        """Delete the pipeline_runs rows of runs that started before cutoff and are not running."""
        engine = create_db_engine(self.url)
        try:
            with connect(engine, attempts=1) as connection, connection.begin():
                connection.execute(
                    PIPELINE_RUNS.delete().where(
                        PIPELINE_RUNS.c.started_at < cutoff,
                        PIPELINE_RUNS.c.status != RunStatus.RUNNING,
                    )
                )
        finally:
            engine.dispose()

    def _running_records(self) -> dict[str, dict[str, Any]]:
        """The records still `running`, from pipeline_runs and from the JSON files, by run id."""
        records = {}
        try:
            records.update({r["run_id"]: r for r in self._running_rows()})
        except (SQLAlchemyError, DatabaseUnavailableError) as error:
            logger.warning("Could not read running runs from pipeline_runs: %s", error)
        for path in sorted(self.runs_dir.glob("*.json")):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(record, dict) and record.get("status") == RunStatus.RUNNING:
                records.setdefault(record.get("run_id"), record)
        return {run_id: r for run_id, r in records.items() if run_id and r.get("started_at")}

    def _running_rows(self) -> list[dict[str, Any]]:
        """The whole records of the rows of pipeline_runs still `running`."""
        engine = create_db_engine(self.url)
        try:
            with connect(engine, attempts=1) as connection:
                statement = sa.select(PIPELINE_RUNS.c.record).where(
                    PIPELINE_RUNS.c.status == RunStatus.RUNNING
                )
                return [r for r in connection.execute(statement).scalars() if isinstance(r, dict)]
        finally:
            engine.dispose()

    def _save_row(self, row: dict[str, Any]) -> None:
        """Update the run's row, or insert it when there is none yet."""
        engine = create_db_engine(self.url)
        try:
            with connect(engine, attempts=2, wait=0.5) as connection, connection.begin():
                key = PIPELINE_RUNS.c.run_id == row["run_id"]
                updated = connection.execute(PIPELINE_RUNS.update().where(key).values(**row))
                if updated.rowcount == 0:
                    connection.execute(PIPELINE_RUNS.insert().values(**row))
        finally:
            engine.dispose()
