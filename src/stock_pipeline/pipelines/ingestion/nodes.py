"""Incremental ingestion into bronze: only the missing sessions, a full refetch after a corporate action."""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd

from stock_pipeline.progress import run_concurrently
from stock_pipeline.sources import PriceSource, SourceError, build_source
from stock_pipeline.sources.base import BRONZE_COLUMNS
from stock_pipeline.trading_calendar import expected_last_session, sessions_back
from stock_pipeline.universe import resolve_universe

logger = logging.getLogger(__name__)

Loader = Callable[[], pd.DataFrame]
COMPARED_COLUMNS = ["open", "high", "low", "close", "adj_close"]


class IngestionFailedError(RuntimeError):
    """More tickers failed than `ingestion.max_failed_ratio` allows."""


@dataclass
class TickerOutcome:
    """What happened to one ticker: status (created, updated, unchanged, refreshed, failed) and data to store."""

    status: str
    rows_fetched: int = 0
    rows_stored: int = 0
    reason: str | None = None
    data: pd.DataFrame | None = field(default=None, repr=False)


def fetch_window(params: dict[str, Any], run_context: dict[str, Any]) -> tuple[date, date]:
    """First and last session to hold: start_date to end_date, never past the last closed session."""
    end = expected_last_session(params.get("end_date"), pd.Timestamp(run_context["started_at"]))
    return pd.Timestamp(params["start_date"]).date(), end.date()


def to_bronze_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Bronze columns as text: ISO dates, numbers as written, empty string for missing."""
    text = pd.DataFrame(index=frame.index)
    for column in BRONZE_COLUMNS:
        values = frame[column] if column in frame else pd.Series("", index=frame.index)
        if pd.api.types.is_datetime64_any_dtype(values):
            has_time = (values.dropna() != values.dropna().dt.normalize()).any()
            values = values.dt.strftime("%Y-%m-%d %H:%M:%S" if has_time else "%Y-%m-%d")
        text[column] = values.astype(object).where(values.notna(), "").astype(str)
    return text.reset_index(drop=True)


def _parsed_dates(frame: pd.DataFrame) -> pd.Series:
    """The bronze date column parsed; text that is no date becomes NaT."""
    return pd.to_datetime(frame["date"], errors="coerce", format="mixed")


def overlap_differs(stored: pd.DataFrame, fetched: pd.DataFrame, tolerance: float) -> bool:
    """True when a session present in both differs in price by more than the relative tolerance."""
    both = stored.merge(fetched, on="date", suffixes=("_stored", "_fetched"))
    if both.empty:
        return False
    for column in COMPARED_COLUMNS:
        old = pd.to_numeric(both[f"{column}_stored"], errors="coerce")
        new = pd.to_numeric(both[f"{column}_fetched"], errors="coerce")
        change = ((new - old).abs() / old.abs()).fillna(0.0)
        if (change > tolerance).any():
            return True
    return False


def ingest_ticker(
    ticker: str,
    stored_loader: Loader | None,
    source: PriceSource,
    window: tuple[date, date],
    params: dict[str, Any],
) -> TickerOutcome:
    """Fetch what one ticker lacks; refetch its whole history when the overlap shows re-adjusted prices."""
    start, end = window
    try:
        stored = stored_loader() if stored_loader else None
        if stored is None or stored.empty or _parsed_dates(stored).isna().all():
            full = to_bronze_text(source.fetch(ticker, start, end))
            return TickerOutcome("created", len(full), len(full), data=full)
        last_stored = _parsed_dates(stored).max()
        overlap_start = sessions_back(last_stored, params["overlap_sessions"]).date()
        fetched = to_bronze_text(source.fetch(ticker, max(overlap_start, start), end))
        if overlap_differs(stored, fetched, params["refresh_tolerance"]):
            full = to_bronze_text(source.fetch(ticker, start, end))
            reason = "prices in the overlap changed: corporate-action refresh"
            return TickerOutcome("refreshed", len(fetched) + len(full), len(full), reason, full)
        new_rows = fetched[_parsed_dates(fetched) > last_stored]
        if new_rows.empty:
            return TickerOutcome("unchanged", len(fetched), len(stored))
        combined = pd.concat([stored[BRONZE_COLUMNS], new_rows], ignore_index=True)
        return TickerOutcome("updated", len(fetched), len(combined), data=combined)
    except (SourceError, OSError, ValueError, pd.errors.ParserError) as error:
        logger.warning("ingestion of %s failed: %s", ticker, error)
        return TickerOutcome("failed", reason=f"{type(error).__name__}: {error}")


def ingest_prices_node(
    raw_prices_stored: dict[str, Loader],
    params: dict[str, Any],
    run_context: dict[str, Any],
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Bronze files that changed in this run, and a report of every ticker's outcome."""
    tickers = resolve_universe(params)
    source = build_source(params)
    window = fetch_window(params, run_context)
    outcomes = dict(
        run_concurrently(
            lambda ticker: ingest_ticker(
                ticker, raw_prices_stored.get(ticker), source, window, params
            ),
            tickers,
            params["max_workers"],
            failed=lambda outcome: outcome.status == "failed",
            description="ingesting",
        )
    )
    changed = {ticker: o.data for ticker, o in outcomes.items() if o.data is not None}
    return changed, _ingestion_report(tickers, outcomes, params, window, run_context)


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
            "status": outcomes[ticker].status,
            "rows_fetched": outcomes[ticker].rows_fetched,
            "rows_stored": outcomes[ticker].rows_stored,
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
        "window": {"start": window[0].isoformat(), "end": window[1].isoformat()},
        "counts": statuses.value_counts().to_dict(),
        "failed_ratio": float((statuses == "failed").mean()) if len(statuses) else 0.0,
        "tickers": entries,
    }


def check_failure_budget_node(ingestion_report: dict[str, Any], max_failed_ratio: float) -> None:
    """Fail the run when more than max_failed_ratio of the tickers failed; name them and why."""
    failed = {
        ticker: entry["reason"]
        for ticker, entry in ingestion_report["tickers"].items()
        if entry["status"] == "failed"
    }
    if failed:
        logger.warning("%d ticker(s) failed ingestion: %s", len(failed), failed)
    if ingestion_report["failed_ratio"] > max_failed_ratio:
        raise IngestionFailedError(
            f"{len(failed)} of {len(ingestion_report['tickers'])} tickers failed "
            f"(more than ingestion.max_failed_ratio={max_failed_ratio}): {failed}"
        )
