"""model_health_alerts gets the drift detector's two signals: `shock_statistic` and
`shock_p_value` (the current window against the recent conditional scale, beside `statistic` and
`p_value`, now the regime's: against the baseline) and `kind` (shock, regime or shock+regime), so
that an alert tells a volatility spike this week from a different market since February. Alerts
stored before keep them empty.

Revision ID: 0007_alert_kinds
Revises: 0006_table_recipes
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_alert_kinds"
down_revision: str | Sequence[str] | None = "0006_table_recipes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "model_health_alerts"
COLUMNS = (
    sa.Column("shock_statistic", sa.DOUBLE_PRECISION),
    sa.Column("shock_p_value", sa.DOUBLE_PRECISION),
    sa.Column("kind", sa.String(16)),
)


def upgrade() -> None:
    """Add the columns where they are absent."""
    present = {column["name"] for column in sa.inspect(op.get_bind()).get_columns(TABLE)}
    for column in COLUMNS:
        if column.name not in present:
            op.add_column(TABLE, column.copy())


def downgrade() -> None:
    """Drop the columns (only ever run by hand)."""
    with op.batch_alter_table(TABLE) as batch:
        for column in COLUMNS:
            batch.drop_column(column.name)
