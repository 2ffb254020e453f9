"""stock_features_intraday: the intraday pipeline's 5m/15m feature rows, keyed by (ticker, timestamp).

The same columns, constraints and indexes as stock_features, with `timestamp` (the bar's start,
TIMESTAMP WITH TIME ZONE; the pipeline writes it in Asia/Kolkata) instead of `date`:
- primary key (ticker, timestamp); constraints valid_ohlc, valid_rsi (0..100), positive_volume;
- indexes (timestamp DESC, ticker), (ticker, timestamp DESC), created_at, updated_at;
- a trigger that sets updated_at when an update changes a value (the function
  update_updated_at_column() of 0001 on PostgreSQL).
Every object is created only when absent.

Revision ID: 0003_stock_features_intraday
Revises: 0002_pipeline_runs
Create Date: 2025-01-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import CreateIndex, CreateTable

revision: str = "0003_stock_features_intraday"
down_revision: str | Sequence[str] | None = "0002_pipeline_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "stock_features_intraday"
PRICE_COLUMNS = ("open", "high", "low", "close")
INDICATOR_COLUMNS = (
    "daily_return",
    "sma_20",
    "sma_50",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "volatility",
)
VALUE_COLUMNS = ("ticker", "timestamp", *PRICE_COLUMNS, "adj_close", "volume", *INDICATOR_COLUMNS)

NOW = {"postgresql": "now()", "sqlite": "(strftime('%Y-%m-%d %H:%M:%f', 'now'))"}

POSTGRESQL_TRIGGER = f"""
    CREATE OR REPLACE TRIGGER update_{TABLE}_updated_at
    BEFORE UPDATE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()"""


def _quoted(columns: Sequence[str], prefix: str) -> str:
    """`OLD."ticker", OLD."timestamp", ...`: `timestamp` is a keyword, so every name is quoted."""
    return ", ".join(f'{prefix}."{column}"' for column in columns)


SQLITE_TRIGGER = f"""
    CREATE TRIGGER IF NOT EXISTS update_{TABLE}_updated_at
    AFTER UPDATE ON {TABLE}
    FOR EACH ROW WHEN ({_quoted(VALUE_COLUMNS, "OLD")}) IS NOT ({_quoted(VALUE_COLUMNS, "NEW")})
    BEGIN
        UPDATE {TABLE} SET updated_at = {NOW["sqlite"]}
        WHERE ticker = NEW.ticker AND "timestamp" = NEW."timestamp";
    END"""


def _table(now: str) -> sa.Table:
    """stock_features_intraday with its constraints and indexes, `now` as the timestamps' default."""
    table = sa.Table(
        TABLE,
        sa.MetaData(),
        sa.Column("ticker", sa.String(20), primary_key=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), primary_key=True),
        *(sa.Column(name, sa.DOUBLE_PRECISION, nullable=False) for name in PRICE_COLUMNS),
        sa.Column("adj_close", sa.DOUBLE_PRECISION),
        sa.Column("volume", sa.BigInteger, nullable=False),
        *(sa.Column(name, sa.DOUBLE_PRECISION) for name in INDICATOR_COLUMNS),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text(now)
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text(now)
        ),
        sa.CheckConstraint(
            "high >= low AND high >= open AND high >= close AND low <= open AND low <= close",
            name="valid_ohlc",
        ),
        sa.CheckConstraint("rsi_14 IS NULL OR (rsi_14 >= 0 AND rsi_14 <= 100)", name="valid_rsi"),
        sa.CheckConstraint("volume >= 0", name="positive_volume"),
    )
    columns = table.c
    sa.Index("idx_intraday_timestamp_ticker", columns.timestamp.desc(), columns.ticker)
    sa.Index("idx_intraday_ticker_timestamp", columns.ticker, columns.timestamp.desc())
    sa.Index("idx_intraday_created_at", columns.created_at)
    sa.Index("idx_intraday_updated_at", columns.updated_at)
    return table


def upgrade() -> None:
    """Create the table, its indexes and its trigger when absent."""
    dialect = op.get_bind().dialect.name
    table = _table(NOW[dialect])
    op.execute(CreateTable(table, if_not_exists=True))
    for index in sorted(table.indexes, key=lambda index: index.name):
        op.execute(CreateIndex(index, if_not_exists=True))
    op.execute(POSTGRESQL_TRIGGER if dialect == "postgresql" else SQLITE_TRIGGER)


def downgrade() -> None:
    """Drop the table with its indexes and trigger (only ever run by hand)."""
    op.execute(f"DROP TABLE IF EXISTS {TABLE}")
