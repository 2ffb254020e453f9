"""Hooks: every run migrates the database first, then leaves a JSON record and a pipeline_runs
row, even when it fails."""

import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.io import AbstractDataset, DataCatalog, DatasetError, MemoryDataset
from kedro.pipeline import Pipeline, node
from kedro.runner import SequentialRunner

from stock_pipeline.contract import PIPELINE_RUNS
from stock_pipeline.db import at_head, connect, create_db_engine, upgrade_database
from stock_pipeline.hooks import DatabaseHooks, RunContextHooks, RunRecordHooks
from stock_pipeline.recipes import Recipe
from stock_pipeline.run_store import RunStore, process_identity

REPORT = {
    "tickers": {
        "INFY.NS": {"status": "refreshed", "reason": None},
        "TCS.NS": {"status": "unchanged", "reason": None},
        "SBIN.NS": {"status": "created", "reason": None},
        "ITC.NS": {"status": "updated", "reason": None},
        "BAD.NS": {"status": "failed", "reason": "empty file"},
    },
    "ticker_outcomes": {
        "ok": ["INFY.NS", "ITC.NS", "SBIN.NS", "TCS.NS"],
        "failed": {"BAD.NS": "empty file"},
    },
}


def ingest(tickers: list[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Three rows per ticker and an ingestion report."""
    return pd.DataFrame({"ticker": [t for t in tickers for _ in range(3)]}), REPORT


def clean(prices: pd.DataFrame) -> pd.DataFrame:
    """Drop the first row."""
    return prices.iloc[1:]


def explode(prices: pd.DataFrame) -> pd.DataFrame:
    """Fail with a message that holds a database password."""
    raise RuntimeError("cannot reach postgresql://writer:hunter2@db.example/prod")


def run(
    tmp_path: Path,
    nodes: list,
    hooks: RunRecordHooks,
    db_url: str,
    datasets: dict[str, Any] | None = None,
) -> None:
    """Run the nodes with the hooks as `kedro run` would: pipeline hooks around the runner."""
    manager = _create_hook_manager()
    manager.register(DatabaseHooks(db_url=db_url))
    manager.register(hooks)
    catalog = DataCatalog({"tickers": MemoryDataset(["INFY.NS", "TCS.NS"]), **(datasets or {})})
    pipeline = Pipeline(nodes)
    params = {
        "run_id": "2026-11-25T18.00.00.000Z",
        "project_path": tmp_path.as_posix(),
        "env": "sample",
        "pipeline_names": ["daily"],
    }
    manager.hook.before_pipeline_run(run_params=params, pipeline=pipeline, catalog=catalog)
    try:
        result = SequentialRunner().run(pipeline, catalog, manager, run_id=params["run_id"])
    except Exception as error:
        manager.hook.on_pipeline_error(
            error=error, run_params=params, pipeline=pipeline, catalog=catalog
        )
        raise
    manager.hook.after_pipeline_run(
        run_params=params, run_result=result, pipeline=pipeline, catalog=catalog
    )


def stored_rows(url: str) -> list[dict[str, Any]]:
    """Every row of pipeline_runs."""
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = [dict(r) for r in connection.execute(sa.select(PIPELINE_RUNS)).mappings()]
    engine.dispose()
    return rows


def record_file(tmp_path: Path) -> dict[str, Any]:
    """The run's JSON record."""
    return json.loads(
        (tmp_path / "data/08_reporting/runs/2026-11-25T18.00.00.000Z.json").read_text()
    )


NODES = [
    node(ingest, "tickers", ["raw", "ingestion_report"], name="ingest_node"),
    node(clean, "raw", "clean", name="clean_node"),
]


def test_a_run_leaves_a_json_record_and_a_row(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = "sqlite:///data/runs.db"
    caplog.set_level("INFO", logger="stock_pipeline")
    run(tmp_path, NODES, RunRecordHooks(db_url=url), url)
    record = record_file(tmp_path)
    assert record["status"] == "success"
    assert record["pipeline"] == "daily"
    assert record["env"] == "sample"
    assert record["nodes"]["ingest_node"]["rows_out"] == 6
    assert record["nodes"]["clean_node"] | {"duration_seconds": None} == {
        "status": "success",
        "duration_seconds": None,
        "rows_in": 6,
        "rows_out": 5,
    }
    assert record["nodes"]["clean_node"]["duration_seconds"] >= 0
    assert record["tickers"] == {
        "ok": ["INFY.NS", "ITC.NS", "SBIN.NS", "TCS.NS"],
        "failed": {"BAD.NS": "empty file"},
    }
    assert (record["rows_in"], record["rows_out"], record["node_count"]) == (6, 11, 2)
    assert record["finished_at"] >= record["started_at"]
    [row] = stored_rows(f"sqlite:///{tmp_path}/data/runs.db")
    assert row["run_id"] == "2026-11-25T18.00.00.000Z"
    assert (row["status"], row["tickers_ok"], row["tickers_failed"]) == ("success", 4, 1)
    assert row["rows_out"] == 11
    assert row["record"]["nodes"]["clean_node"]["rows_out"] == 5
    assert "clean_node: 6 rows in, 5 rows out" in caplog.text  # the console's line per node


class LazyTable(AbstractDataset):
    """A table that computes the chunks it is given as it writes them, as DeltaTableDataset does,
    and says how many rows it wrote and under which recipe."""

    def __init__(self) -> None:
        self.rows_written, self.saved_recipe = 0, None

    def _describe(self) -> dict[str, Any]:
        return {}

    def load(self) -> None:
        return None

    def save(self, data: dict[str, Any]) -> None:
        self.rows_written = sum(len(chunk()) for chunk in data.values())
        self.saved_recipe = Recipe("gold", {"indicators": {"sma_20": {}}}, 1)


def compute_slowly(prices: pd.DataFrame) -> dict[str, Any]:
    """Two chunks that take 0.2 s each to compute (the second fails on request)."""

    def chunk(rows: pd.DataFrame) -> pd.DataFrame:
        time.sleep(0.2)
        if rows.empty:
            raise ValueError("bucket 2: no rows")
        return rows

    return {"1": lambda: chunk(prices), "2": lambda: chunk(prices.iloc[:0])}


def compute_quickly(prices: pd.DataFrame) -> dict[str, Any]:
    """Two chunks that compute at once."""
    return {"1": lambda: prices, "2": lambda: prices.iloc[:1]}


def test_a_lazy_save_is_the_work_of_the_node_that_produced_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path}/runs.db"
    nodes = [NODES[0], node(compute_quickly, "raw", "table", name="compute_node")]
    caplog.set_level("INFO", logger="stock_pipeline")
    run(tmp_path, nodes, RunRecordHooks(db_url=url), url, {"table": LazyTable()})
    record = record_file(tmp_path)
    assert record["nodes"]["compute_node"]["rows_out"] == 7  # 6 + 1, counted by the table
    assert (
        record["recipes"]["gold"]["fingerprint"]
        == Recipe("gold", {"indicators": {"sma_20": {}}}, 1).fingerprint
    )
    assert "compute_node: 6 rows in, 7 rows out" in caplog.text

    slow = [NODES[0], node(compute_slowly, "raw", "table", name="compute_node")]
    with pytest.raises(DatasetError):
        run(tmp_path, slow, RunRecordHooks(db_url=url), url, {"table": LazyTable()})
    entry = record_file(tmp_path)["nodes"]["compute_node"]
    assert entry["status"] == "failed"
    assert "while saving table" in entry["error"] and "bucket 2: no rows" in entry["error"]
    assert entry["duration_seconds"] >= 0.4  # both chunks' time, spent in the save


@pytest.mark.filterwarnings("ignore:One or more dataset names contain")  # as namespaces name them
def test_the_intraday_namespaced_ingestion_report_gives_the_tickers(tmp_path: Path) -> None:
    nodes = [node(ingest, "tickers", ["raw", "intraday.ingestion_report"], name="ingest_node")]
    url = "sqlite:///data/runs.db"
    run(tmp_path, nodes, RunRecordHooks(db_url=url), url)
    assert record_file(tmp_path)["tickers"]["failed"] == {"BAD.NS": "empty file"}


def test_a_failed_run_is_recorded_with_a_masked_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/runs.db"
    failing = [*NODES, node(explode, "clean", "boom", name="explode_node")]
    with pytest.raises(RuntimeError):
        run(tmp_path, failing, RunRecordHooks(db_url=url), url)
    record = record_file(tmp_path)
    assert record["status"] == "failed"
    assert record["nodes"]["explode_node"]["status"] == "failed"
    assert "hunter2" not in json.dumps(record)
    assert "writer:***@" in record["error"]
    [row] = stored_rows(url)
    assert row["status"] == "failed"
    assert "hunter2" not in row["error"]


def test_an_unreachable_database_still_leaves_the_json(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = "postgresql+psycopg2://writer:hunter2@127.0.0.1:1/none"
    run(tmp_path, NODES, RunRecordHooks(db_url=url), url)
    assert record_file(tmp_path)["status"] == "success"
    assert "Could not store the run record" in caplog.text
    assert "hunter2" not in caplog.text


def test_the_database_is_migrated_before_the_first_node(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/runs.db"
    engine = create_db_engine(url)

    def check_schema(prices: pd.DataFrame) -> pd.DataFrame:
        with connect(engine) as connection:
            assert at_head(connection)
        return prices

    nodes = [*NODES, node(check_schema, "clean", "checked", name="check_schema_node")]
    run(tmp_path, nodes, RunRecordHooks(db_url=url), url)
    engine.dispose()
    assert record_file(tmp_path)["nodes"]["check_schema_node"]["status"] == "success"


@pytest.mark.postgres
def test_records_go_to_postgresql(tmp_path: Path, pg_url: str) -> None:
    run(tmp_path, NODES, RunRecordHooks(db_url=pg_url), pg_url)
    [row] = stored_rows(pg_url)
    assert row["status"] == "success"
    assert row["started_at"].tzinfo is not None
    assert row["record"]["tickers"]["failed"] == {"BAD.NS": "empty file"}


KILLED_RUN = """
import sys, time
from kedro.io import DataCatalog
from stock_pipeline.hooks import RunRecordHooks
hooks = RunRecordHooks(db_url=sys.argv[2])
params = {"run_id": "killed-run", "project_path": sys.argv[1]}
hooks.before_pipeline_run(run_params=params, catalog=DataCatalog())
print("running", flush=True)
time.sleep(120)
"""


def test_a_killed_run_is_abandoned_by_the_next_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/runs.db"
    upgrade_database(url)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, tmp_path.as_posix(), url],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines = iter(process.stdout.readline, "")  # Kedro's logging may print first
    assert any(line.strip() == "running" for line in lines)
    process.kill()  # SIGKILL: no hook gets to close the record
    process.wait()
    killed = tmp_path / "data/08_reporting/runs/killed-run.json"
    assert json.loads(killed.read_text())["status"] == "running"

    run(tmp_path, NODES, RunRecordHooks(db_url=url), url)

    record = json.loads(killed.read_text())
    assert record["status"] == "abandoned"
    assert f"pid {process.pid}" in record["error"]
    assert record["abandoned_by"] == "2026-11-25T18.00.00.000Z"
    rows = {row["run_id"]: row for row in stored_rows(url)}
    assert rows["killed-run"]["status"] == "abandoned"
    assert rows["2026-11-25T18.00.00.000Z"]["status"] == "success"


def _running(run_id: str, host: str, pid: int, hours_ago: float) -> dict[str, Any]:
    """A running record as a run stores it when it starts."""
    started = datetime.now(UTC) - timedelta(hours=hours_ago)
    return {
        "run_id": run_id,
        "pipeline": "daily",
        "env": "local",
        "status": "running",
        "started_at": started.isoformat(),
        "pid": pid,
        "host": host,
        "process": process_identity(pid) if host == socket.gethostname() else None,
    }


def test_only_runs_that_cannot_finish_are_abandoned(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/runs.db"
    upgrade_database(url)
    store = RunStore(tmp_path / "runs", url)
    here = socket.gethostname()
    records = [
        _running("alive-here", here, os.getpid(), hours_ago=30),  # too old, by the limit
        _running("alive-recent", here, os.getpid(), hours_ago=1),
        _running("other-host-recent", "elsewhere", 1, hours_ago=1),
        _running("other-host-old", "elsewhere", 1, hours_ago=30),
        _running("current", here, 999_999_999, hours_ago=0),  # the run doing the check
    ]
    for record in records:
        store.save(record)
    (tmp_path / "runs/other-host-old.json").unlink()  # only its row is left: still found
    abandoned = store.abandon_orphans("current", datetime.now(UTC), timedelta(hours=24))
    assert sorted(abandoned) == ["alive-here", "other-host-old"]
    statuses = {row["run_id"]: row["status"] for row in stored_rows(url)}
    assert statuses == {
        "alive-here": "abandoned",
        "alive-recent": "running",
        "other-host-recent": "running",
        "other-host-old": "abandoned",
        "current": "running",
    }
    assert json.loads((tmp_path / "runs/other-host-old.json").read_text())["status"] == "abandoned"


def test_a_dead_pid_on_this_host_is_abandoned_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/runs.db"
    upgrade_database(url)
    store = RunStore(tmp_path / "runs", url)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store.save(_running("dead", socket.gethostname(), dead.pid, hours_ago=0))
    assert store.abandon_orphans("next", datetime.now(UTC), timedelta(hours=24)) == ["dead"]


def test_records_older_than_the_retention_are_pruned(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/runs.db"
    upgrade_database(url)
    store = RunStore(tmp_path / "runs", url)
    old, recent = datetime(2024, 1, 1, tzinfo=UTC), datetime.now(UTC)
    for run_id, started in (("old-run", old), ("recent-run", recent)):
        store.save(
            {
                "run_id": run_id,
                "pipeline": "daily",
                "status": "success",
                "started_at": started.isoformat(),
                "finished_at": started.isoformat(),
            }
        )
    os.utime(tmp_path / "runs/old-run.json", (old.timestamp(), old.timestamp()))

    assert store.prune(recent - timedelta(days=365)) == 1

    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["recent-run.json"]
    assert [row["run_id"] for row in stored_rows(url)] == ["recent-run"]


@pytest.mark.parametrize(
    ("configured", "expected"), [(None, "kedro-run"), ("dag-run-7", "dag-run-7")]
)
def test_the_run_context_names_the_schedulers_run_when_it_gives_one(configured, expected) -> None:
    catalog = DataCatalog(
        {"run_context": MemoryDataset(), "params:run.id": MemoryDataset(configured)}
    )
    RunContextHooks().before_pipeline_run({"run_id": "kedro-run", "env": "sample"}, catalog)
    assert catalog.load("run_context")["run_id"] == expected
    assert catalog.load("run_context")["env"] == "sample"
