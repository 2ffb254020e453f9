"""One run at a time: the data folder's lock and PostgreSQL's advisory lock."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline, node

from stock_pipeline.hooks import RunLockHooks
from stock_pipeline.run_lock import DatabaseLock, FolderLock, Holder, RunLockedError

HOLD_THE_LOCK = """
import sys, time
from pathlib import Path
from stock_pipeline.run_lock import FolderLock, Holder
lock = FolderLock(Path(sys.argv[1]))
lock.acquire(Holder.me("killed-run"), timeout=0)
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_run_waits_then_fails_naming_the_holder(tmp_path: Path) -> None:
    first = FolderLock(tmp_path)
    first.acquire(Holder.me("first-run"), timeout=0)
    with pytest.raises(RunLockedError, match=rf"run first-run \(pid {os.getpid()} on .*started"):
        FolderLock(tmp_path).acquire(Holder.me("second-run"), timeout=0.6)
    first.release()
    FolderLock(tmp_path).acquire(Holder.me("second-run"), timeout=0)  # free again


def test_the_lock_of_a_killed_run_is_taken_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    with pytest.raises(RunLockedError, match="killed-run"):
        FolderLock(tmp_path).acquire(Holder.me("next-run"), timeout=0)
    holder.send_signal(signal.SIGKILL)
    holder.wait()

    FolderLock(tmp_path).acquire(Holder.me("next-run"), timeout=0)

    assert "Taking over the lock left by run killed-run" in caplog.text
    assert "no longer running" in caplog.text


def test_the_hook_stops_a_locked_run_with_status_75_and_no_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    held = FolderLock(tmp_path)
    held.acquire(Holder.me("running-run"), timeout=0)
    catalog = DataCatalog({"params:run.lock_timeout_seconds": MemoryDataset(0.2)})
    pipeline = Pipeline([node(lambda: 1, None, "one", name="one_node")])
    run_params = {"run_id": "late-run", "project_path": str(tmp_path)}

    with pytest.raises(SystemExit) as stopped:
        RunLockHooks(db_url="sqlite://").before_pipeline_run(run_params, pipeline, catalog)

    assert stopped.value.code == RunLockHooks.LOCKED_EXIT_STATUS
    assert "Another run holds" in caplog.text and "running-run" in caplog.text
    held.release()


@pytest.mark.postgres
def test_runs_on_other_machines_wait_on_the_advisory_lock(pg_url: str) -> None:
    first = DatabaseLock(pg_url)
    first.acquire(Holder.me("pg-run"), timeout=0)
    try:
        with pytest.raises(RunLockedError, match="stock_pipeline run pg-run"):
            DatabaseLock(pg_url).acquire(Holder.me("other-run"), timeout=0.6)
    finally:
        first.release()
    second = DatabaseLock(pg_url)
    second.acquire(Holder.me("other-run"), timeout=0)
    second.release()
