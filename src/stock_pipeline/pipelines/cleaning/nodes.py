"""Silver layer nodes: bronze text in, validated prices, quarantined rows and a quality report out."""

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from stock_pipeline.contract import (
    BAR_VALUES,
    BRONZE_COLUMNS,
    PRICES_COLUMNS,
    QUARANTINE_COLUMNS,
    RAW_COLUMNS,
    SILVER_COLUMNS,
    SPECIAL_SESSION_FLAG,
)
from stock_pipeline.pipelines.cleaning import rules
from stock_pipeline.pipelines.cleaning.quality import (
    completeness_by_ticker,
    failed_ticker,
    freshness_section,
    summarize,
    ticker_report,
)
from stock_pipeline.trading_calendar import exchange_time, is_special_session

logger = logging.getLogger(__name__)


def combine_raw_prices(
    raw_prices: dict[str, Callable[[], pd.DataFrame]], ingestion_report: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The ingested universe's bronze rows in one text frame, and the files that could not be read."""
    frames, unreadable = [], {}
    for ticker in ingestion_report["tickers"]:
        if ticker not in raw_prices:
            continue
        try:
            frame = raw_prices[ticker]()
        except Exception as error:  # a corrupt bronze file fails its ticker only
            logger.warning("bronze file of %s is unreadable: %s", ticker, error)
            unreadable[ticker] = f"unreadable bronze file: {error}"
            continue
        missing = [column for column in BRONZE_COLUMNS if column not in frame]
        if missing:
            unreadable[ticker] = f"bronze file lacks columns {missing}"
            continue
        frames.append(frame[list(BRONZE_COLUMNS)].fillna("").astype(str).assign(ticker=ticker))
    columns = ["ticker", *BRONZE_COLUMNS]
    combined = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return combined[columns].astype(str), unreadable


def _first_reasons(checks: list[tuple[str, pd.Series]], index: pd.Index) -> pd.DataFrame:
    """For each row, the first rule (in the given order) whose reason is set, with that reason."""
    rule = pd.Series(np.nan, index=index, dtype=object)
    reason = pd.Series(np.nan, index=index, dtype=object)
    for name, verdict in checks:
        hit = rule.isna() & verdict.notna()
        rule = rule.mask(hit, name)
        reason = reason.mask(hit, verdict)
    return pd.DataFrame({"rule": rule, "reason": reason})


def _describe(mask: pd.Series, message: str) -> pd.Series:
    """A reason text where mask is true, NaN elsewhere."""
    return pd.Series(np.where(mask.fillna(False), message, None), index=mask.index, dtype=object)


def _reject_before_fill(
    raw: pd.DataFrame, parsed: pd.DataFrame, run_time: pd.Timestamp, params: dict[str, Any]
) -> pd.DataFrame:
    """Rules decidable on a row alone, in order: unparsable, empty, future, non-session, off-hours
    (intraday bars), duplicate. `run_time` is the run's start in naive Asia/Kolkata time."""
    run_day = run_time.normalize()
    checks = [
        ("unparsable_value", rules.unparsable_value(raw, parsed)),
        ("empty_prices", _describe(rules.empty_prices(raw), "open, high, low and close are empty")),
        (
            "future_date",
            _describe(
                rules.future_date(parsed, run_day, run_time),
                f"date after the run day {run_day.date()} (or bar after the run's time)",
            ),
        ),
    ]
    if params["check_trading_days"]:
        checks.append(("non_trading_day", _off_session_reasons(parsed, run_day)))
        checks.append(
            (
                "outside_session_hours",
                _describe(
                    rules.outside_session_hours(parsed),
                    "intraday bar outside the session's hours (09:15 to 15:30 IST)",
                ),
            )
        )
    verdicts = _first_reasons(checks, parsed.index)
    survivors = verdicts["rule"].isna()
    duplicate = rules.duplicate_date(parsed[survivors]).reindex(parsed.index, fill_value=False)
    duplicates = pd.DataFrame(
        {
            "rule": "duplicate_date",
            "reason": "a later row of the same date was fetched; it is kept",
        },
        index=parsed.index,
    )
    return verdicts.where(~duplicate, duplicates)


UNLISTED_SESSION = (
    "not an NSE session, yet traded (prices and volume): possibly a special session missing "
    "from the calendar; if NSE held one that day, add it under special_sessions in "
    "conf/base/calendar.yml"
)


def _off_session_reasons(parsed: pd.DataFrame, run_day: pd.Timestamp) -> pd.Series:
    """Why a bar falls on no NSE session: traded bars may be an unlisted special session (warned)."""
    off = rules.non_trading_day(parsed, run_day)
    unlisted = off & rules.traded(parsed)
    if unlisted.any():
        days = (
            parsed.loc[unlisted].groupby(parsed.loc[unlisted, "date"].dt.date)["ticker"].nunique()
        )
        logger.warning(
            "%d traded bars on days the NSE calendar does not know, possibly unlisted special "
            "sessions (quarantined as non_trading_day): %s",
            int(unlisted.sum()),
            ", ".join(f"{day} ({count} tickers)" for day, count in days.items()),
        )
    reasons = _describe(off & ~unlisted, "not an NSE session")
    return reasons.where(~unlisted, UNLISTED_SESSION)


def _forward_fill(parsed: pd.DataFrame, limit: int) -> pd.DataFrame:
    """Fill missing numbers from the ticker's previous session, at most `limit` in a row; mark filled rows."""
    ordered = parsed.sort_values(["ticker", "date"], kind="stable")
    missing_before = ordered[list(BAR_VALUES)].isna().any(axis=1)
    filled = ordered.groupby("ticker", sort=False)[list(BAR_VALUES)].ffill(limit=limit)
    ordered[list(BAR_VALUES)] = filled
    ordered["is_filled"] = missing_before & filled.notna().all(axis=1)
    return ordered


def _reject_after_fill(prices: pd.DataFrame, limit: int) -> pd.DataFrame:
    """Rules on repaired rows, in order: still missing, non-positive price, negative volume, OHLC."""
    still_missing = prices[list(BAR_VALUES)].isna().any(axis=1)
    checks = [
        (
            "missing_value",
            _describe(still_missing, f"missing beyond cleaning.ffill_limit={limit} sessions"),
        ),
        (
            "non_positive_price",
            _describe(rules.non_positive_price(prices), "a price is zero or negative"),
        ),
        ("negative_volume", _describe(rules.negative_volume(prices), "volume is negative")),
        (
            "ohlc_consistency",
            _describe(rules.ohlc_inconsistent(prices), "high/low do not bound open and close"),
        ),
    ]
    return _first_reasons(checks, prices.index)


def _flag_anomalies(prices: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Outlying returns, ghost bars and suspected unadjusted splits as boolean columns."""
    returns = prices.groupby("ticker", sort=False)["close"].pct_change()
    return prices.assign(
        is_outlier=rules.outlier_mask(returns, prices["ticker"], params["outliers"]).fillna(False),
        is_ghost_bar=rules.ghost_bar(prices),
        is_suspected_split=rules.suspected_split(
            returns.fillna(0.0), params["split_jump_threshold"]
        ),
    )


def _quarantine_rows(
    raw: pd.DataFrame, parsed: pd.DataFrame, verdicts: pd.DataFrame, run_context: dict[str, Any]
) -> pd.DataFrame:
    """The rejected rows with their rule, reason, raw text and run id."""
    rejected = verdicts["rule"].notna()
    rows = pd.DataFrame(
        {
            "ticker": raw.loc[rejected, "ticker"],
            "date": parsed.loc[rejected, "date"],
            "stage": "cleaning",
            "rule": verdicts.loc[rejected, "rule"],
            "reason": verdicts.loc[rejected, "reason"],
        }
    )
    for column, raw_column in zip(["date", *list(BAR_VALUES)], RAW_COLUMNS, strict=True):
        rows[raw_column] = raw.loc[rejected, column]
    rows["run_id"] = run_context["run_id"]
    rows["quarantined_at"] = pd.Timestamp(run_context["started_at"])
    return rows[list(QUARANTINE_COLUMNS)].astype(
        {"ticker": str, "stage": str, "rule": str, "reason": str}
    )


def validate_prices(
    raw: pd.DataFrame, params: dict[str, Any], run_context: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clean prices with flags (silver) and every rejected row with its rule and reason."""
    raw = raw.reset_index(drop=True)
    parsed = rules.parse_numbers(raw)
    run_time = exchange_time(run_context["started_at"])
    first = _reject_before_fill(raw, parsed, run_time, params)
    kept = _forward_fill(parsed[first["rule"].isna()], params["ffill_limit"])
    second = _reject_after_fill(kept, params["ffill_limit"])
    flagged = _flag_anomalies(kept[second["rule"].isna()], params)
    flagged[SPECIAL_SESSION_FLAG] = is_special_session(flagged["date"])
    verdicts = pd.concat([first[first["rule"].notna()], second[second["rule"].notna()]])
    if params["outliers"]["action"] == "quarantine":
        outliers = flagged["is_outlier"]
        verdicts = pd.concat(
            [
                verdicts,
                pd.DataFrame(
                    {"rule": "outlier", "reason": "daily return is an outlier"},
                    index=flagged.index[outliers],
                ),
            ]
        )
        flagged = flagged[~outliers]
    quarantine = _quarantine_rows(raw, parsed, verdicts.reindex(raw.index), run_context)
    clean = flagged[list(SILVER_COLUMNS)].sort_values(["ticker", "date"]).reset_index(drop=True)
    logger.info("cleaning kept %d rows and quarantined %d", len(clean), len(quarantine))
    return clean, quarantine


def report_quality(
    raw: pd.DataFrame,
    clean: pd.DataFrame,
    rejected_rows: pd.DataFrame,
    unreadable: dict[str, str],
    ingestion_report: dict[str, Any],
    params: dict[str, Any],
    run_context: dict[str, Any],
) -> dict[str, Any]:
    """The quality report: every configured ticker's section plus a run-level summary."""
    now = pd.Timestamp(run_context["started_at"])
    end_date = ingestion_report.get("window", {}).get("end")
    ingestion = ingestion_report.get("tickers", {})
    raw_rows = raw["ticker"].value_counts()
    completeness = completeness_by_ticker(raw)
    clean_by_ticker = dict(tuple(clean.groupby("ticker", sort=False)))
    rejected_by_ticker = dict(tuple(rejected_rows.groupby("ticker", sort=False)))
    tickers: dict[str, Any] = {}
    for ticker in ingestion or sorted(raw_rows.index):
        fetch = ingestion.get(ticker, {})
        if ticker in unreadable or ticker not in raw_rows:
            reason = unreadable.get(ticker) or fetch.get("reason") or "no bronze data"
            tickers[ticker] = failed_ticker(reason)
            continue
        ticker_clean = clean_by_ticker.get(ticker, clean.iloc[:0])
        last = ticker_clean["date"].max().normalize() if len(ticker_clean) else None
        freshness = freshness_section(last, end_date, now, params["freshness_threshold_hours"])
        rejected = rejected_by_ticker.get(ticker, rejected_rows.iloc[:0])
        tickers[ticker] = ticker_report(
            int(raw_rows[ticker]), completeness[ticker], ticker_clean, rejected, freshness
        )
        tickers[ticker]["ingestion"] = {
            "status": fetch.get("status"),
            "reason": fetch.get("reason"),
        }
    return {
        "run_id": run_context["run_id"],
        "generated_at": run_context["started_at"],
        "summary": summarize(tickers, rejected_rows),
        "tickers": tickers,
    }


def record_quarantine(rejected_rows: pd.DataFrame) -> pd.DataFrame:
    """This run's rejected rows, ordered, for appending to the quarantine."""
    return rejected_rows.sort_values(["ticker", "raw_date"], kind="stable").reset_index(drop=True)


def consolidate_prices(clean_prices: pd.DataFrame) -> pd.DataFrame:
    """All tickers' clean prices in one table with the contract columns."""
    return clean_prices[list(PRICES_COLUMNS)].reset_index(drop=True)
