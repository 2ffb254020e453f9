"""Features at 2000 tickers x 2500 sessions: `kedro run --pipelines=features` against the seed and a floor.

Run: `.venv/bin/python benchmarks/features.py [--tickers 2000 --sessions 2500 --repeat 3]`. Each
method runs in its own process tree so that its wall time and peak memory (worker processes
included) are its own; the rounds are interleaved and the median wall time counts. Same input, same
indicators (the seed's set: daily_return, sma_20, sma_50, rsi_14, macd/signal/hist, volatility).
The Kedro run is a full rebuild over the table the previous round wrote, as a real rebuild is.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from stock_pipeline.datasets import DeltaTableDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    SEED_INDICATORS,
    median_runs,
    print_table,
    project_copy,
    synthetic_prices,
)

from stock_pipeline.pipelines.features.indicators import build_indicators


def seed_way(source: Path, target: Path) -> None:
    """The seed's implementation: per ticker, pandas rolling and ewm, concatenated."""
    prices = pd.read_parquet(source)
    frames = []
    for _, group in prices.groupby("ticker"):
        frame = group.sort_values("date").copy()
        close = frame["close"]
        frame["daily_return"] = close.pct_change()
        frame["sma_20"] = close.rolling(20).mean()
        frame["sma_50"] = close.rolling(50).mean()
        delta = close.diff()
        gain = delta.clip(lower=0).ewm(span=14).mean()
        loss = (-delta.clip(upper=0)).ewm(span=14).mean()
        frame["rsi_14"] = 100 - 100 / (1 + gain / loss)
        frame["macd"] = close.ewm(span=12).mean() - close.ewm(span=26).mean()
        frame["macd_signal"] = frame["macd"].ewm(span=9).mean()
        frame["macd_hist"] = frame["macd"] - frame["macd_signal"]
        frame["volatility"] = frame["daily_return"].rolling(20).std()
        frames.append(frame.iloc[50:])
    pd.concat(frames, ignore_index=True).to_parquet(target, index=False)


def floor_way(source: Path, target: Path) -> None:
    """No framework: read the Parquet, TA-Lib and numpy per ticker slice, write the Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import talib

    table = pq.read_table(source)
    tickers = table.column("ticker").to_numpy()
    close = table.column("close").to_numpy()
    starts = np.flatnonzero(np.r_[True, tickers[1:] != tickers[:-1]])
    ends = np.r_[starts[1:], len(tickers)]
    names = [name for indicator in build_indicators(SEED_INDICATORS) for name in indicator.columns]
    out = {name: np.empty(len(close)) for name in names}
    for start, end in zip(starts, ends, strict=True):
        c = close[start:end]
        ret = np.r_[np.nan, c[1:] / c[:-1] - 1]
        out["daily_return"][start:end] = ret
        out["sma_20"][start:end] = talib.SMA(c, 20)
        out["sma_50"][start:end] = talib.SMA(c, 50)
        out["rsi_14"][start:end] = talib.RSI(c, 14)
        macd, signal, hist = talib.MACD(c, 12, 26, 9)
        out["macd"][start:end], out["macd_signal"][start:end], out["macd_hist"][start:end] = (
            macd,
            signal,
            hist,
        )
        out["volatility"][start:end] = talib.STDDEV(ret, 20, 1.0) * np.sqrt(20 / 19)
    keep = (np.arange(len(close)) - np.repeat(starts, ends - starts)) >= 49
    columns = {name: table.column(name).filter(pa.array(keep)) for name in table.column_names}
    columns.update({name: pa.array(values[keep]) for name, values in out.items()})
    # the same writer option as the project's catalog, so that both write the same way
    pq.write_table(pa.table(columns), target, use_dictionary=["ticker", "date"])


def kedro_project(project: Path, prices: pd.DataFrame) -> list[str]:
    """A project copy whose prices are the benchmark's; the command that runs its features."""
    project_copy(project)
    bench = project / "conf" / "bench"
    bench.mkdir()
    (bench / "parameters.yml").write_text(
        yaml.safe_dump({"features": {"indicators": SEED_INDICATORS}})
    )
    DeltaTableDataset(str(project / "data/03_primary/prices")).save(prices)
    no_changes = pd.DataFrame({"ticker": pd.Series(dtype=str), "since": pd.Series(dtype="M8[us]")})
    no_changes.to_parquet(project / "data/03_primary/price_changes.parquet")  # rebuild reads all
    return [
        str(Path(sys.executable).with_name("kedro")),
        "run",
        "--pipelines=features",
        "--env=bench",
        "--params=rebuild=true",  # a full rebuild: every ticker's every row
    ]


def main() -> None:
    """Generate the input once, time the three methods in turn, print the median of each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickers", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=2500)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median wall time counts")
    parser.add_argument("--method", choices=["seed", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--paths", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        {"seed": seed_way, "floor": floor_way}[args.method](*args.paths)
        return
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        prices = synthetic_prices(args.tickers, args.sessions)
        source = scratch / "prices.parquet"
        prices.to_parquet(source, index=False)
        print(f"{len(prices):,} rows ({args.tickers} tickers x {args.sessions} sessions)")
        project = scratch / "project"
        this = [sys.executable, __file__, "--paths", str(source)]
        commands = {
            "kedro run --pipelines=features": (kedro_project(project, prices), project),
            "floor: Parquet + TA-Lib + numpy": (
                [*this, str(scratch / "floor.parquet"), "--method", "floor"],
                None,
            ),
            "seed: per-ticker pandas": (
                [*this, str(scratch / "seed.parquet"), "--method", "seed"],
                None,
            ),
        }
        del prices
        rows = median_runs(commands, args.repeat)
    kedro_wall, floor_wall, seed_wall = (row[1] for row in rows)
    print_table(
        f"features benchmark (median of {args.repeat} rounds)",
        rows,
        f"kedro / floor = {kedro_wall / floor_wall:.2f}x (goal <= 1.5x); "
        f"seed / kedro = {seed_wall / kedro_wall:.2f}x (goal >= 2x); peak goal < 3 GiB",
    )


if __name__ == "__main__":
    main()
