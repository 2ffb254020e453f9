"""pipeline_runs: one row per Kedro run, written by stock_pipeline.run_records.RunRecordHooks.

A row is inserted as `running` when the run starts and updated to `success` or `failed` when it
ends; `record` holds the full JSON record (per-node durations and rows, ticker outcomes), the same
as data/08_reporting/runs/<run_id>.json. /mlops/pipeline-metrics and /mlops/system-health read it.

Revision ID: 0002_pipeline_runs
Revises: 0001_initial_schema
Create Date: 2025-01-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import CreateIndex, CreateTable

revision: str = "0002_pipeline_runs"
down_revision: str | Sequence[str] | None = "0001_initial_schema"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _table() -> sa.Table:
    """The pipeline_runs table with its index on started_at (newest first)."""
    table = sa.Table(
        "pipeline_runs",
        sa.MetaData(),
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("pipeline", sa.String(200), nullable=False),
        sa.Column("env", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("duration_seconds", sa.DOUBLE_PRECISION),
        sa.Column("node_count", sa.Integer),
        sa.Column("rows_in", sa.BigInteger),
        sa.Column("rows_out", sa.BigInteger),
        sa.Column("tickers_ok", sa.Integer),
        sa.Column("tickers_failed", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("record", sa.JSON),
        sa.CheckConstraint("status IN ('running', 'success', 'failed')", name="valid_run_status"),
    )
    sa.Index("idx_pipeline_runs_started", table.c.started_at.desc())
    return table


def upgrade() -> None:
    """Create pipeline_runs and its index when absent."""
    table = _table()
    op.execute(CreateTable(table, if_not_exists=True))
    for index in table.indexes:
        op.execute(CreateIndex(index, if_not_exists=True))


def downgrade() -> None:
    """Drop pipeline_runs (only ever run by hand)."""
    op.execute("DROP TABLE IF EXISTS pipeline_runs")
