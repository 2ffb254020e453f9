"""A year on cron, compressed: one daily run per NSE session, many in a row, as cron would run them.

    python benchmarks/season.py                    # 300 tickers from 2016, then 250 daily runs
    python benchmarks/season.py --runs 20          # a quick look

A first run fetches the synthetic universe from `--start` to the session before the first daily
run; then each run adds one session (`kedro run` of ingestion, cleaning, features, persistence
and drift; training and reports are left out). Per run it prints the wall time, the process
tree's peak memory, the seconds of loading gold as `catalog.load("features")` does (best of 3)
and of the API's reload of its snapshot after the run, the files and MiB of each stored layer,
gold's log files, a `c` when gold compacted, and the data folder against the storage policy's
bound (docs/storage.md: each Delta table's `storage_bound()`, the rest as stored). At the end,
the goal figures: the last and first runs' median wall time and peak memory, gold's load against
its load right after a compaction, the largest share of the bound, the data folder against a
fresh rebuild to the same session, and whether gold and SQL equal that rebuild (floats within 1e-9).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from deltalake import DeltaTable
from kedro.io import AbstractDataset
from sqlalchemy import create_engine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import project_copy, timed_tree

from stock_pipeline.api.store import CachedFile, read_features
from stock_pipeline.configuration import config_loader
from stock_pipeline.datasets import DeltaTableDataset
from stock_pipeline.datasets.delta_table import COMPACTION_KEY
from stock_pipeline.trading_calendar import nse_sessions
from stock_pipeline.versions import load_table

STAGES = "--pipelines=ingestion,cleaning,features,persistence,drift"
LAYERS = {
    "bronze": "data/01_raw/prices",
    "silver": "data/02_intermediate/clean_prices",
    "quarantine": "data/02_intermediate/quarantine",
    "primary": "data/03_primary/prices",
    "gold": "data/04_feature/features",
    "drift": "data/08_reporting/drift/drift_results",
    "runs": "data/08_reporting/runs",
}
GOLD = LAYERS["gold"]
TABLES = {"clean_prices": "silver", "prices@table": "primary", "features": "gold"}
POLICY = ("type", "retention_versions", "max_files_per_bucket", "small_file_kib")


def folder_size(path: Path) -> tuple[int, int]:
    """Files and bytes under a folder."""
    sizes = [entry.stat().st_size for entry in path.rglob("*") if entry.is_file()]
    return len(sizes), sum(sizes)


def configure(project: Path, universe: Path, start: str) -> list[str]:
    """The project's `season` environment (synthetic source, the universe, its start); the command."""
    season = project / "conf" / "season"
    season.mkdir()
    ingestion = {"source": "synthetic", "universe_file": str(universe), "start_date": start}
    (season / "parameters.yml").write_text(yaml.safe_dump({"ingestion": ingestion}))
    return [str(Path(sys.executable).with_name("kedro")), "run", STAGES, "--env=season"]


def run_to(project: Path, command: list[str], session: pd.Timestamp) -> tuple[float, float]:
    """One run up to `session`: its wall seconds and peak GiB."""
    os.sync()  # the previous run's files on disk first, as cron's next day finds them
    return timed_tree([*command, f"--params=ingestion.end_date={session.date()}"], project)


def seconds(work, repeat: int = 1) -> float:
    """Wall seconds of `work()`, the best of `repeat` (a busy moment of the machine is not the
    code's cost)."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return min(timings)


def policy_tables(project: Path) -> dict[str, DeltaTableDataset]:
    """The Delta tables by layer, with the storage settings of the project's `season` catalog."""
    catalog = config_loader(project, "season")["catalog"]
    return {
        layer: AbstractDataset.from_config(
            name,
            {key: catalog[name][key] for key in POLICY if key in catalog[name]}
            | {"filepath": str(project / LAYERS[layer])},
        )
        for name, layer in TABLES.items()
    }


def data_bound(project: Path, tables: dict[str, DeltaTableDataset]) -> int:
    """The bytes the storage policy allows the data folder now: each Delta table's bound, the
    rest (bronze, SQL, parts kept retention_days, run records) as stored."""
    total = folder_size(project / "data")[1]
    for layer, table in tables.items():
        total += table.storage_bound() - folder_size(project / LAYERS[layer])[1]
    return total


def stock_features(project: Path) -> pd.DataFrame:
    """SQL stock_features as stored, by ticker then date."""
    engine = create_engine(f"sqlite:///{project / 'data/stock_pipeline.db'}")
    with engine.connect() as connection:
        rows = pd.read_sql("SELECT * FROM stock_features ORDER BY ticker, date", connection)
    engine.dispose()
    return rows.drop(columns=["created_at", "updated_at"])


def equal_rows(left: pd.DataFrame, right: pd.DataFrame) -> bool:
    """Same keys and columns; floats within 1e-9 relative (NaN where the other is NaN)."""
    if list(left.columns) != list(right.columns) or len(left) != len(right):
        return False
    for column in left.columns:
        a, b = left[column].to_numpy(), right[column].to_numpy()
        if a.dtype.kind == "f":
            if not np.allclose(a, b, rtol=1e-9, atol=0, equal_nan=True):
                return False
        elif not (pd.Series(a).astype(str).to_numpy() == pd.Series(b).astype(str).to_numpy()).all():
            return False
    return True


