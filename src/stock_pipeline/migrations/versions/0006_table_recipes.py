"""table_recipes: the recipe (stock_pipeline.recipes) each SQL feature table was last written
under, so that a run whose configured indicators differ rewrites every row.

Revision ID: 0006_table_recipes
Revises: 0005_special_session_flag
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_table_recipes"
down_revision: str | Sequence[str] | None = "0005_special_session_flag"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the table where it is absent."""
    if not sa.inspect(op.get_bind()).has_table("table_recipes"):
        op.create_table(
            "table_recipes",
            sa.Column("table_name", sa.String(64), primary_key=True),
            sa.Column("fingerprint", sa.String(32), nullable=False),
            sa.Column("recipe", sa.Text, nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        )


def downgrade() -> None:
    """Drop the table (only ever run by hand)."""
    op.drop_table("table_recipes")
