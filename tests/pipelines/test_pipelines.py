"""Meta-tests over every registered pipeline and the configuration, in the style of
everycure-org/matrix: an honest graph (no implicit dataset, every entry in a kedro-viz layer),
no parameter that nothing reads, and node and function names that follow the conventions."""

import ast
from pathlib import Path
from typing import Any

import pytest
from kedro.pipeline import Pipeline

from stock_pipeline.configuration import config_loader
from stock_pipeline.pipeline_registry import register_pipelines

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("raw", "intermediate", "primary", "feature", "model_input", "models", "reporting")
# The first word of every node function: a verb. Extend it on purpose when a new verb is right.
VERBS = {
    "build",
    "check",
    "clear",
    "combine",
    "compare",
    "compute",
    "consolidate",
    "consume",
    "decide",
    "detect",
    "fit",
    "freeze",
    "ingest",
    "predict",
    "recommend",
    "record",
    "register",
    "replay",
    "report",
    "request",
    "score",
    "select",
    "stamp",
    "summarize",
    "train",
    "update",
    "validate",
}
NOT_NODE_SECTIONS = {"api", "run"}  # read by api/config.py and by the hooks, not by a node


@pytest.fixture(scope="module")
def pipelines() -> dict[str, Pipeline]:
    """Every registered pipeline by name."""
    return register_pipelines()


@pytest.fixture(scope="module")
def catalog_config() -> dict[str, Any]:
    """The base environment's catalog entries (templates starting with _ left out)."""
    catalog = config_loader(PROJECT_ROOT, "base")["catalog"]
    return {name: entry for name, entry in catalog.items() if not name.startswith("_")}


@pytest.fixture(scope="module")
def parameters() -> dict[str, Any]:
    """The base environment's parameters."""
    return dict(config_loader(PROJECT_ROOT, "base")["parameters"])


def _used_datasets(pipelines: dict[str, Pipeline]) -> set[str]:
    """Every dataset any registered pipeline reads or writes."""
    return set().union(*(pipeline.datasets() for pipeline in pipelines.values()))


def _string_literals(folders: list[Path]) -> set[str]:
    """Every string constant in the Python sources under the folders."""
    literals: set[str] = set()
    for path in (p for folder in folders for p in folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        literals |= {
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
        }
    return literals


def test_no_dataset_passes_between_nodes_without_a_catalog_entry(pipelines, catalog_config):
    implicit = {
        name
        for name in _used_datasets(pipelines)
        if not name.startswith("params:") and name not in catalog_config
    }
    assert implicit == set()


def test_every_catalog_entry_has_a_kedro_viz_layer(catalog_config):
    unlayered = {
        name: layer
        for name, entry in catalog_config.items()
        if (layer := ((entry.get("metadata") or {}).get("kedro-viz") or {}).get("layer"))
        not in LAYERS
    }
    assert unlayered == {}


def test_every_catalog_entry_is_used_by_a_pipeline(pipelines, catalog_config):
    assert set(catalog_config) - _used_datasets(pipelines) == set()


def test_every_parameter_section_is_read_by_a_node_the_api_or_a_hook(pipelines, parameters):
    read = {
        name.removeprefix("params:").split(".")[0]
        for name in _used_datasets(pipelines)
        if name.startswith("params:")
    }
    assert set(parameters) - read - NOT_NODE_SECTIONS == set()


def test_every_parameter_key_is_read_somewhere_in_the_code(pipelines, parameters):
    literals = _string_literals([PROJECT_ROOT / "src", PROJECT_ROOT / "api"])
    literals |= {  # keys a node takes as its own input, such as params:ingestion.max_failed_ratio
        name.split(".", 1)[1]
        for name in _used_datasets(pipelines)
        if name.startswith("params:") and "." in name
    }
    unread = {
        f"{section}.{key}"
        for section, values in parameters.items()
        if isinstance(values, dict)
        for key in values
        if key not in literals
    }
    assert unread == set()


def test_node_names_end_in_node_and_functions_are_verbs_without_it(pipelines):
    problems = set()
    for pipeline in pipelines.values():
        for node in pipeline.nodes:
            function = node.func.__name__
            if not node.name.rsplit(".", 1)[-1].endswith("_node"):
                problems.add(f"node {node.name} does not end in _node")
            if function.endswith("_node"):
                problems.add(f"function {function} ends in _node")
            if function.split("_")[0] not in VERBS:
                problems.add(f"function {function} does not start with a verb")
    assert problems == set()
