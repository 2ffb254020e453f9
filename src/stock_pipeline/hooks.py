"""Kedro hooks: the NSE calendar of the environment, the run's identity, the database schema before
any node, and the run's record."""

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog
from kedro.pipeline import Node, Pipeline

from stock_pipeline.configuration import configure_calendar
from stock_pipeline.contract import RunStatus
from stock_pipeline.db import (
    DatabaseUnavailableError,
    database_url,
    driver_url,
    mask_secrets,
    mask_url,
    resolve_db_url,
    upgrade_database,
)
from stock_pipeline.engine import start_local_workers
from stock_pipeline.notify import Notifier, alert_for_saved, run_failed
from stock_pipeline.run_lock import DatabaseLock, FolderLock, Holder, RunLockedError
from stock_pipeline.run_store import RUNS_DIR, RunStore, this_process

logger = logging.getLogger(__name__)

RUN_CONTEXT = "run_context"
SQL_DATASET_TYPE = "SQLUpsertDataset"
ABANDON_AFTER_HOURS = (
    24.0  # a `running` record this old is abandoned even when its process is unknown
)


def make_run_context(
    run_id: str, env: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The run's id, environment and start time (UTC, ISO 8601) that nodes stamp on what they write."""
    started = now or datetime.now(UTC)
    return {"run_id": run_id, "env": env or "local", "started_at": started.isoformat()}


def _project_path(run_params: dict[str, Any]) -> Path:
    """The project folder of the run (the working directory when Kedro does not say)."""
    return Path(run_params.get("project_path") or Path.cwd())


class CalendarHooks:
    """Merge the environment's calendar.yml (special sessions, late holidays) into the NSE calendar."""

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        """Configure the calendar before any pipeline, dataset or node asks it about a day."""
        configure_calendar(context.config_loader)


def _database_url(run_params: dict[str, Any], db_url: str | None) -> str:
    """The run's database URL, a relative SQLite path made absolute against the project."""
    return resolve_db_url(db_url or database_url(), _project_path(run_params))


def _writes_sql(pipeline: Pipeline, catalog: DataCatalog) -> bool:
    """Whether any dataset of the pipeline is a SQL table."""
    return any(SQL_DATASET_TYPE in (catalog.get_type(name) or "") for name in pipeline.datasets())


def _parameter(catalog: DataCatalog, section: str, key: str, default: Any) -> Any:
    """The parameter section.key, or default when the run has none."""
    name = f"params:{section}.{key}"
    return catalog.load(name) if name in catalog else default


class EngineHooks:
    """Start the local engine's worker processes before a run loads its inputs, when its nodes
    use the engine (take `params:compute`): they start while the inputs load."""

    @hook_impl
    def before_pipeline_run(self, pipeline: Pipeline, catalog: DataCatalog) -> None:
        """Start the workers, importing the modules of the nodes that will use them."""
        users = [node for node in pipeline.nodes if "params:compute" in node.inputs]
        if users and _parameter(catalog, "compute", "engine", "local") == "local":
            start_local_workers(sorted({node.func.__module__ for node in users}))


class RunContextHooks:
    """Put `run_context` in the catalog so that nodes stay pure and still know their run."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], catalog: DataCatalog) -> None:
        """Fill in the run context before any node runs: the scheduler's run id (`run.id`) when it
        gives one, else Kedro's."""
        kedro_run_id = run_params.get("run_id") or run_params.get("session_id") or "unknown"
        run_id = _parameter(catalog, "run", "id", None) or kedro_run_id
        context = make_run_context(str(run_id), env=run_params.get("env"))
        catalog.save(RUN_CONTEXT, context)  # the catalog declares it as a MemoryDataset


class DatabaseHooks:
    """Migrate the database once per run, after the run's lock, before any node and before the
    run record is stored. Columns that follow the configuration (a newly configured indicator's)
    are added by the persistence node's save, where the graph shows it.

    A run whose pipeline writes SQL fails at once when the database is unreachable; any other run
    only warns (its record then stays a JSON file).
    """

    def __init__(self, db_url: str | None = None):
        self._db_url = db_url

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        """Bring the schema to head (one query when it already is)."""
        url = _database_url(run_params, self._db_url)
        writes_sql = _writes_sql(pipeline, catalog)
        try:
            upgrade_database(url, attempts=5 if writes_sql else 1)
        except DatabaseUnavailableError as error:
            if writes_sql:
                raise
            logger.warning("Database %s not migrated: %s", mask_url(url), error)


class RunLockHooks:
    """One run at a time: the data folder's lock, and PostgreSQL's advisory lock when the run
    writes SQL there. A run that cannot get them within `run.lock_timeout_seconds` exits with
    status 75 and a message naming the holder, before anything else happens."""

    LOCKED_EXIT_STATUS = 75  # EX_TEMPFAIL: try again later

    def __init__(self, db_url: str | None = None):
        self._db_url = db_url
        self._locks: list[FolderLock | DatabaseLock] = []

    @hook_impl(tryfirst=True)
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        """Take the locks, or stop the run without a traceback."""
        holder = Holder.me(str(run_params.get("run_id") or "unknown"))
        timeout = float(_parameter(catalog, "run", "lock_timeout_seconds", 0))
        url = _database_url(run_params, self._db_url)
        locks: list[FolderLock | DatabaseLock] = [FolderLock(_project_path(run_params))]
        if driver_url(url).get_backend_name() == "postgresql" and _writes_sql(pipeline, catalog):
            locks.append(DatabaseLock(url))
        try:
            for lock in locks:
                lock.acquire(holder, timeout)
                self._locks.append(lock)
        except RunLockedError as error:
            self._release()
            logger.error("%s", error)
            raise SystemExit(self.LOCKED_EXIT_STATUS) from None

    @hook_impl(trylast=True)
    def after_pipeline_run(self) -> None:
        """Let the locks go."""
        self._release()

    @hook_impl(trylast=True)
    def on_pipeline_error(self) -> None:
        """Let the locks go."""
        self._release()

    def _release(self) -> None:
        """Release every lock taken, newest first."""
        while self._locks:
            self._locks.pop().release()


class NotificationHooks:
    """Tell people what needs them (conf/local/notifications.yml): a failed run, stale data,
    drift alerts, a retrain request. Sending never fails the run."""

    def __init__(self) -> None:
        self._notifier = Notifier([])
        self._run: dict[str, Any] = {}

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Read the targets and events of the run's environment."""
        try:
            config = context.config_loader["notifications"].get("notifications") or {}
            self._notifier = Notifier(config.get("targets") or [], config.get("events"))
        except Exception as error:  # a broken alert config must not stop the pipeline
            logger.warning("notifications: configuration not usable, no alerts: %s", error)

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        """Remember which run this is."""
        self._run = run_params

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        """Alert on what a saved dataset says: stale tickers, drift alerts, a retrain request."""
        alert = alert_for_saved(dataset_name, data, str(self._run.get("run_id")))
        if alert is not None:
            self._notifier.send(alert)

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any]) -> None:
        """Alert that the run failed, and why."""
        pipeline = ",".join(run_params.get("pipeline_names") or ["__default__"])
        reason = mask_secrets(f"{type(error).__name__}: {error}")
        self._notifier.send(run_failed(str(run_params.get("run_id")), pipeline, reason))


