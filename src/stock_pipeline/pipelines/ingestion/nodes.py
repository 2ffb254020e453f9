"""Incremental ingestion into bronze: only the missing sessions (at the end, and at the head when
start_date moves earlier), a full refetch after a corporate action or on request (`refetch`).

The same nodes serve daily bars (the `ingestion` pipeline, data/01_raw/prices) and 5m/15m bars (the
`intraday` pipeline, data/01_raw/intraday). Bar times are naive Asia/Kolkata wall-clock time.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from stock_pipeline.contract import BRONZE_COLUMNS, PRICE_VALUES, BronzeAppend, TickerStatus
from stock_pipeline.datasets.bronze import BRONZE_INDEX
from stock_pipeline.pipelines.ingestion.dispatch import Loader, ingest_tickers
from stock_pipeline.sources import PriceSource, SourceError, build_source
from stock_pipeline.sources.base import bar_spacing
from stock_pipeline.trading_calendar import (
    exchange_time,
    expected_last_session,
    nse_sessions,
    sessions_back,
)
from stock_pipeline.universe import resolve_universe

logger = logging.getLogger(__name__)

COMPACT_ROWS = 500  # fetched bars beyond which bronze text is held as Arrow strings
DAILY_INTERVALS = ("1d",)
INTRADAY_INTERVALS = ("5m", "15m")


class IngestionFailedError(RuntimeError):
    """More tickers failed than `ingestion.max_failed_ratio` allows."""


@dataclass
class TickerOutcome:
    """What happened to one ticker: status, rows, backfilled head rows and the data to store."""

    status: TickerStatus
    rows_fetched: int = 0
    rows_stored: int = 0
    reason: str | None = None
    data: pd.DataFrame | BronzeAppend | None = field(default=None, repr=False)
    backfilled_rows: int = 0


@dataclass(frozen=True)
class StoredBars:
    """What ingestion compares with the source: the first and last stored bars' times, the first
    `overlap_sessions` + 1 stored bars (read when a backfill needs them), the stored bars from
    `overlap_sessions` sessions before the last one on, and every stored bar (loaded only for
    the rare rewrites: a refresh, a backfill) and their count."""

    first: pd.Timestamp
    last: pd.Timestamp
    head: Loader
    tail: pd.DataFrame
    load: Loader
    count: Callable[[], int]


def stored_bars(loader: Loader, overlap_sessions: int) -> StoredBars | None:
    """The stored bars ingestion needs; None when no dated bar is stored. A bronze file
    (`stock_pipeline.datasets.BronzeFile`) reads only its two ends; any other loader, or a file
    whose first or last bar has no date, is loaded whole (then head and tail are every bar)."""
    edges = loader.edge_dates() if hasattr(loader, "edge_dates") else None
    first, last = (_parsed_date(text) for text in edges or ("", ""))
    if not pd.isna(first) and not pd.isna(last):
        overlap_start = sessions_back(last, overlap_sessions)
        return StoredBars(
            first=first,
            last=last,
            head=lambda: _bronze_columns(loader.first(overlap_sessions + 1)),
            tail=_bronze_columns(loader.after(overlap_start - pd.Timedelta(microseconds=1))),
            load=loader,
            count=loader.count_rows,
        )
    stored = loader()
    dates = _parsed_dates(stored) if len(stored) else pd.Series(dtype="datetime64[us]")
    if dates.isna().all():
        return None
    stored = _bronze_columns(stored)
    return StoredBars(
        dates.min(), dates.max(), lambda: stored, stored, lambda: stored, lambda: len(stored)
    )


def _parsed_date(text: str) -> pd.Timestamp:
    """One bronze date parsed; NaT when the text is no date."""
    try:
        return pd.Timestamp(text)
    except ValueError:
        return pd.NaT


def _bronze_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame's bronze columns, in order (KeyError naming those it lacks)."""
    return frame if list(frame.columns) == list(BRONZE_COLUMNS) else frame[list(BRONZE_COLUMNS)]


