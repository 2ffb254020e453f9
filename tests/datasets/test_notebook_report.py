"""NotebookReportDataset: runs a notebook with Papermill and writes its HTML, atomically."""

from pathlib import Path

import nbformat
import pandas as pd
import pytest
from kedro.io import DatasetError

from stock_pipeline.datasets import NotebookReportDataset


def _write_notebook(path: Path, body: str) -> Path:
    """A two-cell notebook: a tagged parameters cell, then `body`."""
    parameters = nbformat.v4.new_code_cell(
        "title = 'default'\nproject_path = None\ninputs_dir = None"
    )
    parameters.metadata["tags"] = ["parameters"]
    notebook = nbformat.v4.new_notebook(cells=[parameters, nbformat.v4.new_code_cell(body)])
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, path)
    return path


def test_save_executes_the_notebook_and_writes_html_with_its_chart(tmp_path: Path):
    notebook = _write_notebook(
        tmp_path / "chart.ipynb",
        "%matplotlib inline\n"
        "import os\n"
        "import matplotlib.pyplot as plt\n"
        "print(f'report {title}, run in the project: {os.getcwd() == project_path}')\n"
        "plt.plot([1, 3, 2])\n"
        "plt.show()",
    )
    html_path = tmp_path / "reports" / "chart.html"
    dataset = NotebookReportDataset(filepath=str(html_path), notebook=str(notebook))

    dataset.save({"parameters": {"title": "injected"}})

    html = dataset.load()
    assert "report injected, run in the project: True" in html
    assert "<img" in html and "data:image/png;base64," in html
    executed = nbformat.read(html_path.with_suffix(".ipynb"), as_version=4)
    assert "injected-parameters" in executed.cells[1].metadata["tags"]
    assert sorted(p.name for p in html_path.parent.iterdir()) == ["chart.html", "chart.ipynb"]


def test_a_failing_cell_fails_the_save_with_its_error_and_keeps_the_previous_report(
    tmp_path: Path,
):
    notebook = _write_notebook(
        tmp_path / "broken.ipynb", "raise ValueError(f'no data for {title}')"
    )
    html_path = tmp_path / "broken.html"
    html_path.write_text("previous report")
    dataset = NotebookReportDataset(filepath=str(html_path), notebook=str(notebook))

    with pytest.raises(DatasetError, match=r"failed in cell .*ValueError: no data for INFY\.NS"):
        dataset.save({"parameters": {"title": "INFY.NS"}})

    assert dataset.load() == "previous report"
    assert html_path.with_suffix(".failed.ipynb").exists()
    assert not list(tmp_path.glob(".*.tmp.*"))


def test_the_nodes_inputs_reach_the_notebook(tmp_path: Path):
    notebook = _write_notebook(
        tmp_path / "inputs.ipynb",
        "from stock_pipeline.report_inputs import load_report_inputs\n"
        "data = load_report_inputs(['prices', 'report', 'absent'], inputs_dir)\n"
        "print('rows', len(data['prices']), 'score', data['report']['score'], data['absent'])",
    )
    html_path = tmp_path / "inputs.html"
    dataset = NotebookReportDataset(filepath=str(html_path), notebook=str(notebook))

    prices = pd.DataFrame({"ticker": ["A.NS", "B.NS"], "close": [1.0, 2.0]})
    dataset.save({"parameters": {}, "inputs": {"prices": prices, "report": {"score": 97}}})

    assert "rows 2 score 97 None" in dataset.load()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
