"""How often each drift method flags tickers, side by side: simulated markets and real NSE prices.

Run: `.venv/bin/python benchmarks/drift.py`. Goals (issue 7): no change <= 5% of tickers flagged,
volatility tripled in the current window >= 90%, real NSE data >= 90% as of 2020-03-17 (COVID
crash) and <= 5% on calm dates.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from stock_pipeline.pipelines.drift.nodes import detect_drift_node
from stock_pipeline.pipelines.features.nodes import compute_features

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SEED_INDICATORS

ROOT = Path(__file__).resolve().parents[1]
NSE_DIR = ROOT.parent / "shared" / "data" / "nse_daily"
SAMPLE_DIR = ROOT / "data" / "sample" / "prices"
PARAMETERS = ROOT / "conf" / "base" / "parameters_drift.yml"
CRASH_DATE = "2020-03-17"
CALM_DATES = ["2019-07-15", "2019-11-15", "2021-11-15", "2022-08-16", "2023-06-15", "2023-11-15"]
RUN_CONTEXT = {"run_id": "benchmark", "started_at": "2024-01-01T00:00:00+00:00"}


def features_of(prices: pd.DataFrame) -> pd.DataFrame:
    """The contract's feature columns, computed by the project's features node, warm-up dropped."""
    return compute_features(prices, {"indicators": SEED_INDICATORS})


def simulate_market(
    tickers: int, sessions: int, vol_factor: float, seed: int, garch: bool
) -> pd.DataFrame:
    """Features of a seeded market of Gaussian GARCH(1,1) or iid returns, the last 7 scaled."""
    rng = np.random.default_rng(seed)
    shocks = rng.standard_normal((sessions, tickers))
    sigma = np.full(tickers, 0.015)
    returns = np.empty_like(shocks)
    omega, alpha, beta = 0.015**2 * 0.03, 0.08, 0.89
    for day in range(sessions):
        returns[day] = sigma * shocks[day]
        if garch:
            sigma = np.sqrt(omega + alpha * returns[day] ** 2 + beta * sigma**2)
    returns[-7:] *= vol_factor
    closes = 100 * np.cumprod(1 + returns, axis=0)
    opens = np.vstack([np.full(tickers, 100.0), closes[:-1]])
    spread = 1 + np.abs(rng.normal(0, 0.005, size=(sessions, tickers)))
    dates = pd.bdate_range("2018-01-01", periods=sessions)
    frames = [
        features_of(
            pd.DataFrame(
                {
                    "ticker": f"SIM{i:03d}.NS",
                    "date": dates,
                    "open": opens[:, i],
                    "high": np.maximum(opens[:, i], closes[:, i]) * spread[:, i],
                    "low": np.minimum(opens[:, i], closes[:, i]) / spread[:, i],
                    "close": closes[:, i],
                    "adj_close": closes[:, i],
                    "volume": rng.integers(100_000, 1_000_000, size=sessions).astype("float64"),
                }
            )
        )
        for i in range(tickers)
    ]
    return pd.concat(frames, ignore_index=True)


def read_prices(path: Path) -> pd.DataFrame:
    """One yfinance CSV (classic or three-line header) as prices with the contract's columns."""
    skip = [1, 2] if path.read_text().startswith("Price") else None
    prices = pd.read_csv(path, skiprows=skip).rename(columns={"Price": "Date"})
    prices.columns = [column.lower().replace(" ", "_") for column in prices.columns]
    if "adj_close" not in prices:
        prices["adj_close"] = prices["close"]
    prices = prices.dropna(subset=["close"]).assign(
        ticker=path.stem, date=lambda frame: pd.to_datetime(frame["date"])
    )
    return prices[["ticker", "date", "open", "high", "low", "close", "adj_close", "volume"]].astype(
        {"volume": "float64"}
    )


def real_market(folder: Path) -> pd.DataFrame:
    """Features of every CSV in a folder of yfinance-style files."""
    return pd.concat(
        [features_of(read_prices(path)) for path in sorted(folder.glob("*.csv"))],
        ignore_index=True,
    )