@dataclass(frozen=True)
class OverlapChange:
    """The largest relative price change between stored and refetched bars of the overlap."""

    change: float
    date: str
    column: str
    stored: float
    fetched: float

    def describe(self) -> str:
        """`close on 2024-10-28: 2700.00 -> 1350.00 (-50.00%)`."""
        signed = (self.fetched - self.stored) / abs(self.stored) if self.stored else np.inf
        return (
            f"{self.column} on {self.date}: {self.stored:.2f} -> {self.fetched:.2f} "
            f"({100 * signed:+.2f}%)"
        )


def _checked_settings(params: dict[str, Any], intervals: tuple[str, ...], hint: str) -> dict:
    """The ingestion parameters, after checking that their interval is one of `intervals`."""
    interval = params.get("interval", "1d")
    if interval not in intervals:
        raise ValueError(
            f"ingestion.interval is {interval!r}, but this pipeline stores {'/'.join(intervals)} "
            f"bars only; {hint}"
        )
    if not isinstance(params.get("refetch", False), bool):
        raise ValueError(f"ingestion.refetch is {params['refetch']!r}: use true or false")
    return params


def check_daily_ingestion_settings(params: dict[str, Any]) -> dict[str, Any]:
    """The ingestion parameters for daily bronze (interval 1d), else a clear error."""
    return _checked_settings(
        params,
        DAILY_INTERVALS,
        "intraday bars go through `kedro run --pipelines=intraday --params=ingestion.interval=5m`",
    )


def check_intraday_ingestion_settings(params: dict[str, Any]) -> dict[str, Any]:
    """The ingestion parameters for intraday bronze (interval 5m or 15m), else a clear error."""
    return _checked_settings(
        params,
        INTRADAY_INTERVALS,
        "run `kedro run --pipelines=intraday --params=ingestion.interval=5m` (or 15m)",
    )


def fetch_window(
    params: dict[str, Any], run_context: dict[str, Any], earliest: date | None = None
) -> tuple[date, date]:
    """First and last day to hold: start_date (not before `earliest`) to end_date, nothing unfinished.

    Daily bars end at the last closed session; intraday bars at today (exchange time), where the
    source keeps only the bars already over. A start before `earliest` (Yahoo's 60-day limit on
    5m/15m bars) is moved up to it with a warning.
    """
    now = pd.Timestamp(run_context["started_at"])
    start = pd.Timestamp(params["start_date"]).date()
    if params.get("interval", "1d") in DAILY_INTERVALS:
        end = expected_last_session(params.get("end_date"), now).date()
    else:
        today = exchange_time(now).date()
        end_date = params.get("end_date")
        end = min(pd.Timestamp(end_date).date(), today) if end_date else today
    if earliest and start < earliest:
        logger.warning(
            "ingestion.start_date %s is too far back for %s bars: the source serves them from %s "
            "only, so the window starts there",
            start,
            params["interval"],
            earliest,
        )
        start = earliest
    return start, end


