"""What a report notebook reads: the datasets its reporting node was given (so kedro-viz shows
them), or, when the notebook is opened by hand in Jupyter, the same names from the catalog."""

import json
from pathlib import Path
from typing import Any

import pandas as pd

from stock_pipeline.atomic import write_json_atomically


def write_report_inputs(inputs: dict[str, Any], folder: Path) -> None:
    """Each input into `folder`: DataFrames as Parquet, anything else as JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in inputs.items():
        if isinstance(data, pd.DataFrame):
            data.to_parquet(folder / f"{name}.parquet", index=False)
        else:
            write_json_atomically(data, folder / f"{name}.json")


def load_report_inputs(
    names: list[str],
    inputs_dir: str | None = None,
    project_path: str | None = None,
    env: str | None = None,
) -> dict[str, Any]:
    """The named datasets: from `inputs_dir` when the pipeline ran the notebook, else from the
    project's catalog (None for a dataset not written yet)."""
    if inputs_dir:
        return {name: _read_input(Path(inputs_dir), name) for name in names}
    # imported here: only a notebook opened by hand needs a Kedro session
    from kedro.framework.session import KedroSession  # noqa: PLC0415
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415
    from kedro.utils import find_kedro_project  # noqa: PLC0415

    project = Path(project_path) if project_path else find_kedro_project(Path.cwd())
    bootstrap_project(project)
    catalog = KedroSession.create(project_path=project, env=env).load_context().catalog
    return {name: catalog.load(name) if catalog.exists(name) else None for name in names}


def _read_input(folder: Path, name: str) -> Any:
    """One input written by write_report_inputs (None when the node had none)."""
    parquet = folder / f"{name}.parquet"
    if parquet.exists():
        return pd.read_parquet(parquet)
    path = folder / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
