"""The contract: one home for the facts that pipelines, datasets, the API, benchmarks and tests share.

The column sets of each layer, the run and ticker statuses, the ticker syntax, the SQLAlchemy
metadata of the live tables, the freshness rule and the quality score's scale. Migrations are
frozen snapshots of the schema and do not import this module; a test checks that a database
migrated to head matches `METADATA`.
"""

import hashlib
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum

import pandas as pd
import sqlalchemy as sa

from stock_pipeline import trading_calendar

# --- columns of the layers -------------------------------------------------------------------
KEY = ("ticker", "date")  # one row per (ticker, date) in silver, primary and gold
OHLC = ("open", "high", "low", "close")
PRICE_VALUES = (*OHLC, "adj_close")  # every price of a bar
BAR_VALUES = (*PRICE_VALUES, "volume")  # every number of a bar
CORPORATE_ACTIONS = ("dividends", "stock_splits")
BRONZE_COLUMNS = ("date", *BAR_VALUES, *CORPORATE_ACTIONS)  # a source's bars, one file per ticker
PRICES_COLUMNS = (*KEY, *BAR_VALUES)  # `prices` (primary) and the first columns of silver and gold
# a session of conf/base/calendar.yml's special_sessions (Muhurat, Budget day...): a clean bar
SPECIAL_SESSION_FLAG = "is_special_session"
SESSION_FLAG_COLUMNS = (SPECIAL_SESSION_FLAG,)
FLAG_COLUMNS = (
    "is_filled",
    "is_outlier",
    "is_ghost_bar",
    "is_suspected_split",
    *SESSION_FLAG_COLUMNS,
)
SILVER_COLUMNS = (*PRICES_COLUMNS, *FLAG_COLUMNS)  # `clean_prices`
# `features` (gold) starts with these; further configured indicators follow
INDICATOR_BASE_COLUMNS = (
    "daily_return",
    "sma_20",
    "sma_50",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "volatility",
)
FEATURES_BASE_COLUMNS = (*PRICES_COLUMNS, *INDICATOR_BASE_COLUMNS)
# gold ends with the session flags, after any further configured indicators
RAW_COLUMNS = tuple(f"raw_{column}" for column in ("date", *BAR_VALUES))  # bronze text as read
QUARANTINE_COLUMNS = (
    "ticker",
    "date",
    "stage",
    "rule",
    "reason",
    *RAW_COLUMNS,
    "run_id",
    "quarantined_at",
)
QUARANTINE_KEY = ("ticker", "raw_date", "stage", "rule", *RAW_COLUMNS[1:])
# `drift_results`: one row per (as_of, ticker, feature); `statistic`/`p_value` test the current
# window against the baseline (the regime signal), `shock_*` against the recent conditional scale
# (calibrated only); `drift` is the feature's final decision (its ticker drifted and it drove
# that), `ticker_p_value` the ticker's combined p-value, `kind` which signals saw the change
# (shock, regime or shock+regime)
DRIFT_RESULT_COLUMNS = (
    "as_of",
    "ticker",
    "feature",
    "method",
    "statistic",
    "p_value",
    "shock_statistic",
    "shock_p_value",
    "alpha",
    "baseline_sample_size",
    "current_sample_size",
    "drift",
    "ticker_p_value",
    "ticker_drift",
    "kind",
    "driver",
    "run_id",
)


# --- versions --------------------------------------------------------------------------------
def fingerprint_features(features: pd.DataFrame) -> str:
    """A features frame's content fingerprint: the data version of a frame that comes from no
    Delta table (a Parquet file, a test's frame); the gold table's own version names it otherwise
    (training's data_version, the API's X-Data-Version)."""
    ordered = features.sort_values(list(KEY), kind="stable", ignore_index=True)
    hashes = pd.util.hash_pandas_object(ordered, index=False).to_numpy()
    return "features-sha256:" + hashlib.sha256(hashes.tobytes()).hexdigest()[:16]


# --- table layout of silver, primary and gold --------------------------------------------------
# Each Delta table is partitioned by a stable hash bucket of the ticker (its `bucket` column, which
# loading drops): a corporate-action refresh rewrites one bucket, a ticker subset reads only its
# buckets. Changing the bucket count means a rebuild (`--params=features.rebuild=true`).
BUCKET_COLUMN = "bucket"
TICKER_BUCKETS = 16


