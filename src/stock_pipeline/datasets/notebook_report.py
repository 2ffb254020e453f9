"""A dataset whose save runs a notebook with Papermill and writes it as HTML."""

import logging
import os
import tempfile
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import nbformat
import papermill
from kedro.io import AbstractDataset, DatasetError
from kedro.utils import find_kedro_project
from nbconvert import HTMLExporter
from papermill.exceptions import PapermillExecutionError

from stock_pipeline.atomic import atomic_path, write_text_atomically
from stock_pipeline.report_inputs import write_report_inputs


class NotebookReportDataset(AbstractDataset[dict[str, Any], str]):
    """Saving `{"parameters": {...}, "inputs": {...}}` executes `notebook` and writes the HTML report.

    The inputs (the datasets the reporting node took, so kedro-viz shows what a report reads) are
    written to a temporary folder that the notebook receives as `inputs_dir` and reads with
    `stock_pipeline.report_inputs.load_report_inputs`.

    The executed notebook is written next to the HTML (same name, `.ipynb`). Both files are
    replaced atomically, so a failed or killed run leaves the previous report in place; a failed
    run keeps its executed notebook as `<name>.failed.ipynb` for debugging. The notebook also
    receives `project_path` (the Kedro project's root, so it can open a `KedroSession`) and runs
    with the project root as its working directory. Loading returns the HTML text.
    """

    def __init__(
        self,
        filepath: str,
        notebook: str,
        *,
        kernel_name: str = "python3",
        execution_timeout: int = 600,
        exclude_input: bool = False,
        metadata: dict[str, Any] | None = None,
    ):
        self._filepath = PurePosixPath(filepath)
        self._notebook = PurePosixPath(notebook)
        self._kernel_name = kernel_name
        self._execution_timeout = execution_timeout
        self._exclude_input = exclude_input
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._filepath),
            "notebook": str(self._notebook),
            "kernel_name": self._kernel_name,
        }

    def _exists(self) -> bool:
        return Path(self._filepath).exists()

    def load(self) -> str:
        """The HTML of the last report."""
        return Path(self._filepath).read_text(encoding="utf-8")

    def save(self, data: dict[str, Any]) -> None:
        """Execute the notebook on the inputs with the parameters, then write it and its HTML."""
        project_path = _project_path()
        html_path = project_path / self._filepath
        html_path.parent.mkdir(parents=True, exist_ok=True)
        inputs = data.get("inputs") or {}
        with tempfile.TemporaryDirectory(dir=html_path.parent, prefix=".inputs.") as inputs_dir:
            write_report_inputs(inputs, Path(inputs_dir))
            parameters = {
                "project_path": project_path.as_posix(),
                "inputs_dir": inputs_dir
                if inputs
                else None,  # None: the notebook reads the catalog
                **data["parameters"],
            }
            self._execute(project_path, html_path, parameters)

    def _execute(self, project_path: Path, html_path: Path, parameters: dict[str, Any]) -> None:
        """Run the notebook; write the executed notebook and its HTML, or keep a failed one."""
        with atomic_path(html_path.with_suffix(".ipynb")) as executed_path:
            try:
                executed = papermill.execute_notebook(
                    str(self._template(project_path)),
                    str(executed_path),
                    parameters=parameters,
                    kernel_name=self._kernel_name,
                    progress_bar=False,
                    resources={"metadata": {"path": str(project_path)}},  # the kernel's cwd
                    execution_timeout=self._execution_timeout,
                )
            except PapermillExecutionError as error:
                failed_path = html_path.with_suffix(".failed.ipynb")
                os.replace(executed_path, failed_path)
                raise DatasetError(
                    f"Notebook {self._notebook} failed in cell {error.exec_count}: "
                    f"{error.ename}: {error.evalue} (executed notebook: {failed_path})"
                ) from error
            write_text_atomically(_to_html(executed, exclude_input=self._exclude_input), html_path)

    def _template(self, project_path: Path) -> Path:
        """The notebook to run: the project's own (a checkout), else the one the installed package
        ships (`stock_pipeline/notebooks/`, for a deployment folder of data and configuration)."""
        local = project_path / self._notebook
        if local.exists():
            return local
        return Path(str(resources.files("stock_pipeline") / "notebooks" / self._notebook.name))


def _project_path() -> Path:
    """The Kedro project that holds the working directory (the working directory itself if none)."""
    return Path(find_kedro_project(Path.cwd()) or Path.cwd()).resolve()


def _to_html(notebook: nbformat.NotebookNode, exclude_input: bool) -> str:
    """The executed notebook as one self-contained HTML page (charts embedded as base64 PNG)."""
    # nbconvert logs through traitlets' root logger unless given one; logging.yml quiets "nbconvert"
    exporter = HTMLExporter(exclude_input=exclude_input, log=logging.getLogger("nbconvert"))
    body, _ = exporter.from_notebook_node(notebook)
    return body
