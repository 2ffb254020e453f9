"""notebooks/explore.ipynb, executed with Papermill in a project copy, as a researcher opens it."""

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import papermill
from kedro.io import DataCatalog


def test_the_notebook_loads_features_through_the_kedro_ipython_extension(
    report_project: Callable[[], DataCatalog], features: pd.DataFrame, tmp_path: Path
):
    report_project().save("features", features)

    executed = papermill.execute_notebook(
        "notebooks/explore.ipynb",
        str(tmp_path / "explore.ipynb"),
        kernel_name="python3",
        cwd="notebooks",
        progress_bar=False,
    )

    outputs = [output for cell in executed.cells for output in cell.get("outputs", [])]
    html = "".join(output.get("data", {}).get("text/html", "") for output in outputs)
    assert "INFY.NS" in html and "rsi_14" in html
    assert sum("image/png" in output.get("data", {}) for output in outputs) == 2
