"""Silver layer nodes: bronze text in, validated prices, quarantined rows and a quality report out."""

import logging
from collections.abc import Callable
from functools import cache, partial
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
    TickerStatus,
    ticker_bucket,
)
from stock_pipeline.datasets.bronze import BronzeFiles, rows_after
from stock_pipeline.datasets.delta_table import TableWrite
from stock_pipeline.engine import map_buckets
from stock_pipeline.pipelines.cleaning import rules
from stock_pipeline.pipelines.cleaning.quality import (
    clean_summaries,
    completeness_by_ticker,
    failed_ticker,
    freshness_section,
    rule_counts,
    summarize,
    ticker_report,
    unchanged_ticker,
)
from stock_pipeline.recipes import Recipe, cleaning_recipe
from stock_pipeline.trading_calendar import exchange_time, is_special_session

logger = logging.getLogger(__name__)

# bronze statuses whose whole history is cleaned again: new, refetched (corporate action or
# `ingestion.refetch`), or given an earlier head (backfill: rows before the stored silver ones)
WHOLE_HISTORY = (TickerStatus.CREATED, TickerStatus.REFRESHED, TickerStatus.BACKFILLED)


def _lookback_rows(params: dict[str, Any]) -> int | None:
    """Bronze rows before a ticker's first new row that make every rule's verdict on the new rows
    equal a full rebuild's (rolling outlier windows, forward fill, returns; doubled for rejected
    rows); None when a rule uses the whole history (iqr and zscore outliers)."""
    outliers = params["outliers"]
    if outliers["method"] != "mad":
        return None
    return 2 * (2 * outliers["mad_window"] + params["ffill_limit"] + 2)


