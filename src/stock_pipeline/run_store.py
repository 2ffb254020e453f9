"""Where run records are kept: a JSON file per run and a row of `pipeline_runs`."""

import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from stock_pipeline.atomic import write_json_atomically
from stock_pipeline.contract import PIPELINE_RUNS
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
