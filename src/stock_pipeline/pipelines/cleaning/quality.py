"""Sections of the quality report: per ticker completeness, validity, outliers, freshness and a score."""

from typing import Any

import pandas as pd

from stock_pipeline.contract import BAR_VALUES, TickerStatus, freshness

SCORE_WEIGHTS = {"validity": 0.5, "completeness": 0.3, "freshness": 0.2}


def completeness_by_ticker(raw: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per ticker, empty cells per number column of the bronze rows, as counts and percentages."""
    empty = pd.DataFrame({column: raw[column].str.strip().eq("") for column in BAR_VALUES})
    grouped = empty.groupby(raw["ticker"].to_numpy(), sort=False)
    counts, shares = grouped.sum().astype(int), (100 * grouped.mean()).round(3)
    return {
        ticker: {
            "null_counts": counts.loc[ticker].to_dict(),
            "null_percentages": shares.loc[ticker].to_dict(),
        }
        for ticker in counts.index
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
    clean: pd.DataFrame,
    quarantined: pd.DataFrame,
    freshness: dict[str, Any],
) -> dict[str, Any]:
    """One ticker's section of the report, from its bronze row count and empty cells."""
    validity = len(clean) / total if total else 0.0
    empty_share = (
        sum(completeness["null_counts"].values()) / (total * len(BAR_VALUES)) if total else 1.0
    )
    scores = {
        "validity": validity,
        "completeness": 1 - empty_share,
        "freshness": 0.0 if freshness["stale"] else 1.0,
    }
    by_rule = quarantined["rule"].value_counts()
    outliers = clean.loc[clean["is_outlier"], "date"]
    return {
        "total_rows": total,
        "clean_rows": len(clean),
        "quarantined_rows": len(quarantined),
        "filled_rows": int(clean["is_filled"].sum()),
        "date_range": {
            "start": clean["date"].min().date().isoformat() if len(clean) else None,
            "end": clean["date"].max().date().isoformat() if len(clean) else None,
        },
        "completeness": completeness,
        "ohlc_validation": {
            "violations": int(by_rule.get("ohlc_consistency", 0)),
            "passed": "ohlc_consistency" not in by_rule,
        },
        "outliers": {
            "count": len(outliers),
            "dates": [day.date().isoformat() for day in outliers.head(50)],
            "ghost_bars": int(clean["is_ghost_bar"].sum()),
            "suspected_splits": int(clean["is_suspected_split"].sum()),
        },
        "quarantine_by_rule": {rule: int(count) for rule, count in by_rule.items()},
        "freshness": freshness,
        "quality_score": round(
            100 * sum(SCORE_WEIGHTS[key] * scores[key] for key in SCORE_WEIGHTS), 2
        ),
        "status": TickerStatus.OK if len(clean) else TickerStatus.FAILED,
        "reason": None if len(clean) else "no clean rows",
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