def to_bronze_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Bronze columns as text: ISO dates (with the time for intraday bars), numbers as written,
    empty string for missing."""
    text, present = [], set(frame.columns)  # a set: asking the column index is slow
    for column in BRONZE_COLUMNS:
        if column not in present:
            text.append(np.full(len(frame), "", dtype=object))
            continue
        values = frame[column]
        if isinstance(values.dtype, pd.DatetimeTZDtype):  # as wall-clock time, like strftime
            values = values.dt.tz_localize(None)
        values = values.to_numpy()
        if np.issubdtype(values.dtype, np.datetime64):
            seconds = values.astype("datetime64[s]")
            has_time = bool((seconds != seconds.astype("datetime64[D]")).any())
            strings = np.char.replace(
                np.datetime_as_string(seconds, unit="s" if has_time else "D"), "T", " "
            ).astype(object)
        else:
            strings = values.astype(str).astype(object)
        strings[pd.isna(values)] = ""
        text.append(strings)
    rows = np.column_stack(text) if len(frame) else np.empty((0, len(BRONZE_COLUMNS)), object)
    bronze = pd.DataFrame(rows, columns=BRONZE_INDEX, dtype=object)
    # a whole history as Arrow text (Python strings for 3,000 tickers' histories take gigabytes);
    # the few new bars of a daily run as plain objects, much quicker to build
    return bronze.astype(str) if len(bronze) > COMPACT_ROWS else bronze


def _parsed_dates(frame: pd.DataFrame) -> pd.Series:
    """The bronze date column parsed; text that is no date becomes NaT."""
    texts = frame["date"]
    try:  # ISO text, as bronze holds it: numpy parses it much faster than pandas
        return pd.Series(texts.to_numpy(dtype="datetime64[us]"), index=texts.index)
    except (TypeError, ValueError):
        return pd.to_datetime(texts, errors="coerce", format="mixed")


def _prices(frame: pd.DataFrame, rows: list[int]) -> np.ndarray:
    """The compared price columns of `rows` as floats (text that is no number becomes NaN)."""
    values = np.column_stack([frame[name].to_numpy(dtype=object)[rows] for name in PRICE_VALUES])
    try:
        return values.astype(np.float64)
    except (TypeError, ValueError):  # text that is no number: parse value by value
        flat = pd.to_numeric(pd.Series(values.ravel(), dtype=object), errors="coerce")
        return flat.to_numpy(np.float64).reshape(values.shape)


def overlap_change(stored: pd.DataFrame, fetched: pd.DataFrame) -> OverlapChange | None:
    """The largest relative price change among bars present in both (the last of each date
    when one repeats); None when none is."""
    fetched_rows = {day: row for row, day in enumerate(fetched["date"].tolist())}
    stored_rows = {
        day: row for row, day in enumerate(stored["date"].tolist()) if day in fetched_rows
    }
    if not stored_rows:
        return None
    days = sorted(stored_rows, key=stored_rows.get)  # in stored order
    old = _prices(stored, [stored_rows[day] for day in days])
    new = _prices(fetched, [fetched_rows[day] for day in days])
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.nan_to_num(np.abs(new - old) / np.abs(old), nan=0.0, posinf=np.inf)
    row, column = np.unravel_index(np.argmax(change), change.shape)
    return OverlapChange(
        float(change[row, column]),
        str(days[row]),
        PRICE_VALUES[column],
        float(old[row, column]),
        float(new[row, column]),
    )


def refresh_reason(
    stored: pd.DataFrame, fetched: pd.DataFrame, tolerance: float, where: str
) -> str | None:
    """Why the history must be refetched when fetched prices differ from stored ones beyond
    tolerance (Yahoo re-adjusted it after a split, bonus or dividend); None when they agree."""
    change = overlap_change(stored, fetched)
    if change is None or change.change <= tolerance:
        return None
    return (
        f"{where} changed: corporate-action refresh "
        f"(largest change {change.describe()}, tolerance {100 * tolerance:.3g}%)"
    )


def _refetch(
    ticker: str,
    stored: StoredBars,
    source: PriceSource,
    window: tuple[date, date],
    rows_fetched: int,
    reason: str,
    level: int = logging.WARNING,
) -> TickerOutcome:
    """The whole window fetched again to replace what is stored; logged with its reason."""
    start, end = window
    full = to_bronze_text(source.fetch(ticker, start, end))
    stored = stored.load()
    older = int((_parsed_dates(stored) < pd.Timestamp(start)).sum())
    dropped = (
        f"; {older} stored bars before {start} were dropped (the source no longer serves them)"
        if older
        else ""
    )
    logger.log(
        level,
        "%s: %s; refetched %s to %s: %d rows replace %d stored%s",
        ticker,
        reason,
        start,
        end,
        len(full),
        len(stored),
        dropped,
    )
    return TickerOutcome(TickerStatus.REFRESHED, rows_fetched + len(full), len(full), reason, full)


def _head_missing(first: pd.Timestamp, start: date) -> bool:
    """True when sessions from `start` on come before the first stored bar (start_date moved earlier)."""
    if pd.Timestamp(start) >= first.normalize():
        return False
    return not nse_sessions(start, first.normalize() - pd.Timedelta(days=1)).empty


def _fetch_head(
    ticker: str, stored_dates: pd.Series, source: PriceSource, start: date, overlap: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The head before the first stored bar, and the whole fetch, whose overlap must match bronze."""
    ordered = stored_dates.dropna().sort_values()
    head_end = ordered.iloc[min(overlap, len(ordered) - 1)].date()
    fetched = to_bronze_text(source.fetch(ticker, start, head_end))
    return fetched[_parsed_dates(fetched) < ordered.iloc[0]], fetched


