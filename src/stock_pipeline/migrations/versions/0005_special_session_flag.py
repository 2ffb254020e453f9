"""stock_features and stock_features_intraday get `is_special_session` (BOOLEAN NOT NULL DEFAULT
false): the gold flag of bars on NSE special sessions (conf/base/calendar.yml), so that every
column of `features` reaches SQL. Rows stored before keep false until a run rewrites them.

On PostgreSQL the view latest_stock_data (`SELECT s.*`, whose columns are fixed when it is
created) is replaced so that it shows the new column; on SQLite views are expanded when queried.

Revision ID: 0005_special_session_flag
Revises: 0004_abandoned_run_status
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_special_session_flag"
down_revision: str | Sequence[str] | None = "0004_abandoned_run_status"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMN = "is_special_session"
TABLES = ("stock_features", "stock_features_intraday")
LATEST_VIEW = """
    CREATE OR REPLACE VIEW latest_stock_data AS
    SELECT s.*
        FROM stock_features AS s
        JOIN (SELECT ticker, MAX(date) AS date FROM stock_features GROUP BY ticker) AS latest
          ON latest.ticker = s.ticker AND latest.date = s.date"""


def upgrade() -> None:
    """Add the flag where it is absent; refresh the PostgreSQL view."""
    bind = op.get_bind()
    schema = sa.inspect(bind)
    for table in TABLES:
        if COLUMN not in {column["name"] for column in schema.get_columns(table)}:
            op.add_column(
                table, sa.Column(COLUMN, sa.Boolean(), nullable=False, server_default=sa.false())
            )
    if bind.dialect.name == "postgresql":
        op.execute(LATEST_VIEW)


def downgrade() -> None:
    """Drop the flag (only ever run by hand)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP VIEW IF EXISTS latest_stock_data")
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column(COLUMN)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(LATEST_VIEW)