def _bronze_rows(
    raw_prices: dict[str, Callable[[], pd.DataFrame]],
    last_stored: dict[str, pd.Timestamp],
    lookback: int | None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Per ticker, the bronze rows after its last stored silver date plus the look-back (every row
    without a stored date; none when no row is newer), as one text frame with a ticker column;
    and the files that could not be read. Bronze files (`BronzeDataset`) read only their ends,
    parsed at once; other loaders load whole."""
    if isinstance(raw_prices, BronzeFiles):
        return raw_prices.rows_after(last_stored, lookback, BRONZE_COLUMNS)
    frames, unreadable = [], {}
    for ticker, stored in last_stored.items():
        try:
            frame = raw_prices[ticker]()
        except Exception as error:  # a corrupt bronze file fails its ticker only
            unreadable[ticker] = f"unreadable bronze file: {error}"
            continue
        missing = [column for column in BRONZE_COLUMNS if column not in frame]
        if missing:
            unreadable[ticker] = f"bronze file lacks columns {missing}"
            continue
        rows = rows_after(frame[list(BRONZE_COLUMNS)], stored, lookback)
        frames.append(rows.fillna("").astype(str).assign(ticker=ticker))
    columns = ["ticker", *BRONZE_COLUMNS]
    combined = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return combined[columns].astype(str), unreadable


def combine_raw_prices(
    raw_prices: dict[str, Callable[[], pd.DataFrame]],
    ingestion_report: dict[str, Any],
    stored_dates: pd.DataFrame,
    params: dict[str, Any],
    rebuild: bool,
    rewritten: frozenset[str] = frozenset(),
) -> tuple[pd.DataFrame, dict[str, str], pd.DataFrame]:
    """The bronze rows to clean in one text frame, the files that could not be read, and the plan.

    A ticker whose silver rows are stored (and no corporate-action refresh, backfill, `rebuild`,
    or bronze file `rewritten` by an earlier run not yet cleaned whole) is cleaned from its new
    bronze rows plus the look-back; any other ticker from its whole history. The plan
    has per ticker its mode (`full`, `tail` or `unchanged`) and last stored silver date."""
    last_stored = stored_dates.groupby("ticker")["date"].max() if len(stored_dates) else pd.Series()
    since = {
        ticker: pd.NaT
        if rebuild or entry.get("status") in WHOLE_HISTORY or ticker in rewritten
        else last_stored.get(ticker, pd.NaT)
        for ticker, entry in ingestion_report["tickers"].items()
        if ticker in raw_prices
    }
    combined, unreadable = _bronze_rows(raw_prices, since, _lookback_rows(params))
    for ticker, reason in unreadable.items():
        logger.warning("bronze file of %s: %s", ticker, reason)
    present = set(combined["ticker"].unique())
    plan = [
        {
            "ticker": ticker,
            "mode": "full" if pd.isna(stored) else "tail" if ticker in present else "unchanged",
            "last_stored": stored,
        }
        for ticker, stored in since.items()
        if ticker not in unreadable
    ]
    plan_frame = pd.DataFrame(plan, columns=["ticker", "mode", "last_stored"])
    plan_frame["last_stored"] = pd.to_datetime(plan_frame["last_stored"])
    return combined, unreadable, plan_frame


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
    plan: pd.DataFrame,
) -> dict[str, Any]:
    """The quality report on the rows this run cleaned: every configured ticker's section (tickers
    without new rows say so) plus a run-level summary."""
    now = pd.Timestamp(run_context["started_at"])
    end_date = ingestion_report.get("window", {}).get("end")
    ingestion = ingestion_report.get("tickers", {})
    raw_rows = raw["ticker"].value_counts()
    completeness = completeness_by_ticker(raw)
    summaries = clean_summaries(clean)
    by_rule = rule_counts(rejected_rows)
    unchanged = plan.loc[plan["mode"] == "unchanged"].set_index("ticker")["last_stored"]
    # many tickers end on the same day: each distinct last day's freshness is worked out once
    fresh = cache(
        partial(
            freshness_section,
            end_date=end_date,
            now=now,
            threshold=params["freshness_threshold_hours"],
        )
    )
    tickers: dict[str, Any] = {}
    for ticker in ingestion or sorted(raw_rows.index):
        fetch = ingestion.get(ticker, {})
        if ticker in unchanged.index:
            tickers[ticker] = unchanged_ticker(dict(fresh(unchanged[ticker].normalize())))
            continue
        if ticker in unreadable or ticker not in raw_rows:
            reason = unreadable.get(ticker) or fetch.get("reason") or "no bronze data"
            tickers[ticker] = failed_ticker(reason)
            continue
        summary = summaries.get(ticker)
        last = summary["end"].normalize() if summary else None
        tickers[ticker] = ticker_report(
            int(raw_rows[ticker]),
            completeness[ticker],
            summary,
            by_rule.get(ticker, {}),
            dict(fresh(last)),
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


def clear_rewritten_marks(raw_prices: BronzeFiles, quality_report: dict[str, Any]) -> None:
    """Unmark the rewritten bronze files cleaned whole in this run. It runs after the cleaning
    node's outputs (silver, primary, price_changes) are saved, so a run killed before leaves the
    marks, and the next run cleans those tickers whole again."""
    if isinstance(raw_prices, BronzeFiles):
        cleaned = {
            ticker
            for ticker, section in quality_report["tickers"].items()
            if section["status"] != TickerStatus.FAILED
        }
        raw_prices.clear_rewritten(cleaned)


def select_changed_prices(
    cleaned: pd.DataFrame, plan: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The silver rows that change (a tail ticker's rows after its last stored date, a full
    ticker's every row) and, per changed ticker, the first changed date (NaT: whole history)."""
    last_stored = plan.set_index("ticker")["last_stored"].reindex(cleaned["ticker"]).to_numpy()
    dates = cleaned["date"].to_numpy()
    changed = cleaned[np.isnat(last_stored) | (dates > last_stored)].reset_index(drop=True)
    full = plan.loc[plan["mode"] == "full", "ticker"]
    since = changed.groupby("ticker", sort=True)["date"].min()
    since[since.index.isin(full)] = pd.NaT
    price_changes = pd.DataFrame({"ticker": since.index.astype(str), "since": since.to_numpy()})
    return changed, price_changes


