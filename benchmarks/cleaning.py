"""Cleaning at 2000 tickers x 2500 sessions: the vectorized nodes against a seed-style per-ticker loop.

Run: `.venv/bin/python benchmarks/cleaning.py [--tickers 2000 --sessions 2500]`. Both methods read the
same bronze text rows (with a few broken ones) and run in their own process, so that wall time and
peak memory are their own.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from stock_pipeline.contract import BAR_VALUES, OHLC, PRICE_VALUES

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PROJECT_ROOT, print_table, synthetic_prices, timed_child

RUN_CONTEXT = {"run_id": "benchmark", "started_at": "2026-01-01T12:00:00+00:00"}


def bronze_rows(tickers: int, sessions: int) -> pd.DataFrame:
    """Synthetic prices as bronze text, with one row in a thousand broken in some way."""
    prices = synthetic_prices(tickers, sessions)
    text = prices.drop(columns="ticker").astype(str)
    text["date"] = prices["date"].dt.strftime("%Y-%m-%d")
    broken = np.random.default_rng(1).choice(len(text), len(text) // 1000, replace=False)
    text.loc[broken[0::3], "close"] = "n/a"
    text.loc[broken[1::3], "high"] = "0.01"
    text.loc[broken[2::3], list(PRICE_VALUES)] = ""
    return text.assign(ticker=prices["ticker"], dividends="", stock_splits="")


def ours(source: Path) -> None:
    """The cleaning nodes: validate, then the quality report."""
    from stock_pipeline.pipelines.cleaning.nodes import report_quality, validate_prices

    params = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_cleaning.yml").read_text())[
        "cleaning"
    ]
    raw = pd.read_parquet(source)
    clean, rejected = validate_prices(raw, params, RUN_CONTEXT)
    tickers = {ticker: {"status": "created"} for ticker in raw["ticker"].unique()}
    report_quality(raw, clean, rejected, {}, {"tickers": tickers}, params, RUN_CONTEXT)
    print(f"clean {len(clean):,} rejected {len(rejected):,}", file=sys.stderr)


def seed_style(source: Path) -> None:
    """The seed's way: per ticker, parse, drop bad rows, dedupe, ffill, IQR on prices, a report entry."""
    raw = pd.read_parquet(source)
    cleaned, report = [], {}
    for ticker, group in raw.groupby("ticker"):
        frame = group.copy()
        frame["date"] = pd.to_datetime(frame["date"], errors="coerce")
        for column in BAR_VALUES:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
        frame = frame.drop_duplicates(subset="date", keep="last").sort_values("date").ffill()
        valid = (frame["high"] >= frame[["open", "close", "low"]].max(axis=1)) & (
            frame["low"] <= frame[["open", "close"]].min(axis=1)
        )
        frame = frame[valid & (frame[list(OHLC)] > 0).all(axis=1)]
        q1, q3 = frame["close"].quantile([0.25, 0.75])
        frame["is_outlier"] = ~frame["close"].between(q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1))
        report[ticker] = {
            "total_rows": len(group),
            "clean_rows": len(frame),
            "nulls": frame.isna().sum().to_dict(),
        }
        cleaned.append(frame)
    print(f"clean {len(pd.concat(cleaned)):,}", file=sys.stderr)


def main() -> None:
    """Generate the bronze rows once, time both methods, print them side by side."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickers", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=2500)
    parser.add_argument("--method", choices=["ours", "seed"], help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        {"ours": ours, "seed": seed_style}[args.method](args.source)
        return
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "bronze.parquet"
        bronze_rows(args.tickers, args.sessions).to_parquet(source, index=False)
        print(
            f"{args.tickers * args.sessions:,} bronze rows ({args.tickers} tickers x {args.sessions} sessions)"
        )
        this = [sys.executable, __file__, "--source", str(source), "--method"]
        rows = [
            ("cleaning nodes (vectorized, all rules)", *timed_child([*this, "ours"])),
            ("seed style (per ticker, fewer rules)", *timed_child([*this, "seed"])),
        ]
    print_table("cleaning benchmark", rows, f"seed / ours = {rows[1][1] / rows[0][1]:.2f}x")


if __name__ == "__main__":
    main()
