"""Strict patterns for what clients send, and turning database rows into JSON-ready records."""

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

import pandas as pd
from pydantic import BeforeValidator

from stock_pipeline.contract import TICKER_PATTERN

COLUMN_NAME = r"[a-z][a-z0-9_]{0,39}"
MAX_COLUMNS = 64
COLUMNS_PATTERN = rf"^{COLUMN_NAME}(,{COLUMN_NAME}){{0,{MAX_COLUMNS - 1}}}$"
TICKERS_PATTERN = rf"^{TICKER_PATTERN[1:-1]}(,{TICKER_PATTERN[1:-1]})*$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,99}$"
ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _iso_date_text(value: Any) -> Any:
    """Only YYYY-MM-DD text passes: pydantic alone would also read `0` as a Unix time."""
    if isinstance(value, str) and not ISO_DATE.match(value):
        raise ValueError("dates are written YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_text)]


def columns_pattern(names: tuple[str, ...]) -> str:
    """COLUMNS_PATTERN narrowed to these names: what the OpenAPI document promises."""
    choice = "|".join(re.escape(name) for name in names if re.fullmatch(COLUMN_NAME, name))
    return rf"^(?:{choice})(?:,(?:{choice})){{0,{MAX_COLUMNS - 1}}}$"


def as_utc(value: datetime) -> datetime:
    """A timestamp in UTC with its offset; naive ones (as SQLite returns them) are UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def as_date(value: Any) -> date | None:
    """A date from a SQL value (date, datetime, or text as SQLite returns it)."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    return pd.Timestamp(value).date()


def jsonable(value: Any) -> Any:
    """A SQL value as a JSON-ready Python value."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    return value


def sql_record(row: dict[str, Any]) -> dict[str, Any]:
    """A database row with a proper `date` and JSON-ready values."""
    record = {key: jsonable(value) for key, value in row.items()}
    if "date" in row:
        record["date"] = as_date(row["date"])
    return record
