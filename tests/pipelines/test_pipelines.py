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
NOT_NODE_SECTIONS = {
    "api",
    "run",
}  # read by stock_pipeline/api/config.py and by the hooks, not by a node


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
    literals = _string_literals([PROJECT_ROOT / "src"])
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


def _store(entry: dict[str, Any]) -> str | None:
    """Where an entry keeps its data: a path, or a SQL table (a wrapped dataset's own store)."""
    if isinstance(entry.get("dataset"), dict):
        return _store(entry["dataset"])
    if "table" in entry:
        return f"sql:{entry['table']}"
    return entry.get("filepath") or entry.get("path")


def _base(name: str) -> str:
    """The name without its transcoding (`prices@buckets` -> `prices`)."""
    return name.split("@", 1)[0]


def test_entries_of_one_store_are_transcodings_or_state_read_before_the_write(
    pipelines, catalog_config
):
    """One stored table, one name: a second loader of it is a transcoding (`prices@table`,
    `prices@buckets`), so Kedro orders its readers after the writer and kedro-viz draws one
    dataset. The one exception Kedro itself imposes: the stored state a table's writer resumes
    from (what the table held before this run), which Kedro forbids to share the writer's name
    even transcoded ("A node cannot have the same inputs and outputs even if they are
    transcoded"). Such an entry may be read only by the writing node or by nodes upstream of it,
    so every read of it sees the previous run's table, and is named `<table>_stored`."""
    stores: dict[str, list[str]] = {}
    for name, entry in catalog_config.items():
        if (store := _store(entry)) is not None:
            stores.setdefault(store, []).append(name)
    problems = []
    for store, names in stores.items():
        if len({_base(name) for name in names}) == 1:
            continue
        for pipeline in pipelines.values():
            used = [name for name in names if name in pipeline.datasets()]
            writers = [node for node in pipeline.nodes if set(node.outputs) & set(used)]
            if not writers:  # a stage run alone reads what earlier runs stored
                continue
            written = {_base(output) for node in writers for output in node.outputs}
            before_write = {
                node.name for writer in writers for node in pipeline.to_nodes(writer.name).nodes
            }
            stored_state = [name for name in used if _base(name) not in written]
            problems += [
                f"{name} ({store}) is read by {node.name}, which does not run before its writer"
                for name in stored_state
                for node in pipeline.only_nodes_with_inputs(name).nodes
                if node.name not in before_write
            ]
            problems += [
                f"{name} ({store}) is the stored state of {sorted(written)}: name it <table>_stored"
                for name in stored_state
                if name.rsplit(".", 1)[-1].removesuffix("_stored")
                not in {_base(w).rsplit(".", 1)[-1] for w in written}
            ]
    assert sorted(set(problems)) == []


def test_hooks_import_no_pipeline():
    """Hooks do run-level work only: a pipeline's work belongs to its nodes."""
    tree = ast.parse((PROJECT_ROOT / "src/stock_pipeline/hooks.py").read_text(encoding="utf-8"))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert {name for name in imported if name.startswith("stock_pipeline.pipelines")} == set()
