"""pipeline_runs.status may be `abandoned`: a run whose process died while it was `running`.

The next run marks such orphaned records (process gone, or older than the configured limit) as
`abandoned`, in the row and in its JSON record. This extends the check `valid_run_status`; on
SQLite, whose CHECK constraints cannot be altered, the table is rebuilt (Alembic batch mode) with
its rows and index.

Revision ID: 0004_abandoned_run_status
Revises: 0003_stock_features_intraday
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_abandoned_run_status"
down_revision: str | Sequence[str] | None = "0003_stock_features_intraday"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "pipeline_runs"
CHECK = "valid_run_status"
STATUSES_BEFORE = ("running", "success", "failed")
STATUSES = (*STATUSES_BEFORE, "abandoned")


def _condition(statuses: Sequence[str]) -> str:
    """The check's SQL: status is one of the given values."""
    return f"status IN ({', '.join(repr(status) for status in statuses)})"


def _table(statuses: Sequence[str]) -> sa.Table:
    """pipeline_runs as of 0002, with the status check allowing the given values."""
    table = sa.Table(
        TABLE,
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
        sa.CheckConstraint(_condition(statuses), name=CHECK),
    )
    sa.Index("idx_pipeline_runs_started", table.c.started_at.desc())
    return table


def _allow(statuses: Sequence[str]) -> None:
    """Replace the status check: altered in place on PostgreSQL, the table rebuilt on SQLite."""
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(TABLE, copy_from=_table(statuses), recreate="always"):
            pass
        return
    op.drop_constraint(CHECK, TABLE, type_="check")
    op.create_check_constraint(CHECK, TABLE, _condition(statuses))


def upgrade() -> None:
    """Allow `abandoned`."""
    _allow(STATUSES)


def downgrade() -> None:
    """Back to running/success/failed; abandoned rows become failed first."""
    op.execute(sa.text(f"UPDATE {TABLE} SET status = 'failed' WHERE status = 'abandoned'"))
    _allow(STATUSES_BEFORE)
