"""Where the SQL database is, how to reach it and migrate it, and how to name it without leaking secrets."""

import argparse
import importlib.util
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import (
    DOUBLE_PRECISION,
    URL,
    Column,
    Connection,
    Engine,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from stock_pipeline.contract import LATEST_STOCK_DATA_VIEW, STOCK_FEATURES

DB_URL_ENV = "STOCK_PIPELINE_DB_URL"
DEFAULT_DB_URL = "sqlite:///data/stock_pipeline.db"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
HEAD_REVISION = "0007_alert_kinds"  # the newest migration; a test keeps this in step

logger = logging.getLogger(__name__)
# Alembic's `context` is process-global: one migration at a time
_migration_lock = threading.RLock()
_SECRET_IN_URL = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
# PostgreSQL URLs without a driver (`postgresql://`, Heroku's `postgres://`) get the first installed
# one; SQLAlchemy's own default (psycopg 3 since 2.1) is often not installed
POSTGRES_SCHEMES = ("postgresql", "postgres")
POSTGRES_DRIVERS = ("psycopg2", "psycopg")
# the module a driver imports -> the package that provides it
DRIVER_PACKAGES = {
    "psycopg2": "psycopg2-binary",
    "psycopg": "psycopg[binary]",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "pymysql": "PyMySQL",
    "mysqldb": "mysqlclient",
}


class DatabaseUnavailableError(ConnectionError):
    """The database did not answer after every retry (the message masks credentials)."""


class DatabaseDriverMissingError(DatabaseUnavailableError):
    """The URL needs a database driver that is not installed; the message names the package."""


def database_url() -> str:
    """The SQLAlchemy URL: STOCK_PIPELINE_DB_URL when set, else the embedded SQLite file."""
    return os.environ.get(DB_URL_ENV) or DEFAULT_DB_URL


def mask_url(url: str | URL) -> str:
    """The URL with its password replaced by ***, safe for logs and errors."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"


def mask_secrets(text: str) -> str:
    """The text with passwords inside any URLs in it replaced by ***."""
    return _SECRET_IN_URL.sub(r"\1***@", text)


def resolve_db_url(url: str, project_path: Path) -> str:
    """The URL with a relative SQLite path made absolute against the project folder."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    if Path(database).is_absolute():
        return url
    absolute = (project_path / database).as_posix()
    return parsed.set(database=absolute).render_as_string(hide_password=False)


def driver_url(url: str | URL) -> URL:
    """The URL with a driver that is installed, so that every form users paste connects (query kept)."""
    parsed = make_url(url)
    backend, _, driver = parsed.drivername.partition("+")
    if backend in POSTGRES_SCHEMES:
        chosen = driver or next(
            (name for name in POSTGRES_DRIVERS if importlib.util.find_spec(name)),
            POSTGRES_DRIVERS[0],
        )
        parsed = parsed.set(drivername=f"postgresql+{chosen}")
    return parsed


def _missing_driver(url: URL, error: ModuleNotFoundError) -> DatabaseDriverMissingError:
    """The error that names the package to install for the URL's driver."""
    module = (error.name or url.get_driver_name()).split(".")[0]
    package = DRIVER_PACKAGES.get(module, module)
    return DatabaseDriverMissingError(
        f"The database URL {mask_url(url)} needs the Python driver {module!r}, which is not "
        f"installed: pip install '{package}'"
    )


def create_db_engine(url: str | URL, **options: Any) -> Engine:
    """The one way a URL becomes an engine: unpooled by default; SQLite writers lock up front to queue."""
    parsed = driver_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite:
        options.setdefault("connect_args", {"timeout": 60})
    options.setdefault("poolclass", NullPool)
    try:
        engine = create_engine(parsed, **options)
    except ModuleNotFoundError as error:
        raise _missing_driver(parsed, error) from None
    if not sqlite or parsed.query.get("mode") == "ro":
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)

    @event.listens_for(engine, "connect")
    def _let_sqlalchemy_begin(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def connect(engine: Engine, attempts: int = 5, wait: float = 1.0) -> Connection:
    """A connection, retried with exponential backoff; DatabaseUnavailableError when none comes."""
    masked = engine.url.render_as_string(hide_password=True)

    def _log_retry(state: RetryCallState) -> None:
        logger.warning(
            "Database %s not reachable (attempt %d of %d), retrying in %.1fs: %s",
            masked,
            state.attempt_number,
            attempts,
            state.next_action.sleep if state.next_action else 0.0,
            _reason(state.outcome.exception(), engine),
        )

    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=wait, max=30),
        retry=retry_if_exception_type(OperationalError),
        before_sleep=_log_retry,
        reraise=True,
    )
    try:
        return retrying(engine.connect)
    except OperationalError as error:
        url = engine.url
        raise DatabaseUnavailableError(
            f"Cannot reach database {url.database!r} on host {url.host or 'localhost'}"
            f"{f':{url.port}' if url.port else ''} ({masked}) after {attempts} attempts: "
            f"{_reason(error, engine)}"
        ) from None