class RunRecordHooks:
    """Record each run in data/08_reporting/runs and pipeline_runs; abandon killed runs' records.

    A node's entry covers its outputs' saves: a lazy save (a table computing its chunks as it
    writes them) is the node's work, so its seconds, rows written and errors are the node's. The
    record also names the version (`versions.<dataset>`) and the recipe (`recipes.<layer>`) of
    every table the run wrote."""

    def __init__(
        self,
        runs_dir: str = RUNS_DIR,
        db_url: str | None = None,
        abandon_after_hours: float = ABANDON_AFTER_HOURS,
    ):
        self._runs_dir = runs_dir
        self._db_url = db_url
        self._abandon_after = timedelta(hours=abandon_after_hours)
        self._lock = threading.Lock()
        self._record: dict[str, Any] = {}
        self._node_started: dict[str, float] = {}
        self._unsaved: dict[str, set[str]] = {}  # per node, the outputs not saved yet
        self._saving: tuple[str, str] | None = None  # the (node, dataset) being saved
        self._store: RunStore | None = None
        self._keep_days = 365.0
        self._catalog: DataCatalog | None = None

    @hook_impl(trylast=True)  # after the lock and the migration
    def before_pipeline_run(self, run_params: dict[str, Any], catalog: DataCatalog) -> None:
        """Open the run's record, store it as running, and abandon the orphans of killed runs."""
        self._catalog = catalog
        url = _database_url(run_params, self._db_url)
        self._store = RunStore(_project_path(run_params) / self._runs_dir, url)
        self._node_started, self._unsaved, self._saving = {}, {}, None
        self._record = {
            "run_id": str(run_params.get("run_id") or datetime.now(UTC).isoformat()),
            "pipeline": ",".join(run_params.get("pipeline_names") or ["__default__"]),
            "env": run_params.get("env"),
            "status": RunStatus.RUNNING,
            "started_at": datetime.now(UTC),
            "finished_at": None,
            "duration_seconds": None,
            "nodes": {},
            "tickers": {"ok": [], "failed": {}},
            "versions": {},
            "recipes": {},
            "error": None,
            **this_process(),
            "_clock": time.perf_counter(),
        }
        self._store.save(self.record())
        hours = _parameter(catalog, "run", "abandon_after_hours", None)
        limit = timedelta(hours=float(hours)) if hours is not None else self._abandon_after
        self._store.abandon_orphans(self._record["run_id"], self._record["started_at"], limit)
        self._keep_days = float(_parameter(catalog, "run", "keep_records_days", 365))

    @hook_impl
    def before_node_run(self, node: Node, inputs: dict[str, Any]) -> None:
        """Note when the node starts and how many rows it reads."""
        with self._lock:
            self._node_started[node.name] = time.perf_counter()
            self._record.setdefault("nodes", {})[node.name] = {
                "status": "running",
                "duration_seconds": None,
                "rows_in": _total_rows(inputs),
                "rows_out": None,
            }

    @hook_impl
    def after_node_run(self, node: Node, outputs: dict[str, Any]) -> None:
        """Note the ticker outcomes a report carries; the node is done once its outputs are saved."""
        with self._lock:
            self._node_entry(node.name)["rows_out"] = None
            self._unsaved[node.name] = set(outputs)
            for data in outputs.values():
                if isinstance(data, dict) and isinstance(data.get("ticker_outcomes"), dict):
                    self._record["tickers"] = data["ticker_outcomes"]
        if not outputs:
            self._finish_node(node)

    @hook_impl
    def before_dataset_saved(self, dataset_name: str, node: Node) -> None:
        """Note which output is being saved: an error now is the node's."""
        self._saving = (node.name, dataset_name)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Node) -> None:
        """Add the rows the save wrote to the node's, note the table's version and recipe, and
        close the node's entry after its last output."""
        dataset = self._catalog.get(dataset_name) if self._catalog is not None else None
        latest = getattr(dataset, "latest_version", None)
        version = latest() if callable(latest) else None
        recipe = getattr(dataset, "saved_recipe", None)
        written = getattr(dataset, "rows_written", None)
        rows = written if written is not None else _total_rows({dataset_name: data})
        with self._lock:
            self._saving = None
            entry = self._record.setdefault("nodes", {}).setdefault(node.name, {})
            if rows is not None:
                entry["rows_out"] = (entry.get("rows_out") or 0) + rows
            if version is not None:
                self._record.setdefault("versions", {})[dataset_name] = version
            if recipe is not None:
                self._record.setdefault("recipes", {})[recipe.layer] = recipe.record()
            unsaved = self._unsaved.get(node.name, set())
            unsaved.discard(dataset_name)
        if not unsaved:
            self._finish_node(node)

    def _finish_node(self, node: Node) -> None:
        """Close the node's entry: its time from start to its last save; log its line."""
        with self._lock:
            self._unsaved.pop(node.name, None)
            entry = self._node_entry(node.name)
            entry["status"] = "success"
            logger.info(
                "%s: %s rows in, %s rows out, %.2f s",
                node.name,
                _count(entry["rows_in"]),
                _count(entry["rows_out"]),
                entry.get("duration_seconds") or 0.0,
            )

    @hook_impl
    def on_node_error(self, error: Exception, node: Node) -> None:
        """Note which node failed and why."""
        with self._lock:
            self._node_entry(node.name).update(status="failed", error=mask_secrets(str(error)))

    @hook_impl
    def after_pipeline_run(self) -> None:
        """Close the record as a success and store it."""
        self._finish(RunStatus.SUCCESS, None)

    @hook_impl
    def on_pipeline_error(self, error: Exception) -> None:
        """Close the record as a failure with the error and store it; an error while a node's
        output was being saved (a lazy table computing its chunks) is that node's."""
        reason = mask_secrets(f"{type(error).__name__}: {error}")
        with self._lock:
            saving, self._saving = self._saving, None
            if saving is not None:
                node, dataset = saving
                self._node_entry(node).update(
                    status="failed", error=f"while saving {dataset}: {reason}"
                )
        if saving is not None:
            logger.error("%s failed while saving %s: %s", saving[0], saving[1], reason)
        self._finish(RunStatus.FAILED, reason)

    def _node_entry(self, name: str) -> dict[str, Any]:
        """The node's entry with its duration (so far) filled in."""
        entry = self._record.setdefault("nodes", {}).setdefault(name, {})
        started = self._node_started.get(name)
        if started is not None:
            entry["duration_seconds"] = round(time.perf_counter() - started, 6)
        return entry

    def _finish(self, status: RunStatus, error: str | None) -> None:
        """Stamp the end of the run and store the record."""
        if not self._record or self._store is None:
            return
        self._record.update(
            status=status,
            error=error,
            finished_at=datetime.now(UTC),
            duration_seconds=round(time.perf_counter() - self._record["_clock"], 6),
        )
        self._store.save(self.record())
        self._store.prune(self._record["finished_at"] - timedelta(days=self._keep_days))

    def record(self) -> dict[str, Any]:
        """The run record as stored: JSON-ready, with totals over the nodes."""
        with self._lock:
            record = {k: v for k, v in self._record.items() if not k.startswith("_")}
            nodes = {name: dict(entry) for name, entry in record["nodes"].items()}
        record["status"] = str(record["status"])
        record["nodes"] = nodes
        record["node_count"] = len(nodes)
        record["rows_in"] = sum(e.get("rows_in") or 0 for e in nodes.values())
        record["rows_out"] = sum(e.get("rows_out") or 0 for e in nodes.values())
        record["tickers_ok"] = len(record["tickers"]["ok"])
        record["tickers_failed"] = len(record["tickers"]["failed"])
        for key in ("started_at", "finished_at"):
            record[key] = record[key].isoformat() if record[key] else None
        return record


def _total_rows(datasets: dict[str, Any]) -> int | None:
    """Rows summed over the DataFrames among the datasets, None when there is none."""
    counts = [len(data) for data in datasets.values() if isinstance(data, pd.DataFrame)]
    return sum(counts) if counts else None


def _count(rows: int | None) -> str:
    """A row count with thousands separators, or - when the node moved no DataFrame."""
    return "-" if rows is None else f"{rows:,}"
