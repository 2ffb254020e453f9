"""The dask engine on a real `dask scheduler` with two `dask worker` processes equals the local one;
ingestion spread over the workers keeps one rate limit for all of them."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
import yaml
from distributed import Client

from stock_pipeline.contract import BronzeAppend
from stock_pipeline.datasets import BronzeDataset
from stock_pipeline.engine import close_clients
from stock_pipeline.pipelines.ingestion import nodes
from tests.sources.yahoo_stub import (
    YahooStub,
    install_stub,
    reset_yfinance_per_process,
    stub_server,
    stub_source,
)
from tests.test_end_to_end import copy_project, kedro
from tests.test_incremental import assert_layers_equal
from tests.test_rate_limit import most_in_window

pytestmark = pytest.mark.e2e

DASK = str(Path(sys.executable).with_name("dask"))
STAGES = "--pipelines=ingestion,cleaning,features"
RATE_LIMIT = {"requests_per_second": 10.0, "burst": 3, "max_concurrent": 2}
TICKERS = [f"T{number:02d}.NS" for number in range(8)]
STORED = TICKERS[:2]  # with bronze from an earlier run: the workers read it to extend it
THROTTLED = TICKERS[2]  # Yahoo answers its first request with 429
UNKNOWN = "GONE.NS"  # Yahoo has nothing for it
INGESTION_CONF = Path(__file__).resolve().parents[1] / "conf/base/parameters_ingestion.yml"
RUN_CONTEXT = {"run_id": "dask-ingestion", "started_at": "2024-07-01T12:00:00+00:00"}


def free_port() -> int:
    """A TCP port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(
    project_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """A scheduler and two single-threaded workers serving a project copy; its address and copy
    (the tests of this module share them)."""
    project = copy_project(project_root, tmp_path_factory.mktemp("dask"))
    address = f"tcp://127.0.0.1:{free_port()}"
    env = os.environ | {"PYTHONPATH": f"{project / 'src'}{os.pathsep}{project_root}"}
    common = ["--no-dashboard"]
    processes = [
        subprocess.Popen(
            [
                DASK,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                address.rsplit(":", 1)[1],
                *common,
            ],
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    time.sleep(3)
    processes += [
        subprocess.Popen(
            [DASK, "worker", address, "--nworkers", "1", "--nthreads", "1", *common],
            cwd=project,  # the catalog's relative paths resolve as in the driver
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        yield address, project
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)


def test_dask_engine_equals_the_local_one(
    cluster: tuple[str, Path], project_root: Path, tmp_path: Path
):
    address, project = cluster
    dask_params = f"--params=compute.engine=dask,compute.dask.address={address}"
    kedro(project, "run", STAGES, "--env=sample", dask_params)
    log = (project / "logs/pipeline.log").read_text()
    assert f"dask engine: <Client: '{address}'" in log  # the log names the cluster
    local = copy_project(project_root, tmp_path / "local")
    kedro(local, "run", STAGES, "--env=sample")
    assert_layers_equal(project, local)


def ingestion_params(**overrides) -> dict:
    """conf/base's ingestion parameters for the stub's tickers, with short retries."""
    base = yaml.safe_load(INGESTION_CONF.read_text())["ingestion"]
    return (
        base
        | {
            "source": "yfinance",
            "tickers": [*TICKERS, UNKNOWN],
            "start_date": "2024-05-02",
            "end_date": "2024-06-28",
            "max_workers": 2,
            "max_failed_ratio": 0.5,
            "retry": {"attempts": 3, "initial_wait_seconds": 0.2, "jitter_seconds": 0.0},
            "rate_limit": RATE_LIMIT,
        }
        | overrides
    )


def ingest_from_stub(
    httpd: ThreadingHTTPServer,
    loaders: dict,
    params: dict,
    compute: dict | None = None,
    delay_seconds: float = 0.0,
) -> tuple[dict, dict, YahooStub]:
    """One ingestion run against a fresh stub (THROTTLED answered 429 once): bronze to write, the
    report, and the stub with what it saw."""
    stub = install_stub(httpd, delay_seconds=delay_seconds)
    for ticker in TICKERS:
        stub.market(ticker)
    stub.throttle(THROTTLED, 1)
    with pytest.MonkeyPatch.context() as patch:  # workers get the partial with their tasks
        patch.setattr(nodes, "build_source", partial(stub_source, stub.base_url))
        changed, report = nodes.ingest_prices(loaders, params, RUN_CONTEXT, compute)
    return changed, report, stub


def _bronze_rows(written: pd.DataFrame | BronzeAppend) -> pd.DataFrame:
    """The rows a bronze save writes: a whole file, or the rows appended to one."""
    return written.rows if isinstance(written, BronzeAppend) else written


def test_ingestion_spread_over_the_workers_keeps_one_rate_limit(
    cluster: tuple[str, Path], tmp_path: Path
):
    address, _ = cluster
    with Client(address) as client:  # yfinance on each worker starts with empty caches
        client.wait_for_workers(2)
        client.run(reset_yfinance_per_process, tmp_path / "yfinance")
    reset_yfinance_per_process(tmp_path / "yfinance")
    bronze = BronzeDataset(path=str(tmp_path / "bronze"))
    try:
        with stub_server() as httpd:
            earlier = ingestion_params(tickers=STORED, end_date="2024-06-14", rate_limit=None)
            bronze.save(ingest_from_stub(httpd, {}, earlier)[0])
            on_dask = {"engine": "dask", "dask": {"address": address}}
            dask_changed, dask_report, on_cluster = ingest_from_stub(
                httpd, bronze.load(), ingestion_params(), on_dask, delay_seconds=0.1
            )
            local_changed, local_report, here = ingest_from_stub(
                httpd, bronze.load(), ingestion_params(), {"engine": "local"}, delay_seconds=0.1
            )
    finally:
        close_clients()  # before the cluster stops

    assert dask_report == local_report  # the same outcomes, and the same bronze to write
    assert dask_changed.keys() == local_changed.keys() == set(TICKERS)
    for ticker, written in dask_changed.items():
        local = local_changed[ticker]
        assert type(written) is type(local)  # both append, or both replace the file
        pd.testing.assert_frame_equal(_bronze_rows(written), _bronze_rows(local))
    statuses = {ticker: entry["status"] for ticker, entry in dask_report["tickers"].items()}
    assert statuses == {
        **dict.fromkeys(STORED, "updated"),
        **dict.fromkeys(TICKERS[2:], "created"),  # THROTTLED too, retried after its 429
        UNKNOWN: "failed",
    }
    assert "no data" in dask_report["tickers"][UNKNOWN]["reason"]

    most = RATE_LIMIT["requests_per_second"] + RATE_LIMIT["burst"]
    for stub in (on_cluster, here):
        assert stub.rate_limited[THROTTLED] == 0
        assert stub.chart_requests.count(THROTTLED) >= 2
        assert most_in_window([at for at, _ in stub.arrivals], 1.0) <= most
        assert stub.most_in_flight <= RATE_LIMIT["max_concurrent"]
    senders = {sender for _, sender in on_cluster.arrivals}
    assert len(senders) == 2  # both workers fetched, the driver did not
    assert str(os.getpid()) not in senders
    assert {sender for _, sender in here.arrivals} == {str(os.getpid())}
