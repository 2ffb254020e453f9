"""Shared fixtures: the project root, and a private PostgreSQL schema per test when a server answers."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEST_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def project_root() -> Path:
    """The repository's root folder."""
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """The test server's URL; skips when it does not answer, fails when STOCK_PIPELINE_REQUIRE_PG=1."""
    url = os.environ.get("STOCK_PIPELINE_TEST_PG_URL", DEFAULT_TEST_PG_URL)
    try:
        engine = create_engine(url)
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
    except OperationalError as error:
        if os.environ.get("STOCK_PIPELINE_REQUIRE_PG") == "1":
            pytest.fail(f"PostgreSQL required but not reachable: {error}")
        pytest.skip("no PostgreSQL server answers at STOCK_PIPELINE_TEST_PG_URL")
    return url


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped after the test."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_server_url)
    with admin.begin() as connection:
        connection.execute(text(f'create schema "{schema}"'))
    url = make_url(pg_server_url).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with admin.begin() as connection:
        connection.execute(text(f'drop schema "{schema}" cascade'))
    admin.dispose()