def _clean_bucket(
    raw_prices: dict[str, Callable[[], pd.DataFrame]],
    report: dict[str, Any],
    last_stored: pd.DataFrame,
    params: dict[str, Any],
    rebuild: bool,
    run_context: dict[str, Any],
    rewritten: frozenset[str] = frozenset(),
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """One bucket's changed silver rows, first changed dates, rejected rows and report sections."""
    raw, unreadable, plan = combine_raw_prices(
        raw_prices, report, last_stored, params, rebuild, rewritten
    )
    cleaned, rejected_rows = validate_prices(raw, params, run_context)
    quality = report_quality(
        raw, cleaned, rejected_rows, unreadable, report, params, run_context, plan
    )
    changed, since = select_changed_prices(cleaned, plan)
    return changed, since, rejected_rows, quality["tickers"]


def validate_bronze(
    raw_prices: dict[str, Callable[[], pd.DataFrame]],
    ingestion_report: dict[str, Any],
    stored_dates: pd.DataFrame,
    params: dict[str, Any],
    rebuild: bool,
    run_context: dict[str, Any],
    compute: dict[str, Any],
) -> tuple[TableWrite, TableWrite, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The cleaning stage, one ticker bucket at a time (on the `compute` engine) so memory holds a
    bucket's bronze text: the primary and silver rows that change (per bucket), the first changed
    date per ticker, the rejected rows and the quality report on what this run cleaned. Every
    ticker is cleaned from its first bar, replacing both tables and the quarantine, when
    `rebuild` or when the configured rules differ from the recipe silver was written under
    (`stored_dates.attrs`)."""
    silver_recipe = cleaning_recipe(params, "silver")
    stored = Recipe.from_json(stored_dates.attrs.get("recipe"))
    change = (
        silver_recipe.changes_from(stored)
        if stored_dates.attrs.get("version") is not None
        else None
    )
    if change:
        logger.info(
            "cleaning recipe changed (%s): re-cleaning %d tickers from their first bar",
            change,
            len(ingestion_report["tickers"]),
        )
    rebuild = rebuild or change is not None
    last_stored = stored_dates.groupby("ticker", as_index=False)["date"].max()
    rewritten = getattr(raw_prices, "rewritten", frozenset())
    buckets: dict[str, dict[str, Any]] = {}
    for ticker, entry in ingestion_report["tickers"].items():
        buckets.setdefault(str(ticker_bucket(ticker)), {})[ticker] = entry
    work = {
        bucket: (
            type(raw_prices)({t: raw_prices[t] for t in entries if t in raw_prices}),
            {**ingestion_report, "tickers": entries},
            last_stored[last_stored["ticker"].isin(list(entries))],
            params,
            rebuild,
            run_context,
            rewritten & set(entries),
        )
        for bucket, entries in sorted(buckets.items())
    }
    silver, changes, rejected, sections = {}, [], [], {}
    for bucket, (changed, since, rejected_rows, tickers) in map_buckets(
        _clean_bucket, work, compute
    ):
        if len(changed):
            silver[bucket] = changed
        changes.append(since)
        rejected.append(rejected_rows)
        sections.update(tickers)
    rejected_rows = (
        pd.concat(rejected, ignore_index=True)
        if rejected
        else pd.DataFrame(columns=list(QUARANTINE_COLUMNS))
    )
    rejected_rows.attrs["replaces_stored"] = rebuild  # every row cleaned again: a new quarantine
    ordered = {
        ticker: sections[ticker] for ticker in ingestion_report["tickers"] if ticker in sections
    }
    quality_report = {
        "run_id": run_context["run_id"],
        "generated_at": run_context["started_at"],
        "summary": summarize(ordered, rejected_rows),
        "tickers": ordered,
    }
    price_changes = (
        pd.concat(changes, ignore_index=True)
        if changes
        else pd.DataFrame(
            {"ticker": pd.Series(dtype=str), "since": pd.Series(dtype="datetime64[us]")}
        )
    )
    return (
        TableWrite(
            {
                bucket: lambda rows=rows: rows[list(PRICES_COLUMNS)]
                for bucket, rows in silver.items()
            },
            cleaning_recipe(params, "primary"),
            rebuild,
        ),
        TableWrite(
            {bucket: lambda rows=rows: rows for bucket, rows in silver.items()},
            silver_recipe,
            rebuild,
        ),
        price_changes,
        rejected_rows,
        quality_report,
    )