def _reason(error: BaseException | None, engine: Engine) -> str:
    """The first line of the driver's message, with the password (if it appears) masked."""
    original = getattr(error, "orig", None) or error
    line = str(original).strip().splitlines()[0] if str(original).strip() else repr(original)
    password = engine.url.password
    return line.replace(password, "***") if password else line


def apply_migrations(connection: Connection, revision: str = "head") -> None:
    """Run the Alembic migrations up to `revision` on an open connection."""
    # imported here: Alembic takes most of a second to import, and `kedro run` loads this module
    # (through settings.py) even for pipelines that never touch the database
    from alembic import command  # noqa: PLC0415
    from alembic.config import Config  # noqa: PLC0415

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    with _migration_lock:
        command.upgrade(config, revision)


def upgrade_database(url: str, revision: str = "head", attempts: int = 5) -> None:
    """Migrate the database at `url` to `revision`: objects are created when absent, never dropped.

    A database already at head costs one query: Alembic is not even imported.
    """
    engine = create_db_engine(url)
    try:
        with connect(engine, attempts=attempts) as connection:
            if revision != "head" or not at_head(connection):
                apply_migrations(connection, revision)
    finally:
        engine.dispose()


def at_head(connection: Connection) -> bool:
    """Whether the database is already at HEAD_REVISION (read without loading Alembic)."""
    current: list[str] = []
    if inspect(connection).has_table("alembic_version"):
        current = list(
            connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        )
    connection.commit()
    return current == [HEAD_REVISION]


def add_float_columns(connection: Connection, table: str, columns: list[str]) -> list[str]:
    """Add to `table` the `columns` it lacks (Alembic's add_column, DOUBLE PRECISION, nullable),
    inside the caller's transaction; the columns added. On PostgreSQL the view of the latest rows
    is replaced so that it shows them (a view's columns are fixed when it is created)."""
    present = {column["name"] for column in inspect(connection).get_columns(table)}
    missing = [column for column in columns if column not in present]
    if not missing:
        return []
    # imported here, as in apply_migrations: only a run with a new indicator pays for Alembic
    from alembic.migration import MigrationContext  # noqa: PLC0415
    from alembic.operations import Operations  # noqa: PLC0415

    operations = Operations(MigrationContext.configure(connection))
    for column in missing:
        operations.add_column(table, Column(column, DOUBLE_PRECISION))
    if table == STOCK_FEATURES.name and connection.dialect.name == "postgresql":
        name, query = LATEST_STOCK_DATA_VIEW
        connection.exec_driver_sql(f"CREATE OR REPLACE VIEW {name} AS {query}")
    logger.info("%s: added columns %s for newly configured indicators", table, missing)
    return missing


def main(argv: list[str] | None = None) -> None:
    """`python -m stock_pipeline.db upgrade [revision]`: migrate the configured database."""
    parser = argparse.ArgumentParser(prog="python -m stock_pipeline.db")
    commands = parser.add_subparsers(dest="command", required=True)
    upgrade = commands.add_parser("upgrade", help=f"migrate the database of ${DB_URL_ENV}")
    upgrade.add_argument("revision", nargs="?", default="head")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    url = database_url()
    upgrade_database(url, args.revision)
    logger.info("Database %s is at %s", mask_url(url), args.revision)


if __name__ == "__main__":
    main()
