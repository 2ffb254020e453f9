"""The whole market through the front door: ingestion, cleaning and features on a synthetic universe.

    python benchmarks/scale.py                       # 3000 tickers x 10 years (about 7.3M rows)
    python benchmarks/scale.py --tickers 300 --years 2

A full run (`kedro run --pipelines=ingestion,cleaning,features` on an empty data folder, the
synthetic source and a universe file), then an incremental run that adds `--more` sessions: on
the local engine, then on `compute.engine: dask` against a `dask scheduler` and two
`dask worker` processes the script starts (their memory counts in the peak).
Prints, per run, the wall time, the process tree's peak resident memory (sampled every 0.2 s),
the stage times (from the run record's per-node seconds), the rows gold holds and its version. Takes minutes at the
default size: run it on a quiet machine.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml
from deltalake import DeltaTable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import project_copy, timed_tree

from stock_pipeline.pipeline_registry import register_pipelines
from stock_pipeline.trading_calendar import nse_sessions

STAGES = "--pipelines=ingestion,cleaning,features"


def last_record(project: Path) -> dict:
    """The newest run record."""
    records = sorted((project / "data/08_reporting/runs").glob("*.json"), key=os.path.getmtime)
    return json.loads(records[-1].read_text())


def stage_seconds(record: dict) -> dict[str, float]:
    """Seconds of ingestion, cleaning and features in a run record: each stage's nodes, each
    node's time from its start to its last output saved (the features' lazy save included)."""
    pipelines = register_pipelines()
    nodes = record["nodes"]
    return {
        stage: sum(nodes[node.name]["duration_seconds"] for node in pipelines[stage].nodes)
        for stage in ("ingestion", "cleaning", "features")
    }


def start_cluster(project: Path, env: dict[str, str]) -> tuple[str, list[subprocess.Popen]]:
    """A `dask scheduler` and two `dask worker` processes serving the project; address, processes."""
    dask = str(Path(sys.executable).with_name("dask"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"cwd": project, "env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], **quiet
    )
    time.sleep(3)
    workers = [
        subprocess.Popen(
            [dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
            **quiet,
        )
        for _ in range(2)
    ]
    time.sleep(3)
    return address, [scheduler, *workers]


def runs(
    project: Path, universe: Path, first: str, last: str, later: str, dask: bool
) -> list[tuple]:
    """A full run to `last`, then an incremental run to `later`: wall, peak, stages, gold rows."""
    bench = project / "conf" / "bench"
    bench.mkdir()
    ingestion = {"source": "synthetic", "universe_file": str(universe)}
    ingestion |= {"start_date": first, "end_date": last}
    kedro = [str(Path(sys.executable).with_name("kedro")), "run", STAGES, "--env=bench"]
    env = os.environ | {"PYTHONPATH": str(project / "src"), "KEDRO_DISABLE_TELEMETRY": "true"}
    address, cluster = start_cluster(project, env) if dask else (None, [])
    compute = {"engine": "dask", "dask": {"address": address}} if dask else {"engine": "local"}
    (bench / "parameters.yml").write_text(
        yaml.safe_dump({"ingestion": ingestion, "compute": compute})
    )
    rows = []
    try:
        for label, extra in (
            ("full run", []),
            ("incremental", [f"--params=ingestion.end_date={later}"]),
        ):
            os.sync()  # the previous run's files on disk first: a daily run starts on a settled disk
            wall, peak = timed_tree([*kedro, *extra], project, tuple(p.pid for p in cluster))
            gold = DeltaTable(str(project / "data/04_feature/features"))
            record = last_record(project)
            version = record["versions"]["features"]
            rows.append((label, wall, peak, stage_seconds(record), gold.count(), version))
    finally:
        for process in reversed(cluster):
            process.terminate()
            process.wait(timeout=30)
    return rows


def main() -> None:
    """Full then incremental runs on the local engine, then on a dask cluster; one table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickers", type=int, default=3000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--more", type=int, default=5, help="sessions the incremental run adds")
    parser.add_argument("--end", default="2025-06-30", help="last session of the full run")
    parser.add_argument("--no-dask", action="store_true", help="the local engine only")
    args = parser.parse_args()
    sessions = nse_sessions(pd.Timestamp(args.end) - pd.DateOffset(years=args.years), "2030-12-31")
    full_end = sessions[sessions <= pd.Timestamp(args.end)][-1]
    later_end = sessions[sessions > full_end][args.more - 1]
    dates = (str(sessions[0].date()), str(full_end.date()), str(later_end.date()))
    engines = ["local"] if args.no_dask else ["local", "dask"]
    table = {}
    with tempfile.TemporaryDirectory(prefix="scale-") as scratch:
        universe = Path(scratch) / "universe.txt"
        universe.write_text("".join(f"S{i:05d}.NS\n" for i in range(args.tickers)))
        for engine in engines:
            project = project_copy(Path(scratch) / engine)
            table[engine] = runs(
                project, universe, *dates, dask="cluster" if engine == "dask" else None
            )
    print(
        f"\n{args.tickers} tickers x {args.years} years (+{args.more} sessions); local = this "
        "process on both cores, dask = a scheduler and two single-threaded workers"
    )
    print(
        f"{'engine':<8}{'run':<13}{'wall s':>9}{'peak GiB':>10}{'ingest s':>10}{'clean s':>9}"
        f"{'features s':>12}{'gold rows':>12}{'version':>9}"
    )
    for engine, rows in table.items():
        for label, wall, peak, stages, gold_rows, version in rows:
            print(
                f"{engine:<8}{label:<13}{wall:>9.1f}{peak:>10.2f}{stages['ingestion']:>10.1f}"
                f"{stages['cleaning']:>9.1f}{stages['features']:>12.1f}{gold_rows:>12,}"
                f"{version:>9}"
            )
        print(f"{engine}: incremental / full wall time {rows[1][1] / rows[0][1]:.0%} (goal: 20%)")


if __name__ == "__main__":
    main()
