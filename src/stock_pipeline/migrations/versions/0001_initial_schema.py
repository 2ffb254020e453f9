"""Initial schema: stock_features (constraints, indexes, updated_at trigger, views), model_health_alerts.

Every object is created only when absent, so a database that already holds the seed's schema is
adopted as it is. Prices are DOUBLE PRECISION: the pipeline's float64 values round-trip exactly,
so comparing stored and new values (the upsert's IS DISTINCT FROM) never sees a rounding change.

Views:
- latest_stock_data: each ticker's row at its latest date (every stock_features column).
- daily_market_summary: one row per date with tickers (rows that day), advancers and decliners
  (daily_return > 0 and < 0), avg_daily_return, total_volume, avg_rsi_14 and avg_volatility.

Revision ID: 0001_initial_schema
Revises:
Create Date: 2025-01-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import CreateIndex, CreateTable

revision: str = "0001_initial_schema"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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
VALUE_COLUMNS = ("ticker", "date", *PRICE_COLUMNS, "adj_close", "volume", *INDICATOR_COLUMNS)

# The current time per dialect; SQLite keeps milliseconds so that updated_at visibly moves.
NOW = {"postgresql": "now()", "sqlite": "(strftime('%Y-%m-%d %H:%M:%f', 'now'))"}

VIEWS = {
    "latest_stock_data": """
        SELECT s.*
        FROM stock_features AS s
        JOIN (SELECT ticker, MAX(date) AS date FROM stock_features GROUP BY ticker) AS latest
          ON latest.ticker = s.ticker AND latest.date = s.date""",
    "daily_market_summary": """
        SELECT date,
               COUNT(*) AS tickers,
               SUM(CASE WHEN daily_return > 0 THEN 1 ELSE 0 END) AS advancers,
               SUM(CASE WHEN daily_return < 0 THEN 1 ELSE 0 END) AS decliners,
               AVG(daily_return) AS avg_daily_return,
               SUM(volume) AS total_volume,
               AVG(rsi_14) AS avg_rsi_14,
               AVG(volatility) AS avg_volatility
        FROM stock_features
        GROUP BY date""",
}

POSTGRESQL_TRIGGER = (
    """
    CREATE OR REPLACE FUNCTION update_updated_at_column() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW IS DISTINCT FROM OLD THEN
            NEW.updated_at = now();
        END IF;
        RETURN NEW;
    END;
    $$""",
    """
    CREATE OR REPLACE TRIGGER update_stock_features_updated_at
    BEFORE UPDATE ON stock_features
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()""",
)

SQLITE_TRIGGER = f"""
    CREATE TRIGGER IF NOT EXISTS update_stock_features_updated_at
    AFTER UPDATE ON stock_features
    FOR EACH ROW WHEN ({", ".join(f"OLD.{c}" for c in VALUE_COLUMNS)})
                   IS NOT ({", ".join(f"NEW.{c}" for c in VALUE_COLUMNS)})
    BEGIN
        UPDATE stock_features SET updated_at = {NOW["sqlite"]}
        WHERE ticker = NEW.ticker AND date = NEW.date;
    END"""


def _tables(now: str) -> tuple[sa.Table, sa.Table]:
    """stock_features and model_health_alerts, with `now` as the timestamps' default."""
    metadata = sa.MetaData()
    stock_features = sa.Table(
        "stock_features",
        metadata,
        sa.Column("ticker", sa.String(20), primary_key=True),
        sa.Column("date", sa.Date, primary_key=True),
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
    columns = stock_features.c
    sa.Index("idx_date_ticker", columns.date.desc(), columns.ticker)
    sa.Index("idx_ticker_date", columns.ticker, columns.date.desc())
    sa.Index("idx_created_at", columns.created_at)
    sa.Index("idx_updated_at", columns.updated_at)

    alerts = sa.Table(
        "model_health_alerts",
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("ticker", sa.String(20), nullable=False),
        sa.Column("feature", sa.String(64), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("p_value", sa.DOUBLE_PRECISION),
        sa.Column("statistic", sa.DOUBLE_PRECISION),
        sa.Column("alpha", sa.DOUBLE_PRECISION),
        sa.Column("baseline_sample_size", sa.Integer),
        sa.Column("current_sample_size", sa.Integer),
        sa.Column("method", sa.String(32)),
        sa.Column(
            "detected_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text(now)
        ),
        sa.UniqueConstraint("ticker", "feature", "as_of", name="uq_alerts_ticker_feature_as_of"),
    )
    sa.Index("idx_alerts_ticker_detected", alerts.c.ticker, alerts.c.detected_at.desc())
    return stock_features, alerts


def upgrade() -> None:
    """Create the tables, indexes, trigger and views that are absent."""
    dialect = op.get_bind().dialect.name
    for table in _tables(NOW[dialect]):
        op.execute(CreateTable(table, if_not_exists=True))
        for index in sorted(table.indexes, key=lambda index: index.name):
            op.execute(CreateIndex(index, if_not_exists=True))
    if dialect == "postgresql":
        for statement in POSTGRESQL_TRIGGER:
            op.execute(statement)
        for name, query in VIEWS.items():
            op.execute(f"CREATE OR REPLACE VIEW {name} AS {query}")
    else:
        op.execute(SQLITE_TRIGGER)
        for name, query in VIEWS.items():
            op.execute(f"CREATE VIEW IF NOT EXISTS {name} AS {query}")


def downgrade() -> None:
    """Drop everything this revision creates (only ever run by hand)."""
    for name in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS model_health_alerts")
    op.execute("DROP TABLE IF EXISTS stock_features")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS update_updated_at_column()")