@dataclass(frozen=True)
class BronzeAppend:
    """Bronze rows that follow a ticker's last stored bar: saved by appending them to its file
    (a DataFrame saved to bronze replaces the ticker's whole file instead)."""

    rows: pd.DataFrame


def ticker_bucket(ticker: str) -> int:
    """The partition of a ticker: CRC-32 of its symbol modulo TICKER_BUCKETS (stable across runs)."""
    return zlib.crc32(ticker.encode()) % TICKER_BUCKETS


# --- statuses --------------------------------------------------------------------------------
class TickerStatus(StrEnum):
    """What a run did to one ticker: its bronze data (ingestion report, run records), and OK or
    FAILED for its clean rows (quality report)."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REFRESHED = "refreshed"  # the whole history was refetched: a corporate action, or `refetch`
    BACKFILLED = (
        "backfilled"  # bars before the first stored one were fetched (start_date moved earlier)
    )
    FAILED = "failed"
    OK = "ok"


class RunStatus(StrEnum):
    """The state of a run in `pipeline_runs` and its JSON record."""

    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    ABANDONED = "abandoned"  # its process died while running (killed, OOM, reboot)


FINISHED_RUN_STATUSES = (RunStatus.SUCCESS, RunStatus.FAILED)

# --- tickers ---------------------------------------------------------------------------------
TICKER_LENGTH = 20  # the longest symbol with its suffix: the width of the SQL ticker columns
# A Yahoo NSE/BSE symbol: upper-case letters, digits, &, _ and -, then the exchange suffix.
TICKER_PATTERN = rf"^[A-Z0-9][A-Z0-9&_-]{{0,{TICKER_LENGTH - 4}}}\.(NS|BO)$"
TICKER_SYNTAX = re.compile(TICKER_PATTERN)

# --- quality ---------------------------------------------------------------------------------
QUALITY_SCORE_MAX = 100.0  # quality_score in the quality report runs from 0 to this

# --- live SQL tables -------------------------------------------------------------------------
METADATA = sa.MetaData()
_STAMP = sa.DateTime(timezone=True)
_VALID_OHLC = "high >= low AND high >= open AND high >= close AND low <= open AND low <= close"


def _bar_table(name: str, time_column: sa.Column, index_prefix: str) -> sa.Table:
    """A table of feature rows keyed on (ticker, time) with the OHLC, RSI and volume checks."""
    table = sa.Table(
        name,
        METADATA,
        sa.Column("ticker", sa.String(TICKER_LENGTH), primary_key=True),
        time_column,
        *(sa.Column(column, sa.DOUBLE_PRECISION, nullable=False) for column in OHLC),
        sa.Column("adj_close", sa.DOUBLE_PRECISION),
        sa.Column("volume", sa.BigInteger, nullable=False),
        *(sa.Column(column, sa.DOUBLE_PRECISION) for column in INDICATOR_BASE_COLUMNS),
        *(
            sa.Column(flag, sa.Boolean, nullable=False, server_default=sa.false())
            for flag in SESSION_FLAG_COLUMNS
        ),
        # stamped by the database (defaults and an update trigger, defined by the migrations)
        sa.Column("created_at", _STAMP, nullable=False),
        sa.Column("updated_at", _STAMP, nullable=False),
        sa.CheckConstraint(_VALID_OHLC, name="valid_ohlc"),
        sa.CheckConstraint("rsi_14 IS NULL OR (rsi_14 >= 0 AND rsi_14 <= 100)", name="valid_rsi"),
        sa.CheckConstraint("volume >= 0", name="positive_volume"),
    )
    time = table.c[time_column.name]
    sa.Index(f"{index_prefix}_{time.name}_ticker", time.desc(), table.c.ticker)
    sa.Index(f"{index_prefix}_ticker_{time.name}", table.c.ticker, time.desc())
    sa.Index(f"{index_prefix}_created_at", table.c.created_at)
    sa.Index(f"{index_prefix}_updated_at", table.c.updated_at)
    return table


STOCK_FEATURES = _bar_table("stock_features", sa.Column("date", sa.Date, primary_key=True), "idx")
STOCK_FEATURES_INTRADAY = _bar_table(
    "stock_features_intraday", sa.Column("timestamp", _STAMP, primary_key=True), "idx_intraday"
)

MODEL_HEALTH_ALERTS = sa.Table(
    "model_health_alerts",
    METADATA,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("ticker", sa.String(TICKER_LENGTH), nullable=False),
    sa.Column("feature", sa.String(64), nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("p_value", sa.DOUBLE_PRECISION),  # the regime signal's, as in drift_results
    sa.Column("statistic", sa.DOUBLE_PRECISION),
    sa.Column("alpha", sa.DOUBLE_PRECISION),
    sa.Column("baseline_sample_size", sa.Integer),
    sa.Column("current_sample_size", sa.Integer),
    sa.Column("method", sa.String(32)),
    sa.Column("detected_at", _STAMP, nullable=False),  # stamped by the database on insert
    sa.Column("shock_statistic", sa.DOUBLE_PRECISION),
    sa.Column("shock_p_value", sa.DOUBLE_PRECISION),
    sa.Column("kind", sa.String(16)),  # shock, regime or shock+regime
    sa.UniqueConstraint("ticker", "feature", "as_of", name="uq_alerts_ticker_feature_as_of"),
)
# what the drift pipeline writes to model_health_alerts (the database adds id and detected_at)
DRIFT_ALERT_COLUMNS = tuple(
    column.name
    for column in MODEL_HEALTH_ALERTS.columns
    if column.name not in {"id", "detected_at"}
)
sa.Index(
    "idx_alerts_ticker_detected",
    MODEL_HEALTH_ALERTS.c.ticker,
    MODEL_HEALTH_ALERTS.c.detected_at.desc(),
)

PIPELINE_RUNS = sa.Table(
    "pipeline_runs",
    METADATA,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("pipeline", sa.String(200), nullable=False),
    sa.Column("env", sa.String(64)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", _STAMP, nullable=False),
    sa.Column("finished_at", _STAMP),
    sa.Column("duration_seconds", sa.DOUBLE_PRECISION),
    sa.Column("node_count", sa.Integer),
    sa.Column("rows_in", sa.BigInteger),
    sa.Column("rows_out", sa.BigInteger),
    sa.Column("tickers_ok", sa.Integer),
    sa.Column("tickers_failed", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("record", sa.JSON),  # the whole JSON run record
    sa.CheckConstraint(
        f"status IN ({', '.join(repr(str(status)) for status in RunStatus)})",
        name="valid_run_status",
    ),
)
sa.Index("idx_pipeline_runs_started", PIPELINE_RUNS.c.started_at.desc())

# The recipe each SQL table of features was last written under (stock_pipeline.recipes): a run
# whose configured recipe differs rewrites every row and empties the columns it no longer has.
TABLE_RECIPES = sa.Table(
    "table_recipes",
    METADATA,
    sa.Column("table_name", sa.String(64), primary_key=True),
    sa.Column("fingerprint", sa.String(32), nullable=False),
    sa.Column("recipe", sa.Text, nullable=False),  # Recipe.to_json()
    sa.Column("updated_at", _STAMP, nullable=False),
)

# Each ticker's latest row with every column of stock_features; PostgreSQL fixes a view's columns
# when it is created, so the view is replaced whenever a column is added.
LATEST_STOCK_DATA_VIEW = (
    "latest_stock_data",
    """SELECT s.*
        FROM stock_features AS s
        JOIN (SELECT ticker, MAX(date) AS date FROM stock_features GROUP BY ticker) AS latest
          ON latest.ticker = s.ticker AND latest.date = s.date""",
)


# --- freshness -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Freshness:
    """How far a dataset lags the NSE calendar: the rule the quality report and the API share."""

    last_session: date | None
    expected_session: date
    missing_sessions: int | None
    hours_behind: float | None  # hours since the close of the first missing session

    def is_stale(self, max_hours: float) -> bool:
        """True when there is no data, or a closed session has been missing for over max_hours."""
        return self.hours_behind is None or self.hours_behind > max_hours


def freshness(
    last_session: date | pd.Timestamp | None,
    now: datetime,
    end_date: date | str | None = None,
) -> Freshness:
    """Hours since the close of the first NSE session (up to end_date) missing from the data."""
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    expected = trading_calendar.expected_last_session(end_date, now)
    if last_session is None or pd.isna(last_session):
        return Freshness(None, expected.date(), None, None)
    last = pd.Timestamp(last_session).normalize()
    missing = trading_calendar.nse_sessions(last + pd.Timedelta(days=1), expected)
    if missing.empty:
        return Freshness(last.date(), expected.date(), 0, 0.0)
    close = trading_calendar.session_close(missing[0])
    hours = max((pd.Timestamp(now) - close).total_seconds() / 3600, 0.0)
    return Freshness(last.date(), expected.date(), len(missing), round(hours, 2))