def share_flagged(
    features: pd.DataFrame, params: dict, method: str, as_of: str | None
) -> tuple[float, int]:
    """Share of tested tickers with at least one drifted feature, and how many were tested.

    A ticker with too little history for any test counts neither way, so a date early in the
    data cannot pass the calm goal by testing nothing.
    """
    results = detect_drift_node(
        features, {}, {**params, "method": method, "as_of": as_of}, RUN_CONTEXT
    )
    tested = results[results["p_value"].notna()]
    flagged = tested.groupby("ticker")["drift"].any()
    return (flagged.mean() if len(flagged) else float("nan")), len(flagged)


def _percent(share: float) -> str:
    """A share as a percentage, or `untested` when no ticker had enough history."""
    return "untested" if np.isnan(share) else f"{share:.1%}"


def scan_dates(features: pd.DataFrame, every: int, skip: int) -> list[str]:
    """Every `every`-th session of the data after the first `skip` (enough history to test)."""
    sessions = np.sort(features["date"].unique())[skip::every]
    return [str(pd.Timestamp(day).date()) for day in sessions]


def main() -> None:
    """Print the flagged shares of both methods for every scenario, with the goal of each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=750)
    parser.add_argument(
        "--real", type=Path, help=f"folder of yfinance CSVs (default {NSE_DIR}, else the sample)"
    )
    parser.add_argument(
        "--scan-every", type=int, default=20, help="also scan every n-th real session (0: off)"
    )
    args = parser.parse_args()
    params = yaml.safe_load(PARAMETERS.read_text())["drift"]
    folder = args.real or (NSE_DIR if NSE_DIR.exists() else SAMPLE_DIR)
    real = real_market(folder)
    first, last = real["date"].min(), real["date"].max()
    scenarios = []
    for garch in (False, True):
        kind = "GARCH(1,1)" if garch else "iid"
        for factor, goal in ((1.0, "<= 5%"), (3.0, ">= 90%")):
            market = simulate_market(args.tickers, args.sessions, factor, seed=7, garch=garch)
            label = f"simulated {kind}, {'no change' if factor == 1 else 'volatility x3'}"
            scenarios.append((label, market, None, goal))
    real_days = [(CRASH_DATE, "COVID crash", ">= 90%")] + [
        (day, "calm", "<= 5%") for day in CALM_DATES
    ]
    scenarios += [
        (f"real {folder.name}, {day} ({kind})", real, day, goal)
        for day, kind, goal in real_days
        if first <= pd.Timestamp(day) <= last  # a date past the data would test its last date
    ]
    # tested: tickers with enough history for the calibrated test (ks needs only the windows)
    print(f"{'scenario':<50} {'tested':>7} {'goal':>7} {'ks (seed)':>10} {'calibrated':>11}")
    started, runs = time.perf_counter(), 0
    for label, market, as_of, goal in scenarios:
        (ks, _), (calibrated, tested) = (
            share_flagged(market, params, method, as_of) for method in ("ks", "calibrated")
        )
        runs += 2
        print(f"{label:<50} {tested:>7} {goal:>7} {_percent(ks):>10} {_percent(calibrated):>11}")
    if args.scan_every:
        # every date, crashes included: how often each method alarms on real data at large
        skip = params["baseline_window"] + 2 * params["current_window"] + params["min_history"]
        days = scan_dates(real, args.scan_every, skip)
        shares = {
            method: pd.Series([share_flagged(real, params, method, day)[0] for day in days])
            for method in ("ks", "calibrated")
        }
        runs += 2 * len(days)
        for name, statistic in (
            ("mean share flagged", lambda share: share.mean()),
            ("dates with > 5% flagged", lambda share: (share > 0.05).mean()),
        ):
            label = f"real {folder.name}, {len(days)} dates: {name}"
            print(
                f"{label:<50} {real['ticker'].nunique():>7} {'-':>7} "
                f"{statistic(shares['ks']):>10.1%} {statistic(shares['calibrated']):>11.1%}"
            )
    print(f"({time.perf_counter() - started:.1f}s for {runs} drift runs)")


if __name__ == "__main__":
    main()
