"""Sections of the quality report: per ticker completeness, validity, outliers, freshness and a score."""

from typing import Any

import pandas as pd

from stock_pipeline.contract import BAR_VALUES, TickerStatus, freshness

SCORE_WEIGHTS = {"validity": 0.5, "completeness": 0.3, "freshness": 0.2}


def completeness_by_ticker(raw: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per ticker, empty cells per number column of the bronze rows, as counts and percentages."""
    empty = pd.DataFrame({column: raw[column].str.strip().eq("") for column in BAR_VALUES})
    grouped = empty.groupby(raw["ticker"].to_numpy(), sort=False)
    counts = grouped.sum().astype(int).to_dict(orient="index")
    shares = (100 * grouped.mean()).round(3).to_dict(orient="index")
    return {
        ticker: {"null_counts": counts[ticker], "null_percentages": shares[ticker]}
        for ticker in counts
    }


def clean_summaries(clean: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per ticker of the clean rows: row, filled, ghost-bar and suspected-split counts, the first
    and last date, and the dates of the outliers (in the rows' order)."""
    summaries = (
        clean.groupby("ticker", sort=False)
        .agg(
            clean_rows=("date", "size"),
            filled_rows=("is_filled", "sum"),
            ghost_bars=("is_ghost_bar", "sum"),
            suspected_splits=("is_suspected_split", "sum"),
            start=("date", "min"),
            end=("date", "max"),
        )
        .to_dict(orient="index")
    )
    outliers = clean.loc[clean["is_outlier"], ["ticker", "date"]]
    for ticker, dates in zip(outliers["ticker"], outliers["date"], strict=True):
        summaries[ticker].setdefault("outlier_dates", []).append(dates)
    return summaries


def rule_counts(quarantined: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per ticker, its quarantined rows per rule, the most frequent rule first."""
    counts: dict[str, dict[str, int]] = {}
    sizes = quarantined.groupby(["ticker", "rule"], sort=False).size()
    for (ticker, rule), count in sizes.items():
        counts.setdefault(ticker, {})[rule] = int(count)
    return {
        ticker: dict(sorted(rules.items(), key=lambda item: -item[1]))
        for ticker, rules in counts.items()
    }


def freshness_section(
    last_day: pd.Timestamp | None, end_date: str | None, now: pd.Timestamp, threshold: float
) -> dict[str, Any]:
    """How far behind the last expected NSE session a ticker's data is (the contract's rule)."""
    fresh = freshness(last_day, now, end_date)
    return {
        "last_session": fresh.last_session.isoformat() if fresh.last_session else None,
        "expected_session": fresh.expected_session.isoformat(),
        "missing_sessions": fresh.missing_sessions,
        "hours_since_expected": fresh.hours_behind,
        "stale": fresh.is_stale(threshold),
    }


def ticker_report(
    total: int,
    completeness: dict[str, Any],
    clean: dict[str, Any] | None,
    by_rule: dict[str, int],
    freshness: dict[str, Any],
) -> dict[str, Any]:
    """One ticker's section of the report, from its bronze row count and empty cells, its
    clean_summaries entry (None: no clean row) and its quarantined rows per rule."""
    clean = clean or {"clean_rows": 0, "filled_rows": 0, "ghost_bars": 0, "suspected_splits": 0}
    clean_rows = int(clean["clean_rows"])
    validity = clean_rows / total if total else 0.0
    empty_share = (
        sum(completeness["null_counts"].values()) / (total * len(BAR_VALUES)) if total else 1.0
    )
    scores = {
        "validity": validity,
        "completeness": 1 - empty_share,
        "freshness": 0.0 if freshness["stale"] else 1.0,
    }
    outliers = clean.get("outlier_dates", [])
    return {
        "total_rows": total,
        "clean_rows": clean_rows,
        "quarantined_rows": sum(by_rule.values()),
        "filled_rows": int(clean["filled_rows"]),
        "date_range": {
            "start": clean["start"].date().isoformat() if clean_rows else None,
            "end": clean["end"].date().isoformat() if clean_rows else None,
        },
        "completeness": completeness,
        "ohlc_validation": {
            "violations": by_rule.get("ohlc_consistency", 0),
            "passed": "ohlc_consistency" not in by_rule,
        },
        "outliers": {
            "count": len(outliers),
            "dates": [day.date().isoformat() for day in outliers[:50]],
            "ghost_bars": int(clean["ghost_bars"]),
            "suspected_splits": int(clean["suspected_splits"]),
        },
        "quarantine_by_rule": by_rule,
        "freshness": freshness,
        "quality_score": round(
            100 * sum(SCORE_WEIGHTS[key] * scores[key] for key in SCORE_WEIGHTS), 2
        ),
        "status": TickerStatus.OK if clean_rows else TickerStatus.FAILED,
        "reason": None if clean_rows else "no clean rows",
    }


def failed_ticker(reason: str) -> dict[str, Any]:
    """The report section of a ticker that produced no data."""
    return {
        "total_rows": 0,
        "clean_rows": 0,
        "quarantined_rows": 0,
        "quality_score": 0.0,
        "status": TickerStatus.FAILED,
        "reason": reason,
    }


def unchanged_ticker(freshness: dict[str, Any]) -> dict[str, Any]:
    """The report section of a ticker with no new bronze rows: its stored rows were checked before."""
    return {
        "total_rows": 0,
        "clean_rows": 0,
        "quarantined_rows": 0,
        "freshness": freshness,
        "status": TickerStatus.OK,
        "reason": "no new bronze rows since the last run",
    }


def summarize(tickers: dict[str, Any], quarantine: pd.DataFrame) -> dict[str, Any]:
    """Run-level counts across tickers."""
    sections = pd.DataFrame.from_dict(tickers, orient="index")
    failed = sections["status"].eq(TickerStatus.FAILED) if len(sections) else pd.Series(dtype=bool)
    stale = [ticker for ticker, entry in tickers.items() if entry.get("freshness", {}).get("stale")]
    scores = sections.get("quality_score", pd.Series(dtype=float)).dropna()  # none when unchanged
    return {
        "tickers": len(tickers),
        "tickers_ok": int((~failed).sum()),
        "tickers_failed": {ticker: tickers[ticker]["reason"] for ticker in sections.index[failed]},
        "tickers_stale": stale,
        "rows_in": int(sections["total_rows"].sum()) if len(sections) else 0,
        "rows_clean": int(sections["clean_rows"].sum()) if len(sections) else 0,
        "rows_quarantined": len(quarantine),
        "quarantine_by_rule": {
            rule: int(n) for rule, n in quarantine["rule"].value_counts().items()
        },
        "mean_quality_score": round(float(scores.mean()), 2) if len(scores) else 0.0,
    }