def _extend(
    ticker: str,
    stored: StoredBars,
    source: PriceSource,
    window: tuple[date, date],
    params: dict[str, Any],
) -> TickerOutcome:
    """The new sessions, appended to the stored bars; the whole file rewritten when the missing
    head (start_date moved earlier) is added in front."""
    start, end = window
    tolerance = params["refresh_tolerance"]
    rows_fetched, head = 0, None
    if _head_missing(stored.first, start):
        first_dates = _parsed_dates(stored.head())
        head, fetched = _fetch_head(ticker, first_dates, source, start, params["overlap_sessions"])
        rows_fetched = len(fetched)
        reason = refresh_reason(
            stored.head(), fetched, tolerance, "prices before the backfilled head"
        )
        if reason:
            return _refetch(ticker, stored, source, window, rows_fetched, reason)
        if not head.empty:
            logger.info(
                "%s: backfilled %d bars from %s to %s, before the first stored bar %s",
                ticker,
                len(head),
                head["date"].iloc[0],
                head["date"].iloc[-1],
                stored.first.date(),
            )
    last_stored = stored.last
    overlap_start = sessions_back(last_stored, params["overlap_sessions"]).date()
    fetched = to_bronze_text(source.fetch(ticker, max(overlap_start, start), end))
    rows_fetched += len(fetched)
    reason = refresh_reason(stored.tail, fetched, tolerance, "prices in the overlap")
    if reason:
        return _refetch(ticker, stored, source, window, rows_fetched, reason)
    new_rows = fetched[_parsed_dates(fetched) > last_stored]
    if head is not None and not head.empty:
        combined = pd.concat([head, _bronze_columns(stored.load()), new_rows])
        return TickerOutcome(
            TickerStatus.BACKFILLED,
            rows_fetched,
            len(combined),
            data=combined.reset_index(drop=True),
            backfilled_rows=len(head),
        )
    if new_rows.empty:
        return TickerOutcome(TickerStatus.UNCHANGED, rows_fetched, stored.count())
    return TickerOutcome(
        TickerStatus.UPDATED,
        rows_fetched,
        stored.count() + len(new_rows),
        data=BronzeAppend(new_rows.reset_index(drop=True)),
    )


def ingest_ticker(
    ticker: str,
    stored_loader: Loader | None,
    source: PriceSource,
    window: tuple[date, date],
    params: dict[str, Any],
) -> TickerOutcome:
    """Fetch what one ticker lacks around its stored bars; refetch all on request or re-adjustment."""
    start, end = window
    interval = params.get("interval", "1d")
    try:
        stored = stored_bars(stored_loader, params["overlap_sessions"]) if stored_loader else None
        if stored is None:
            full = to_bronze_text(source.fetch(ticker, start, end))
            return TickerOutcome(TickerStatus.CREATED, len(full), len(full), data=full)
        stored_interval = bar_spacing(_parsed_dates(stored.tail))
        if stored_interval not in (None, interval):
            reason = f"stored bars are {stored_interval}, this run asks for {interval}: rewritten"
            return _refetch(ticker, stored, source, window, 0, reason)
        if params.get("refetch", False):
            first = stored.first.date()
            # daily history is kept whole; intraday bars older than the source serves are dropped
            everything = (min(start, first) if interval in DAILY_INTERVALS else start, end)
            reason = "ingestion.refetch=true: every stored bar refetched"
            return _refetch(ticker, stored, source, everything, 0, reason, logging.INFO)
        return _extend(ticker, stored, source, window, params)
    except (SourceError, OSError, ValueError, KeyError, pd.errors.ParserError) as error:
        logger.warning("ingestion of %s failed: %s", ticker, error)
        return TickerOutcome(TickerStatus.FAILED, reason=f"{type(error).__name__}: {error}")


