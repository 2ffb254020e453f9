"""In-memory snapshots of the pipeline's files, reloaded when a file changes on disk."""

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
from kedro.io import AbstractDataset
from pydantic_core import to_json

from stock_pipeline.contract import KEY, fingerprint_features
from stock_pipeline.versions import load_table, table_versions

logger = logging.getLogger(__name__)

T = TypeVar("T")
Signature = tuple[int, int]
Value = float | int | bool | str | None


@dataclass(frozen=True)
class TickerSpan:
    """Where one ticker's rows sit in the sorted arrays, with its first and last date."""

    start: int
    stop: int
    first_date: date
    last_date: date


@dataclass(frozen=True)
class Selection:
    """Rows of one ticker: [start, stop) in the sorted arrays."""

    ticker: str
    start: int
    stop: int


@dataclass(frozen=True)
class FeatureSnapshot:
    """One version of the feature dataset, sorted by ticker then date: an Arrow table for bulk
    downloads and one numpy array per column for JSON.

    `records` holds every row already serialized as a JSON object with all columns, so that the
    common request (every column) is answered by joining bytes, without building dicts.
    """

    version: str
    table: pa.Table
    columns: tuple[str, ...]
    dates: np.ndarray
    values: dict[str, np.ndarray]
    spans: dict[str, TickerSpan]
    records: np.ndarray

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, version: str) -> "FeatureSnapshot":
        """Index a features frame by ticker; keeps its column order after ticker and date."""
        frame = frame.assign(
            ticker=frame["ticker"].astype(str), date=_naive_days(frame["date"])
        ).sort_values(list(KEY), kind="stable")
        tickers = frame["ticker"].to_numpy()
        dates = frame["date"].to_numpy(dtype="datetime64[D]")
        columns = tuple(str(c) for c in frame.columns if c not in KEY)
        values = {c: _column_array(frame[c]) for c in columns}
        return cls(
            version=version,
            table=pa.Table.from_pandas(frame[[*KEY, *columns]], preserve_index=False),
            columns=columns,
            dates=dates,
            values=values,
            spans=_spans(tickers, dates),
            records=_json_records(dates, columns, values),
        )

    def _bounds(self, ticker: str, start: date | None, end: date | None) -> tuple[int, int]:
        """[lo, hi) of one ticker's rows within [start, end] in the sorted arrays."""
        span = self.spans[ticker]
        dates = self.dates[span.start : span.stop]
        lo = int(np.searchsorted(dates, np.datetime64(start, "D"))) if start else 0
        hi = (
            int(np.searchsorted(dates, np.datetime64(end, "D"), side="right"))
            if end
            else len(dates)
        )
        return span.start + lo, span.start + max(lo, hi)

    def _window(
        self, ticker: str, start: date | None, end: date | None, limit: int, descending: bool
    ) -> tuple[slice, slice] | None:
        """The rows of one ticker within [start, end], `limit` of them from the chosen end.

        Returns their slice in the sorted arrays and the step that puts them in the asked order,
        or None when there is none.
        """
        lo, hi = self._bounds(ticker, start, end)
        lo, hi = (max(lo, hi - limit), hi) if descending else (lo, min(hi, lo + limit))
        if hi <= lo:
            return None
        return slice(lo, hi), slice(None, None, -1 if descending else 1)

    def _encoded(self, picked: slice, order: slice, columns: tuple[str, ...]) -> list[bytes]:
        """The picked rows in order as JSON objects of date and the columns (NaN as null)."""
        if columns == self.columns:
            return list(self.records[picked][order])
        names = ("date", *columns)
        series = [np.datetime_as_string(self.dates[picked][order], unit="D").tolist()]
        series += [self.values[c][picked][order].tolist() for c in columns]
        return [
            to_json(dict(zip(names, row, strict=True)), inf_nan_mode="null")
            for row in zip(*series, strict=True)
        ]

    def rows(
        self,
        *,
        ticker: str,
        start: date | None,
        end: date | None,
        columns: tuple[str, ...],
        limit: int,
        descending: bool,
    ) -> list[dict[str, Value]]:
        """One ticker's rows within [start, end], `limit` of them from the chosen end, as records."""
        window = self._window(ticker, start, end, limit, descending)
        if window is None:
            return []
        picked, order = window
        series = [np.datetime_as_string(self.dates[picked][order], unit="D").tolist()]
        series += [self.values[c][picked][order].tolist() for c in columns]
        names = ("date", *columns)
        return [dict(zip(names, row, strict=True)) for row in zip(*series, strict=True)]

    def rows_json(
        self,
        *,
        ticker: str,
        start: date | None,
        end: date | None,
        columns: tuple[str, ...],
        limit: int,
        descending: bool,
    ) -> tuple[int, bytes]:
        """The same rows as `rows`, as a JSON array (NaN as null), and how many there are."""
        window = self._window(ticker, start, end, limit, descending)
        if window is None:
            return 0, b"[]"
        records = self._encoded(*window, columns)
        return len(records), b"[" + b",".join(records) + b"]"

    def select(
        self, tickers: tuple[str, ...], start: date | None, end: date | None, first_row: int = 0
    ) -> list[Selection]:
        """The rows of the tickers (all when none) within [start, end], from row `first_row` of
        the sorted arrays on, ticker by ticker in dataset order."""
        chosen = set(tickers) if tickers else self.spans
        selections = []
        for ticker in (t for t in self.spans if t in chosen):
            lo, hi = self._bounds(ticker, start, end)
            lo = max(lo, first_row)
            if lo < hi:
                selections.append(Selection(ticker, lo, hi))
        return selections

    def page_json(
        self, selections: list[Selection], columns: tuple[str, ...], limit: int
    ) -> tuple[list[bytes], int | None]:
        """Up to `limit` selected rows as JSON objects with ticker, date and the columns, and the
        row where the next page starts (None on the last page)."""
        rows: list[bytes] = []
        for selection in selections:
            if len(rows) == limit:
                return rows, selection.start
            stop = min(selection.stop, selection.start + limit - len(rows))
            prefix = b'{"ticker":' + to_json(selection.ticker) + b","
            encoded = self._encoded(slice(selection.start, stop), slice(None), columns)
            rows += [prefix + record[1:] for record in encoded]
            if stop < selection.stop:
                return rows, stop
        return rows, None

    def batches(
        self, selections: list[Selection], columns: tuple[str, ...], batch_rows: int
    ) -> Iterator[pa.Table]:
        """The selected rows with ticker, date and the columns, in tables of at most batch_rows
        rows (slices of the snapshot: memory stays bounded whatever is asked for)."""
        table = self.table.select([*KEY, *columns])
        pending: list[pa.Table] = []
        size = 0
        for selection in selections:
            lo = selection.start
            while lo < selection.stop:
                take = min(selection.stop - lo, batch_rows - size)
                pending.append(table.slice(lo, take))
                size, lo = size + take, lo + take
                if size == batch_rows:
                    yield pa.concat_tables(pending)
                    pending, size = [], 0
        if pending:
            yield pa.concat_tables(pending)

    def latest(self) -> list[dict[str, Value]]:
        """The last row of every ticker, with all columns."""
        return [
            {
                "ticker": ticker,
                **self.rows(
                    ticker=ticker,
                    start=None,
                    end=None,
                    columns=self.columns,
                    limit=1,
                    descending=True,
                )[0],
            }
            for ticker in self.spans
        ]

    @property
    def last_date(self) -> date | None:
        """The most recent date over all tickers."""
        return max((span.last_date for span in self.spans.values()), default=None)