def main() -> None:
    """The first run, the daily runs with their figures, then the comparison with a rebuild."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=300)
    parser.add_argument("--start", default="2016-01-01", help="the universe's first session")
    parser.add_argument("--first-day", default="2024-01-01", help="the first daily run's session")
    parser.add_argument("--runs", type=int, default=250, help="daily runs, one session each")
    args = parser.parse_args()
    sessions = nse_sessions(args.first_day, "2030-12-31")[: args.runs]
    before = nse_sessions(args.start, args.first_day)
    with tempfile.TemporaryDirectory(prefix="season-") as scratch:
        universe = Path(scratch) / "universe.txt"
        universe.write_text("".join(f"S{i:05d}.NS\n" for i in range(args.tickers)))
        project = project_copy(Path(scratch) / "daily")
        command = configure(project, universe, args.start)
        run_to(project, command, before[before < sessions[0]][-1])
        api = CachedFile(project / GOLD, read_features)
        api.get()
        tables = policy_tables(project)
        print(
            f"{args.tickers} tickers from {args.start}; {args.runs} daily runs from {sessions[0].date()}"
        )
        header = f"{'run':>4} {'session':<11}{'wall s':>7}{'peak GiB':>9}{'load s':>7}{'api s':>7}"
        print(
            header
            + "".join(f"{name:>17}" for name in LAYERS)
            + f"{'log':>5}{'data MiB':>10}{'bound MiB':>10}"
        )
        walls, peaks, loads, compacted, shares = [], [], [], [], []
        for number, session in enumerate(sessions, start=1):
            before_run = DeltaTable(str(project / GOLD)).version()
            wall, peak = run_to(project, command, session)
            load = seconds(lambda: load_table(project / GOLD), repeat=3)
            reload = seconds(api.refresh)
            sizes = {name: folder_size(project / path) for name, path in LAYERS.items()}
            data = folder_size(project / "data")[1]
            bound = data_bound(project, tables)
            log_files = len(list((project / GOLD / "_delta_log").iterdir()))
            since = DeltaTable(str(project / GOLD)).history(limit=50)
            compacted.append(any(e["version"] > before_run and COMPACTION_KEY in e for e in since))
            walls.append(wall), peaks.append(peak), loads.append(load), shares.append(data / bound)
            print(
                f"{number:>4} {session.date()!s:<11}{wall:>7.1f}{peak:>9.2f}{load:>7.2f}"
                f"{reload:>7.2f}"
                + "".join(f"{files:>7} {size / 2**20:>7.1f}M" for files, size in sizes.values())
                + f"{log_files:>4}{'c' if compacted[-1] else ' '}"
                + f"{data / 2**20:>10.1f}{bound / 2**20:>10.1f}"
                + ("" if data <= bound else " OVER THE BOUND"),
                flush=True,
            )
        rebuilt = project_copy(Path(scratch) / "rebuild")
        run_to(rebuilt, configure(rebuilt, universe, args.start), sessions[-1])
        summarize(walls, peaks, loads, compacted, shares)
        data, fresh = folder_size(project / "data")[1], folder_size(rebuilt / "data")[1]
        print(
            f"data folder {data / 2**20:.0f} MiB, a fresh rebuild {fresh / 2**20:.0f} MiB: "
            f"{data / fresh:.2f}x; gold load in the rebuild "
            f"{seconds(lambda: load_table(rebuilt / GOLD), repeat=3):.2f} s"
        )
        gold_equal = equal_rows(load_table(project / GOLD), load_table(rebuilt / GOLD))
        sql_equal = equal_rows(stock_features(project), stock_features(rebuilt))
        print(f"gold equals the rebuild: {gold_equal}; SQL equals the rebuild: {sql_equal}")


def summarize(
    walls: list[float],
    peaks: list[float],
    loads: list[float],
    compacted: list[bool],
    shares: list[float],
) -> None:
    """The goal figures: last against first runs' wall time and peak memory, gold's load against
    its load right after a compaction, the largest share of the storage bound."""
    first, last = statistics.median(walls[:5]), statistics.median(walls[-5:])
    print(f"median wall, first 5 runs {first:.1f} s, last 5 {last:.1f} s: {last / first:.2f}x")
    first, last = statistics.median(peaks[:5]), statistics.median(peaks[-5:])
    print(f"median peak, first 5 runs {first:.2f} GiB, last 5 {last:.2f} GiB: {last / first:.2f}x")
    after = [load for load, done in zip(loads, compacted, strict=True) if done]
    if after:
        base = statistics.median(after[-10:])
        print(
            f"gold load: right after the last {min(10, len(after))} compactions (median) "
            f"{base:.3f} s; last 5 runs median {statistics.median(loads[-5:]):.3f} s "
            f"({statistics.median(loads[-5:]) / base:.2f}x), worst of the last 50 "
            f"{max(loads[-50:]):.3f} s ({max(loads[-50:]) / base:.2f}x); {len(after)} compactions"
        )
    worst = max(range(len(shares)), key=shares.__getitem__)
    print(f"data folder / policy bound: at most {shares[worst]:.2f} (run {worst + 1})")


if __name__ == "__main__":
    main()
