"""The dask engine on a real `dask scheduler` with two `dask worker` processes equals the local one."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_end_to_end import copy_project, kedro
from tests.test_incremental import assert_layers_equal

pytestmark = pytest.mark.e2e

DASK = str(Path(sys.executable).with_name("dask"))
STAGES = "--pipelines=ingestion,cleaning,features"


def free_port() -> int:
    """A TCP port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def cluster(project_root: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A scheduler and two single-threaded workers serving a project copy; its address and copy."""
    project = copy_project(project_root, tmp_path / "dask")
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