def _json_records(
    dates: np.ndarray, columns: tuple[str, ...], values: dict[str, np.ndarray]
) -> np.ndarray:
    """Every row as a JSON object of date and all columns (bytes, NaN as null)."""
    names = ("date", *columns)
    series = [np.datetime_as_string(dates, unit="D").tolist()]
    series += [values[c].tolist() for c in columns]
    records = np.empty(len(dates), dtype=object)
    records[:] = [
        to_json(dict(zip(names, row, strict=True)), inf_nan_mode="null")
        for row in zip(*series, strict=True)
    ]
    return records


def _naive_days(dates: pd.Series) -> pd.Series:
    """Dates as naive midnight timestamps, whatever their dtype or time zone."""
    parsed = pd.to_datetime(dates)
    if parsed.dt.tz is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed.dt.normalize()


def _column_array(column: pd.Series) -> np.ndarray:
    """A column as a numpy array whose tolist() gives JSON-ready Python values."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return (
            column.to_numpy(dtype=float, na_value=np.nan) if column.hasnans else column.to_numpy()
        )
    if pd.api.types.is_datetime64_any_dtype(column):
        return column.dt.strftime("%Y-%m-%dT%H:%M:%S").to_numpy(dtype=object, na_value=None)
    return column.astype("string").to_numpy(dtype=object, na_value=None)


def _spans(tickers: np.ndarray, dates: np.ndarray) -> dict[str, TickerSpan]:
    """Each ticker's [start, stop) in the sorted arrays and its date range."""
    if len(tickers) == 0:
        return {}
    starts = np.flatnonzero(np.r_[True, tickers[1:] != tickers[:-1]])
    stops = np.r_[starts[1:], len(tickers)]
    return {
        str(tickers[a]): TickerSpan(
            int(a), int(b), dates[a].astype(date), dates[b - 1].astype(date)
        )
        for a, b in zip(starts, stops, strict=True)
    }


def _signature(path: Path) -> Signature | None:
    """The file's (mtime in ns, size), or None when it does not exist; for a folder, its Delta
    commit log's, or its own (a part file added or removed changes it)."""
    try:
        log = path / "_delta_log"
        stat = (log if log.is_dir() else path).stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


