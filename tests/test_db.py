"""The database helpers: the migration fast path agrees with Alembic's own idea of head."""

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import CheckConstraint, Float, inspect, text

from stock_pipeline.contract import FEATURE_TABLES, METADATA
from stock_pipeline.db import (
    HEAD_REVISION,
    MIGRATIONS_DIR,
    add_feature_columns,
    at_head,
    connect,
    create_db_engine,
    mask_secrets,
    upgrade_database,
)


def test_head_revision_is_the_newest_migration():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_at_head_only_after_every_migration(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = create_db_engine(url)
    with connect(engine) as connection:
        assert not at_head(connection)
    upgrade_database(url, "0002_pipeline_runs")
    with connect(engine) as connection:
        assert not at_head(connection)
    upgrade_database(url)  # migrates the rest
    with connect(engine) as connection:
        assert at_head(connection)
        tables = connection.execute(text("select name from sqlite_master")).scalars().all()
    engine.dispose()
    assert "stock_features_intraday" in tables


def test_mask_secrets() -> None:
    assert mask_secrets("x postgresql://u:p%40ss@h/db y") == "x postgresql://u:***@h/db y"
    assert mask_secrets("sqlite:///data/x.db") == "sqlite:///data/x.db"


def _same_type_or_none(context, _inspected, _column, inspected_type, metadata_type) -> bool | None:
    """SQLite stores every float as REAL, so DOUBLE PRECISION reads back as REAL: the same type."""
    floats = isinstance(inspected_type, Float) and isinstance(metadata_type, Float)
    return False if context.dialect.name == "sqlite" and floats else None


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def migrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database migrated to head: a SQLite file, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    else:
        url = request.getfixturevalue("pg_url")
    upgrade_database(url)
    return url


def test_a_database_migrated_to_head_matches_the_contract(migrated_url: str) -> None:
    engine = create_db_engine(migrated_url)
    with connect(engine) as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": _same_type_or_none})
        differences = compare_metadata(context, METADATA)
        schema = inspect(connection)
        checks = {
            table.name: {check["name"] for check in schema.get_check_constraints(table.name)}
            for table in METADATA.sorted_tables
        }
    engine.dispose()
    assert differences == []
    assert checks == {
        table.name: {c.name for c in table.constraints if isinstance(c, CheckConstraint)}
        for table in METADATA.sorted_tables
    }


def test_configured_indicators_get_their_columns_and_keep_them(migrated_url: str) -> None:
    added = add_feature_columns(migrated_url, ["rsi_14", "obv", "adx_14"])
    again = add_feature_columns(migrated_url, ["obv"])  # adx_14 no longer configured

    engine = create_db_engine(migrated_url)
    with connect(engine) as connection:
        schema = inspect(connection)
        columns = {
            table: {c["name"] for c in schema.get_columns(table)} for table in FEATURE_TABLES
        }
        view = {c["name"] for c in schema.get_columns("latest_stock_data")}
    engine.dispose()
    assert added == {table: ["obv", "adx_14"] for table in FEATURE_TABLES}
    assert again == {}
    assert all({"obv", "adx_14"} <= names for names in columns.values())
    assert {"obv", "adx_14"} <= view
