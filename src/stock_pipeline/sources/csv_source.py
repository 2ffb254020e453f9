"""Prices from a folder of yfinance-style CSV files named <TICKER>.csv."""

import csv
from datetime import date
from pathlib import Path

import pandas as pd

from stock_pipeline.sources.base import BRONZE_COLUMNS, NoDataError, SourceError

REQUIRED_COLUMNS = ["date", "open", "high", "low", "close", "volume"]


def _column_name(header: str) -> str:
    """yfinance header text to our column name: 'Adj Close' -> adj_close, 'Stock Splits' -> stock_splits."""
    return header.strip().lower().replace(" ", "_")


def _is_multiheader(first_lines: list[list[str]]) -> bool:
    """True for the three-line Price / Ticker / Date header that yfinance >= 0.2.51 writes."""
    return (
        len(first_lines) >= 3
        and first_lines[0][:1] == ["Price"]
        and first_lines[1][:1] == ["Ticker"]
        and first_lines[2][:1] == ["Date"]
    )


def read_yfinance_csv(path: Path) -> pd.DataFrame:
    """Read a yfinance CSV (classic or three-line header, any column order) as text, lossless."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            first_lines = [row for _, row in zip(range(3), csv.reader(handle), strict=False)]
        skiprows = [1, 2] if _is_multiheader(first_lines) else None
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skiprows=skiprows)
    except FileNotFoundError as error:
        raise NoDataError(f"no file {path}") from error
    except (UnicodeDecodeError, csv.Error, pd.errors.ParserError) as error:
        raise SourceError(f"unreadable CSV {path.name}: {error}") from error
    except pd.errors.EmptyDataError as error:
        raise NoDataError(f"empty file {path.name}") from error
    frame.columns = [_column_name(column) for column in frame.columns]
    if skiprows:
        frame = frame.rename(columns={"price": "date"})
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise SourceError(f"{path.name} lacks columns {missing}; has {list(frame.columns)}")
    if "adj_close" not in frame.columns:
        frame["adj_close"] = frame["close"]
    for optional in ("dividends", "stock_splits"):
        if optional not in frame.columns:
            frame[optional] = ""
    return frame[BRONZE_COLUMNS]


class CSVSource:
    """Reads `<csv_dir>/<TICKER>.csv`; values stay text so that cleaning sees them as written."""

    def __init__(self, csv_dir: str | Path):
        self.csv_dir = Path(csv_dir)

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        """Rows from start to end inclusive; rows whose date does not parse are kept for cleaning."""
        frame = read_yfinance_csv(self.csv_dir / f"{ticker}.csv")
        dates = pd.to_datetime(frame["date"], errors="coerce", format="mixed")
        in_window = dates.isna() | dates.between(pd.Timestamp(start), pd.Timestamp(end))
        selected = frame[in_window].reset_index(drop=True)
        if selected.empty:
            raise NoDataError(f"{ticker}: no rows between {start} and {end}")
        return selected
