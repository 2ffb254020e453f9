"""Strict patterns for what clients send, and turning database rows into JSON-ready records."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

COLUMNS_PATTERN = r"^[a-z][a-z0-9_]{0,39}(,[a-z][a-z0-9_]{0,39}){0,63}$"


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
        return value.isoformat()
    return value


def sql_record(row: dict[str, Any]) -> dict[str, Any]:
    """A database row with a proper `date` and JSON-ready values."""
    record = {key: jsonable(value) for key, value in row.items()}
    if "date" in row:
        record["date"] = as_date(row["date"])
    return record
