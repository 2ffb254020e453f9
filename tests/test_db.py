"""The database helpers: the migration fast path agrees with Alembic's own idea of head."""

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import CheckConstraint, Float, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from stock_pipeline.contract import METADATA, PIPELINE_RUNS, STOCK_FEATURES, STOCK_FEATURES_INTRADAY
from stock_pipeline.db import (
    HEAD_REVISION,
    MIGRATIONS_DIR,
    DatabaseDriverMissingError,
    add_float_columns,
    at_head,
    connect,
    create_db_engine,
    driver_url,
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


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg2://u:p@h:5432/db"),
        ("postgres://u:p@h/db", "postgresql+psycopg2://u:p@h/db"),
        ("postgresql+psycopg2://u:p@h/db", "postgresql+psycopg2://u:p@h/db"),
        (
            "postgres://u:p@db.abc.supabase.co:5432/postgres?sslmode=require",
            "postgresql+psycopg2://u:p@db.abc.supabase.co:5432/postgres?sslmode=require",
        ),
        ("sqlite:///data/x.db", "sqlite:///data/x.db"),
    ],
)
def test_every_postgres_url_form_gets_the_installed_driver(url: str, expected: str) -> None:
    assert driver_url(url).render_as_string(hide_password=False) == expected


def _form(server_url: str, scheme: str, query: dict[str, str] | None = None) -> str:
    """The test server's URL written with another scheme and extra query options."""
    url = make_url(server_url)
    rendered = url.update_query_dict(query or {}).render_as_string(hide_password=False)
    return f"{scheme}://{rendered.partition('://')[2]}"


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg2"])
def test_each_url_form_connects_and_migrates_a_real_postgres(pg_url: str, scheme: str) -> None:
    url = _form(pg_url, scheme, {"sslmode": "prefer"})
    upgrade_database(url)
    engine = create_db_engine(url)
    with connect(engine, attempts=1) as connection:
        assert at_head(connection)
    engine.dispose()


@pytest.mark.postgres
def test_sslmode_require_reaches_the_driver(pg_server_url: str) -> None:
    """Supabase's `?sslmode=require` is handed to libpq: TLS is used, or refused by a plain server."""
    engine = create_db_engine(_form(pg_server_url, "postgres", {"sslmode": "require"}))
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("show ssl").scalar() == "on"
    except OperationalError as error:
        assert "SSL" in str(error.orig)
    finally:
        engine.dispose()


def test_missing_driver_names_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in sys.modules if name.split(".")[0] in {"psycopg2", "psycopg"}]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(DatabaseDriverMissingError, match=r"pip install 'psycopg2-binary'") as error:
        create_db_engine("postgres://user:secret@host/db?sslmode=require")
    assert "secret" not in str(error.value)


def _insert_run(connection, run_id: str, status: str) -> None:
    """One pipeline_runs row with the given status."""
    connection.execute(
        PIPELINE_RUNS.insert().values(
            run_id=run_id, pipeline="daily", status=status, started_at=datetime.now(UTC)
        )
    )


def _check_abandoned_status_migration(url: str) -> None:
    """From 0003 to head: rows kept, `abandoned` accepted, anything else still refused."""
    upgrade_database(url, "0003_stock_features_intraday")
    engine = create_db_engine(url)
    with connect(engine) as connection, connection.begin():
        _insert_run(connection, "before", "running")
    with connect(engine) as connection, pytest.raises(IntegrityError), connection.begin():
        _insert_run(connection, "too-early", "abandoned")
    upgrade_database(url)
    with connect(engine) as connection:
        with connection.begin():
            _insert_run(connection, "killed", "abandoned")
        with pytest.raises(IntegrityError), connection.begin():
            _insert_run(connection, "bogus", "bogus")
        statuses = dict(connection.execute(text("select run_id, status from pipeline_runs")).all())
        indexes = {index["name"] for index in inspect(connection).get_indexes("pipeline_runs")}
    engine.dispose()
    assert statuses == {"before": "running", "killed": "abandoned"}
    assert "idx_pipeline_runs_started" in indexes


def test_migration_0004_allows_abandoned_on_sqlite(tmp_path: Path) -> None:
    _check_abandoned_status_migration(f"sqlite:///{tmp_path / 'db.sqlite'}")


@pytest.mark.postgres
def test_migration_0004_allows_abandoned_on_postgres(pg_url: str) -> None:
    _check_abandoned_status_migration(pg_url)


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
    tables = (STOCK_FEATURES.name, STOCK_FEATURES_INTRADAY.name)
    engine = create_db_engine(migrated_url)
    with connect(engine) as connection, connection.begin():
        added = {t: add_float_columns(connection, t, ["rsi_14", "obv", "adx_14"]) for t in tables}
        again = {t: add_float_columns(connection, t, ["obv"]) for t in tables}
    with connect(engine) as connection:
        schema = inspect(connection)
        columns = {table: {c["name"] for c in schema.get_columns(table)} for table in tables}
        view = {c["name"] for c in schema.get_columns("latest_stock_data")}
    engine.dispose()
    assert added == {table: ["obv", "adx_14"] for table in tables}
    assert again == {table: [] for table in tables}
    assert all({"obv", "adx_14"} <= names for names in columns.values())
    assert {"obv", "adx_14"} <= view
