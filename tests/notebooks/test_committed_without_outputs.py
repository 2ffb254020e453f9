"""Notebooks are committed without outputs, so that diffs show code and reports are rebuilt by runs."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_has_no_outputs(notebook: Path):
    cells = json.loads(notebook.read_text())["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert code
    assert all(cell.get("outputs") == [] for cell in code)
    assert all(cell.get("execution_count") is None for cell in code)


def test_every_report_notebook_is_checked():
    assert {path.name for path in NOTEBOOKS} >= {
        "quality_report.ipynb",
        "drift_report.ipynb",
        "model_report.ipynb",
        "explore.ipynb",
    }