def ingest_prices(
    raw_prices_stored: dict[str, Loader],
    params: dict[str, Any],
    run_context: dict[str, Any],
    compute: dict[str, Any] | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Bronze files that changed in this run, and a report of every ticker's outcome.

    The fetches run where `compute.engine` says (this process, or the dask cluster's workers),
    under one `ingestion.rate_limit` either way; the files are written here.
    """
    tickers = resolve_universe(params)
    source = build_source(params)
    limit = getattr(source, "earliest_start", None)
    earliest = limit(pd.Timestamp(run_context["started_at"]).to_pydatetime()) if limit else None
    window = fetch_window(params, run_context, earliest)
    outcomes = dict(
        ingest_tickers(
            partial(ingest_ticker, window=window, params=params),
            tickers,
            raw_prices_stored,
            partial(build_source, params),
            params,
            compute,
            getattr(source, "sends_requests", True),
        )
    )
    changed = {ticker: o.data for ticker, o in outcomes.items() if o.data is not None}
    report = _ingestion_report(tickers, outcomes, params, window, run_context)
    _log_summary(report)
    return changed, report


def _log_summary(report: dict[str, Any]) -> None:
    """One line per run: tickers per status, the refreshed and backfilled ones by name, rows fetched."""
    entries = report["tickers"]
    refreshed = [
        ticker for ticker, entry in entries.items() if entry["status"] == TickerStatus.REFRESHED
    ]
    backfilled = [
        f"{ticker} ({entry['backfilled_rows']} bars)"
        for ticker, entry in entries.items()
        if entry["backfilled_rows"]
    ]
    logger.info(
        "ingestion of %d tickers (%s bars, %s to %s%s): %s; %d rows fetched%s%s",
        len(entries),
        report["interval"],
        report["window"]["start"],
        report["window"]["end"],
        ", refetch requested" if report["refetch"] else "",
        ", ".join(f"{count} {status}" for status, count in report["counts"].items()) or "nothing",
        sum(entry["rows_fetched"] for entry in entries.values()),
        f"; refreshed (history rewritten): {', '.join(refreshed)}" if refreshed else "",
        f"; backfilled before the stored bars: {', '.join(backfilled)}" if backfilled else "",
    )


def _ingestion_report(
    tickers: list[str],
    outcomes: dict[str, TickerOutcome],
    params: dict[str, Any],
    window: tuple[date, date],
    run_context: dict[str, Any],
) -> dict[str, Any]:
    """Per-ticker statuses with counts, in the order of the configured tickers."""
    entries = {
        ticker: {
            "status": str(outcomes[ticker].status),
            "rows_fetched": outcomes[ticker].rows_fetched,
            "rows_stored": outcomes[ticker].rows_stored,
            "backfilled_rows": outcomes[ticker].backfilled_rows,
            "reason": outcomes[ticker].reason,
        }
        for ticker in tickers
    }
    statuses = pd.Series([entry["status"] for entry in entries.values()], dtype=object)
    return {
        "run_id": run_context["run_id"],
        "started_at": run_context["started_at"],
        "source": params["source"],
        "interval": params["interval"],
        "refetch": bool(params.get("refetch", False)),
        "window": {"start": window[0].isoformat(), "end": window[1].isoformat()},
        "counts": statuses.value_counts().to_dict(),
        "failed_ratio": float((statuses == TickerStatus.FAILED).mean()) if len(statuses) else 0.0,
        "tickers": entries,
        "ticker_outcomes": {  # what run records keep: the ok tickers, and the failed ones and why
            "ok": sorted(t for t, e in entries.items() if e["status"] != TickerStatus.FAILED),
            "failed": {
                t: e["reason"] or "unknown"
                for t, e in sorted(entries.items())
                if e["status"] == TickerStatus.FAILED
            },
        },
    }


def check_failure_budget(ingestion_report: dict[str, Any], max_failed_ratio: float) -> None:
    """Fail the run when more than max_failed_ratio of the tickers failed, or all of them (a run
    that fetched nothing must not exit 0 from cron, whatever the ratio); name them and why."""
    failed = {
        ticker: entry["reason"]
        for ticker, entry in ingestion_report["tickers"].items()
        if entry["status"] == TickerStatus.FAILED
    }
    if failed:
        logger.warning("%d ticker(s) failed ingestion: %s", len(failed), failed)
    every_one = bool(failed) and len(failed) == len(ingestion_report["tickers"])
    if every_one or ingestion_report["failed_ratio"] > max_failed_ratio:
        raise IngestionFailedError(
            f"{len(failed)} of {len(ingestion_report['tickers'])} tickers failed "
            f"(more than ingestion.max_failed_ratio={max_failed_ratio}): {failed}"
        )
