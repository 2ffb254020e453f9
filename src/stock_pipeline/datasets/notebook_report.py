"""A dataset whose save runs a notebook with Papermill and writes it as HTML."""

import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import nbformat
import papermill
from kedro.io import AbstractDataset, DatasetError
from kedro.utils import find_kedro_project
from nbconvert import HTMLExporter
from papermill.exceptions import PapermillExecutionError


class NotebookReportDataset(AbstractDataset[dict[str, Any], str]):
    """Saving parameters executes `notebook` with them and writes the HTML report at `filepath`.

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
        """Execute the notebook with `data` as its parameters, then write the notebook and its HTML."""
        project_path = _project_path()
        notebook = project_path / self._notebook
        html_path = project_path / self._filepath
        executed_path = html_path.with_suffix(".ipynb")
        html_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = _temporary_path(executed_path)
        try:
            executed = papermill.execute_notebook(
                str(notebook),
                str(temporary),
                parameters={"project_path": project_path.as_posix(), **data},
                kernel_name=self._kernel_name,
                progress_bar=False,
                resources={"metadata": {"path": str(project_path)}},  # the kernel's cwd, no chdir
                execution_timeout=self._execution_timeout,
            )
        except PapermillExecutionError as error:
            failed_path = html_path.with_suffix(".failed.ipynb")
            os.replace(temporary, failed_path)
            raise DatasetError(
                f"Notebook {self._notebook} failed in cell {error.exec_count}: "
                f"{error.ename}: {error.evalue} (executed notebook: {failed_path})"
            ) from error
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        html = _to_html(executed, exclude_input=self._exclude_input)
        _write_text_atomically(html, html_path)
        os.replace(temporary, executed_path)


def _project_path() -> Path:
    """The Kedro project that holds the working directory (the working directory itself if none)."""
    return Path(find_kedro_project(Path.cwd()) or Path.cwd()).resolve()


def _temporary_path(path: Path) -> Path:
    """A fresh, empty, hidden temporary file next to `path`, with the same extension, readable by all."""
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}"
    )
    os.fchmod(handle, 0o644)
    os.close(handle)
    return Path(temporary)


def _to_html(notebook: nbformat.NotebookNode, exclude_input: bool) -> str:
    """The executed notebook as one self-contained HTML page (charts embedded as base64 PNG)."""
    exporter = HTMLExporter(exclude_input=exclude_input)
    body, _ = exporter.from_notebook_node(notebook)
    return body


def _write_text_atomically(text: str, path: Path) -> None:
    """Write text next to the target, then rename over it."""
    temporary = _temporary_path(path)
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
