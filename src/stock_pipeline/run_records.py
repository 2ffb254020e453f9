"""Kedro hooks that leave a record of every run: a JSON file and a row in `pipeline_runs`."""

import json
import logging
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from kedro.framework.hooks import hook_impl
from kedro.pipeline import Node
from sqlalchemy.exc import SQLAlchemyError

from stock_pipeline.db import (
    DatabaseUnavailableError,
    connect,
    create_db_engine,
    database_url,
    ensure_upgraded,
    mask_url,
    resolve_db_url,
)

logger = logging.getLogger(__name__)

RUNS_DIR = "data/08_reporting/runs"
INGESTION_REPORT = "ingestion_report"
# Ingestion statuses (see pipelines/ingestion): every one but "failed" means the ticker is fine.
OK_STATUSES = frozenset({"ok", "created", "updated", "refreshed", "unchanged"})
_SECRET_IN_URL = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")

metadata = sa.MetaData()

pipeline_runs = sa.Table(
    "pipeline_runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("pipeline", sa.String(200), nullable=False),
    sa.Column("env", sa.String(64)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("duration_seconds", sa.Float),
    sa.Column("node_count", sa.Integer),
    sa.Column("rows_in", sa.BigInteger),
    sa.Column("rows_out", sa.BigInteger),
    sa.Column("tickers_ok", sa.Integer),
    sa.Column("tickers_failed", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("record", sa.JSON),
)

ROW_COLUMNS = tuple(c.name for c in pipeline_runs.columns)


def mask_secrets(text: str) -> str:
    """The text with passwords inside URLs replaced by ***."""
    return _SECRET_IN_URL.sub(r"\1***@", text)


def frame_rows(data: Any) -> int | None:
    """The row count of a DataFrame, None for anything else."""
    return len(data) if isinstance(data, pd.DataFrame) else None


def total_rows(datasets: dict[str, Any]) -> int | None:
    """Rows summed over the DataFrames among the datasets, None when there is none."""
    counts = [n for n in map(frame_rows, datasets.values()) if n is not None]
    return sum(counts) if counts else None


def ticker_outcomes(report: Any) -> dict[str, Any]:
    """Tickers that ended ok and those that failed with their reasons, from an ingestion report."""
    tickers = report.get("tickers") if isinstance(report, dict) else None
    if not isinstance(tickers, dict):
        return {"ok": [], "failed": {}}
    entries = {t: e for t, e in tickers.items() if isinstance(e, dict)}
    return {
        "ok": sorted(t for t, e in entries.items() if e.get("status") in OK_STATUSES),
        "failed": {
            t: str(e.get("reason") or "unknown")
            for t, e in sorted(entries.items())
            if e.get("status") == "failed"
        },
    }


def write_json_atomically(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON to a temporary file next to path (a normal file's mode), then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as stream:
            json.dump(payload, stream, indent=2, default=str)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def save_run_row(url: str, row: dict[str, Any]) -> None:
    """Migrate the database once per process, then insert or update the run's row."""
    engine = create_db_engine(url)
    try:
        with connect(engine, attempts=2, wait=0.5) as connection:
            ensure_upgraded(connection, url)
            with connection.begin():
                key = pipeline_runs.c.run_id == row["run_id"]
                updated = connection.execute(pipeline_runs.update().where(key).values(**row))
                if updated.rowcount == 0:
                    connection.execute(pipeline_runs.insert().values(**row))
    finally:
        engine.dispose()


class RunRecordHooks:
    """Record each run (timings, rows, ticker outcomes) in data/08_reporting/runs and pipeline_runs."""

    def __init__(self, runs_dir: str = RUNS_DIR, db_url: str | None = None):
        self._runs_dir = runs_dir
        self._db_url = db_url
        self._lock = threading.Lock()
        self._record: dict[str, Any] = {}
        self._node_started: dict[str, float] = {}
        self._project_path = Path.cwd()
        self._opening: threading.Thread | None = None

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        """Open the run's record and store it as running."""
        self._project_path = Path(run_params.get("project_path") or Path.cwd())
        self._node_started = {}
        self._record = {
            "run_id": str(run_params.get("run_id") or datetime.now(UTC).isoformat()),
            "pipeline": ",".join(run_params.get("pipeline_names") or ["__default__"]),
            "env": run_params.get("env"),
            "status": "running",
            "started_at": datetime.now(UTC),
            "finished_at": None,
            "duration_seconds": None,
            "nodes": {},
            "tickers": {"ok": [], "failed": {}},
            "error": None,
            "_clock": time.perf_counter(),
        }
        # stored while the first nodes run: migrating and writing the database takes a second
        self._opening = threading.Thread(target=self._save, name="run-record", daemon=True)
        self._opening.start()

    @hook_impl
    def before_node_run(self, node: Node, inputs: dict[str, Any]) -> None:
        """Note when the node starts and how many rows it reads."""
        with self._lock:
            self._node_started[node.name] = time.perf_counter()
            self._record.setdefault("nodes", {})[node.name] = {
                "status": "running",
                "duration_seconds": None,
                "rows_in": total_rows(inputs),
                "rows_out": None,
            }

    @hook_impl
    def after_node_run(self, node: Node, outputs: dict[str, Any]) -> None:
        """Note the node's duration, rows written, and ticker outcomes of an ingestion report."""
        with self._lock:
            entry = self._node_entry(node)
            entry.update(status="success", rows_out=total_rows(outputs))
            for name, data in outputs.items():
                if name.rsplit(".", 1)[-1] == INGESTION_REPORT:  # also intraday.ingestion_report
                    self._record["tickers"] = ticker_outcomes(data)

    @hook_impl
    def on_node_error(self, error: Exception, node: Node) -> None:
        """Note which node failed and why."""
        with self._lock:
            self._node_entry(node).update(status="failed", error=mask_secrets(str(error)))

    @hook_impl
    def after_pipeline_run(self) -> None:
        """Close the record as a success and store it."""
        self._finish("success", None)

    @hook_impl
    def on_pipeline_error(self, error: Exception) -> None:
        """Close the record as a failure with the error and store it."""
        self._finish("failed", mask_secrets(f"{type(error).__name__}: {error}"))

    def _node_entry(self, node: Node) -> dict[str, Any]:
        """The node's entry with its duration filled in."""
        entry = self._record.setdefault("nodes", {}).setdefault(node.name, {})
        started = self._node_started.pop(node.name, None)
        if started is not None:
            entry["duration_seconds"] = round(time.perf_counter() - started, 6)
        return entry

    def _finish(self, status: str, error: str | None) -> None:
        """Stamp the end of the run and store the record."""
        if not self._record:
            return
        if self._opening is not None:
            self._opening.join()  # the running row first, then this final one
        self._record.update(
            status=status,
            error=error,
            finished_at=datetime.now(UTC),
            duration_seconds=round(time.perf_counter() - self._record["_clock"], 6),
        )
        self._save()

    def _save(self) -> None:
        """Write the record's JSON file and its database row; a failure is logged, never raised."""
        record = self.record()
        path = self._project_path / self._runs_dir / f"{_safe_name(record['run_id'])}.json"
        try:
            write_json_atomically(path, record)
        except OSError as error:
            logger.warning("Could not write the run record %s: %s", path, error)
        url = resolve_db_url(self._db_url or database_url(), self._project_path)
        try:
            save_run_row(url, run_row(record))
        except (SQLAlchemyError, DatabaseUnavailableError) as error:
            logger.warning(
                "Could not store the run record in pipeline_runs at %s: %s",
                mask_url(url),
                mask_secrets(str(getattr(error, "orig", None) or error).splitlines()[0]),
            )

    def record(self) -> dict[str, Any]:
        """The run record as stored: JSON-ready, with totals over the nodes."""
        with self._lock:
            record = {k: v for k, v in self._record.items() if not k.startswith("_")}
            nodes = {name: dict(entry) for name, entry in record["nodes"].items()}
        record["nodes"] = nodes
        record["node_count"] = len(nodes)
        record["rows_in"] = sum(e.get("rows_in") or 0 for e in nodes.values())
        record["rows_out"] = sum(e.get("rows_out") or 0 for e in nodes.values())
        record["tickers_ok"] = len(record["tickers"]["ok"])
        record["tickers_failed"] = len(record["tickers"]["failed"])
        for key in ("started_at", "finished_at"):
            record[key] = record[key].isoformat() if record[key] else None
        return record


def run_row(record: dict[str, Any]) -> dict[str, Any]:
    """The pipeline_runs row of a record."""
    row = {column: record.get(column) for column in ROW_COLUMNS if column != "record"}
    for key in ("started_at", "finished_at"):
        row[key] = datetime.fromisoformat(row[key]) if row[key] else None
    return {**row, "record": record}


def _safe_name(run_id: str) -> str:
    """The run id made safe as a file name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", run_id)