class CachedFile(Generic[T]):
    """A file parsed once and kept in memory; refresh() reloads it when its mtime or size change."""

    def __init__(self, path: Path, parse: Callable[[Path], T]):
        self.path = path
        self._parse = parse
        self._signature: Signature | None = None
        self._value: T | None = None
        self._loaded = False
        self._lock = threading.Lock()

    def get(self) -> T | None:
        """The parsed file, or None when it does not exist (loaded on first use)."""
        if not self._loaded:
            self.refresh()
        return self._value

    def refresh(self) -> bool:
        """Reload when the file changed since the last load; True when the value changed."""
        with self._lock:
            self._loaded = True
            signature = _signature(self.path)
            if signature == self._signature:
                return False
            if signature is None:
                self._signature, self._value = None, None
                return True
            try:
                value = self._parse(self.path)
            except Exception as error:  # half-written or corrupt: keep serving the last good copy
                logger.warning("Could not load %s: %s", self.path.name, error)
                return False
            self._signature, self._value = signature, value
            logger.info("Loaded %s", self.path.name)
            return True


def read_features(path: Path) -> FeatureSnapshot:
    """Parse the feature table's latest version into a snapshot named by its Delta table version
    (the id in the run record's versions.features, and a model's data_version); a Parquet file
    (no table versions) is named by its content's fingerprint."""
    if not path.is_dir():
        frame = pd.read_parquet(path)
        return FeatureSnapshot.from_frame(frame, fingerprint_features(frame))
    history = table_versions(path)
    if not history:
        raise FileNotFoundError(f"{path}: no table stored yet")
    version = str(history[0]["version"])
    return FeatureSnapshot.from_frame(load_table(path, version=version), version)


class UnknownVersion(LookupError):
    """No feature data of the asked version."""


class FeatureSource:
    """Feature snapshots by version: the latest one, reloaded when the table commits a new
    version, and pinned versions loaded from the Delta table on request (the last few kept)."""

    PINNED = 4  # pinned versions kept in memory

    def __init__(self, path: Path):
        self.path = path
        self.current = CachedFile(path, read_features)
        self._pinned: OrderedDict[str, FeatureSnapshot] = OrderedDict()
        self._lock = threading.Lock()

    def snapshot(self, version: str | None = None) -> FeatureSnapshot | None:
        """The snapshot of `version` (None: the current one, None before the pipeline wrote it).

        Another version is loaded from the table (pruned or never written: UnknownVersion); a
        Parquet file only knows its current version, so an unknown one first reloads the file.
        """
        current = self.current.get()
        if version is None or (current is not None and current.version == version):
            return current
        if self.path.is_dir():
            return self._pinned_version(version)
        if self.current.refresh():
            return self.snapshot(version)
        raise UnknownVersion(version)

    def _pinned_version(self, version: str) -> FeatureSnapshot:
        """A version of the table, from memory when recently asked for."""
        with self._lock:
            if version in self._pinned:
                self._pinned.move_to_end(version)
                return self._pinned[version]
        if not version.isdigit():
            raise UnknownVersion(version)
        try:
            snapshot = FeatureSnapshot.from_frame(load_table(self.path, version=version), version)
        except Exception as error:  # pruned, never written, or unreadable
            logger.info("feature version %s not loadable: %s", version, error)
            raise UnknownVersion(version) from error
        with self._lock:
            self._pinned[version] = snapshot
            while len(self._pinned) > self.PINNED:
                self._pinned.popitem(last=False)
        return snapshot


def read_json(path: Path) -> dict[str, Any]:
    """Parse a JSON report."""
    return json.loads(path.read_text(encoding="utf-8"))


def read_drift(entry: dict[str, Any], path: Path) -> dict[str, pd.DataFrame]:
    """Drift results, loaded through their catalog entry's dataset (which applies its merge
    rules), grouped by ticker, each sorted by as_of then feature."""
    frame = AbstractDataset.from_config("drift_results", {**entry, "filepath": str(path)}).load()
    frame["as_of"] = _naive_days(frame["as_of"])
    frame = frame.sort_values(["ticker", "as_of", "feature"], kind="stable")
    return {str(t): group.reset_index(drop=True) for t, group in frame.groupby("ticker")}


class DataStore:
    """The files the API serves, each cached in memory."""

    def __init__(self, files: dict[str, Path], catalog_entries: dict[str, dict[str, Any]]):
        self.features = FeatureSource(files["features"])
        self.quality = CachedFile(files["quality_report"], read_json)
        self.drift = CachedFile(
            files["drift_results"], partial(read_drift, catalog_entries["drift_results"])
        )
        self.recommendations = CachedFile(files["drift_recommendations"], read_json)

    def _all(self) -> dict[str, CachedFile[Any]]:
        """Every cached file by name."""
        return {
            "features": self.features.current,
            "quality": self.quality,
            "drift": self.drift,
            "recommendations": self.recommendations,
        }

    def refresh(self) -> set[str]:
        """Reload what changed on disk; the names of the files that changed."""
        return {name for name, cached in self._all().items() if cached.refresh()}
