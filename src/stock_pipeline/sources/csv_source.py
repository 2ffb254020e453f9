"""Prices from a folder of yfinance-style CSV files named <TICKER>.csv.

Daily files have a `Date` column; intraday files (`yf.download(interval="5m")`) a `Datetime` one,
often with an offset (`2024-06-04 09:15:00+05:30`): such times are rewritten as naive
Asia/Kolkata wall-clock time, the bronze convention; every other value stays as written.
"""

import csv
from datetime import date
from pathlib import Path

import pandas as pd

from stock_pipeline.contract import BAR_VALUES, BRONZE_COLUMNS
from stock_pipeline.sources.base import NoDataError, SourceError, bar_spacing
from stock_pipeline.trading_calendar import NSE_TIMEZONE

# adj_close is optional: old exports and auto-adjusted downloads have none
REQUIRED_COLUMNS = ["date", *(column for column in BAR_VALUES if column != "adj_close")]


def _column_name(header: str) -> str:
    """yfinance header text to our column name: 'Adj Close' -> adj_close, 'Stock Splits' -> stock_splits."""
    return header.strip().lower().replace(" ", "_")


def _is_multiheader(first_lines: list[list[str]]) -> bool:
    """True for the three-line Price / Ticker / Date header that yfinance >= 0.2.51 writes."""
    return (
        len(first_lines) >= 3
        and first_lines[0][:1] == ["Price"]
        and first_lines[1][:1] == ["Ticker"]
        and first_lines[2][:1] in (["Date"], ["Datetime"])
    )


def _exchange_times(dates: pd.Series) -> pd.Series:
    """Date text with a UTC offset rewritten as naive Asia/Kolkata time; other text unchanged."""
    with_offset = dates.str.contains(r"(?:[+-]\d\d:?\d\d|Z)$", regex=True)
    if not with_offset.any():
        return dates
    stamps = pd.to_datetime(dates[with_offset], errors="coerce", utc=True, format="mixed")
    local = stamps.dt.tz_convert(NSE_TIMEZONE).dt.strftime("%Y-%m-%d %H:%M:%S")
    return dates.mask(with_offset & stamps.reindex(dates.index).notna(), local)


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
    frame = frame.rename(columns={"datetime": "date"})
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise SourceError(f"{path.name} lacks columns {missing}; has {list(frame.columns)}")
    if "adj_close" not in frame.columns:
        frame["adj_close"] = frame["close"]
    for optional in ("dividends", "stock_splits"):
        if optional not in frame.columns:
            frame[optional] = ""
    frame["date"] = _exchange_times(frame["date"])
    return frame[list(BRONZE_COLUMNS)]


class CSVSource:
    """Reads `<csv_dir>/<TICKER>.csv`; values stay text so that cleaning sees them as written.

    A file holds bars of one interval; a file whose bars are not `interval` apart is an error
    (a folder of 5m files cannot answer for 15m bars).
    """

    sends_requests = False

    def __init__(self, csv_dir: str | Path, interval: str = "1d"):
        self.csv_dir = Path(csv_dir)
        self.interval = interval

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        """Rows of the days start to end inclusive (any time of day); rows whose date does not
        parse are kept for cleaning."""
        frame = read_yfinance_csv(self.csv_dir / f"{ticker}.csv")
        dates = pd.to_datetime(frame["date"], errors="coerce", format="mixed")
        spacing = bar_spacing(dates)
        if spacing not in (None, self.interval):
            raise SourceError(
                f"{ticker}.csv holds {spacing} bars, but ingestion.interval is {self.interval}"
            )
        days = dates.dt.normalize()
        in_window = days.isna() | days.between(pd.Timestamp(start), pd.Timestamp(end))
        selected = frame[in_window].reset_index(drop=True)
        if selected.empty:
            raise NoDataError(f"{ticker}: no rows between {start} and {end}")
        return selected
