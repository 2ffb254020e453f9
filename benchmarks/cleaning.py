"""Cleaning at 2000 tickers x 2500 sessions: `kedro run --pipelines=cleaning` against the features
stage on the same data, and a seed-style per-ticker loop.

Run: `.venv/bin/python benchmarks/cleaning.py [--tickers 2000 --sessions 2500 --repeat 3]`. The
bronze CSVs (one row in a thousand broken in some way, business days that are NSE holidays) are
written through the project's `raw_prices` catalog entry with an ingestion report saying every
ticker was created. Each round runs, in their own process trees, a full rebuild of the cleaning
stage (bronze to silver, primary, quarantine and the quality report) and then of the features
stage on the primary prices it wrote; the median wall time of each counts. The seed-style loop
(fewer rules, no report, in memory) runs once: it is the slow baseline.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from kedro.io import DataCatalog

from stock_pipeline.contract import BAR_VALUES, OHLC, PRICE_VALUES

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median_runs, print_table, project_copy, synthetic_prices


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


def bronze_project(project: Path, bronze: pd.DataFrame) -> list[str]:
    """A project copy whose bronze layer holds the rows, one file per ticker as ingestion writes
    them; the `kedro run` arguments of a full rebuild."""
    project_copy(project)
    entry = yaml.safe_load((project / "conf/base/catalog.yml").read_text())["raw_prices"]
    entry["path"] = str(project / entry["path"])
    files = DataCatalog.from_config({"raw_prices": entry})
    columns = [column for column in bronze.columns if column != "ticker"]
    files.save(
        "raw_prices",
        {ticker: rows[columns] for ticker, rows in bronze.groupby("ticker", sort=False)},
    )
    report = project / "data/08_reporting/ingestion/ingestion_report.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    tickers = {ticker: {"status": "created"} for ticker in bronze["ticker"].unique()}
    report.write_text(json.dumps({"tickers": tickers}))
    return [str(Path(sys.executable).with_name("kedro")), "run", "--params=rebuild=true"]


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
    """Write the bronze files once, time the stages in rounds and the seed style once, print them."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickers", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=2500)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median wall time counts")
    parser.add_argument("--method", choices=["seed"], help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        seed_style(args.source)
        return
    with tempfile.TemporaryDirectory() as scratch:
        bronze = bronze_rows(args.tickers, args.sessions)
        source = Path(scratch) / "bronze.parquet"
        bronze.to_parquet(source, index=False)
        project = Path(scratch) / "project"
        run = bronze_project(project, bronze)
        del bronze
        print(
            f"{args.tickers * args.sessions:,} bronze rows ({args.tickers} tickers x {args.sessions} sessions)"
        )
        stages = {
            "kedro run --pipelines=cleaning": ([*run, "--pipelines=cleaning"], project),
            "kedro run --pipelines=features": ([*run, "--pipelines=features"], project),
        }
        seed = {
            "seed style (per ticker, fewer rules, no report)": (
                [sys.executable, __file__, "--source", str(source), "--method", "seed"],
                None,
            )
        }
        rows = median_runs(stages, args.repeat) + median_runs(seed, 1)
    (cleaning, features, seed_wall) = (row[1] for row in rows)
    print_table(
        f"cleaning benchmark (median of {args.repeat} rounds; seed style once)",
        rows,
        f"cleaning / features = {cleaning / features:.2f}x (goal <= 2x); "
        f"seed style / cleaning = {seed_wall / cleaning:.2f}x",
    )


if __name__ == "__main__":
    main()
