"""The OpenAPI document is true: every schemathesis check (`--checks all`) passes on requests
generated from it, valid and invalid, with no key configured and with a key configured and sent.

What `schemathesis run --checks all` does, in process: its coverage cases (boundaries, wrong
types, missing parameters) and its fuzzing strategies (positive and negative), each answer
validated by every built-in check. Schemathesis's pytest loader (`from_fixture`) does not support
pytest 9, so the cases are driven directly. Derandomized, so CI sees the same cases every run;
`pytest -m slow` sends many more.
"""

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from stock_pipeline.api.config import load_config
from stock_pipeline.api.main import create_app

KEY = "schemathesis-key-0123456789"
EXAMPLES = 10
SLOW_EXAMPLES = 300
load_all_checks()
ALL_CHECKS = [check for check in CHECKS.get_all() if not isinstance(check, type)]
Statuses = dict[str, Counter[int]]


@pytest.fixture(params=["no key", "key configured and sent"])
def api_schema(
    request: pytest.FixtureRequest, project: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[schemathesis.schemas.BaseSchema]:
    """The schema of a started app, without keys or with one that every request carries."""
    keyed = request.param != "no key"
    if keyed:
        monkeypatch.setenv("STOCK_PIPELINE_API_KEY", KEY)
    app = create_app(load_config(project))
    with TestClient(app):
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        if keyed:
            schema.config.update(headers={"X-API-Key": KEY})
        yield schema


def validate(case: schemathesis.Case, seen: Counter[int]) -> None:
    """Send the case and run every check on the answer; count its status."""
    seen[case.call_and_validate(checks=ALL_CHECKS).status_code] += 1


def fuzz(
    operation: schemathesis.APIOperation, mode: GenerationMode, examples: int, seen: Counter[int]
) -> None:
    """Send the operation's generated cases of one mode."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        derandomize=True,  # the same cases on every run: CI stays reproducible
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        validate(case, seen)

    check()


def exercise(schema: schemathesis.schemas.BaseSchema, examples: int) -> Statuses:
    """Coverage cases and fuzzed cases of every operation; the statuses each answered."""
    statuses: Statuses = {}
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    for result in schema.get_all_operations():
        operation = result.ok()
        seen = statuses.setdefault(operation.path, Counter())
        generation = schema.config.generation_for(operation=operation)
        for case in schema.iter_coverage_cases(
            operation, generation_modes=modes, generation_config=generation
        ):
            validate(case, seen)
        fuzz(operation, GenerationMode.POSITIVE, examples, seen)
        if operation.query or operation.path_parameters:  # nothing to send wrong otherwise
            fuzz(operation, GenerationMode.NEGATIVE, examples, seen)
    return statuses


def assert_exercised(statuses: Statuses) -> None:
    """The run reached every operation's real answers, not only rejections."""
    assert len(statuses) == 12
    assert [path for path, seen in statuses.items() if 200 not in seen] == [], statuses
    assert sum(statuses.values(), Counter())[422] > 0, statuses


def test_every_check_passes(api_schema: schemathesis.schemas.BaseSchema) -> None:
    assert {"ignored_auth", "negative_data_rejection", "response_schema_conformance"} <= {
        check.__name__ for check in ALL_CHECKS
    }
    assert_exercised(exercise(api_schema, EXAMPLES))


@pytest.mark.slow
def test_every_check_passes_on_many_more_examples(
    api_schema: schemathesis.schemas.BaseSchema,
) -> None:
    assert_exercised(exercise(api_schema, SLOW_EXAMPLES))
