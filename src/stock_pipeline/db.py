"""Where the SQL database is, how to reach it and migrate it, and how to name it without leaking secrets."""

import argparse
import logging
import os
import re
import threading
from pathlib import Path

from sqlalchemy import (
    DOUBLE_PRECISION,
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

from stock_pipeline.contract import FEATURE_TABLES, LATEST_STOCK_DATA_VIEW, STOCK_FEATURES

DB_URL_ENV = "STOCK_PIPELINE_DB_URL"
DEFAULT_DB_URL = "sqlite:///data/stock_pipeline.db"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
HEAD_REVISION = "0003_stock_features_intraday"  # the newest migration; a test keeps this in step

logger = logging.getLogger(__name__)
# Alembic's `context` is process-global: one migration at a time
_migration_lock = threading.RLock()
_SECRET_IN_URL = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


class DatabaseUnavailableError(ConnectionError):
    """The database did not answer after every retry (the message masks credentials)."""


def database_url() -> str:
    """The SQLAlchemy URL: STOCK_PIPELINE_DB_URL when set, else the embedded SQLite file."""
    return os.environ.get(DB_URL_ENV) or DEFAULT_DB_URL


def mask_url(url: str) -> str:
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


def create_db_engine(url: str) -> Engine:
    """An unpooled engine; on SQLite, transactions take the write lock up front so writers queue."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, poolclass=NullPool)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 60})

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


def add_feature_columns(url: str, columns: list[str]) -> dict[str, list[str]]:
    """Add to each feature table the configured feature columns it lacks (Alembic's add_column,
    DOUBLE PRECISION, nullable); the columns added per table. Columns are never dropped: a
    removed indicator keeps its column, which new rows leave empty."""
    # imported here, as in apply_migrations: only a run with a new indicator pays for Alembic
    from alembic.migration import MigrationContext  # noqa: PLC0415
    from alembic.operations import Operations  # noqa: PLC0415

    added: dict[str, list[str]] = {}
    engine = create_db_engine(url)
    try:
        with connect(engine) as connection, connection.begin():
            schema = inspect(connection)
            for table in FEATURE_TABLES:
                present = {column["name"] for column in schema.get_columns(table)}
                missing = [column for column in columns if column not in present]
                if not missing:
                    continue
                operations = Operations(MigrationContext.configure(connection))
                for column in missing:
                    operations.add_column(table, Column(column, DOUBLE_PRECISION))
                added[table] = missing
            if STOCK_FEATURES.name in added and connection.dialect.name == "postgresql":
                name, query = LATEST_STOCK_DATA_VIEW
                connection.exec_driver_sql(f"CREATE OR REPLACE VIEW {name} AS {query}")
    finally:
        engine.dispose()
    for table, names in added.items():
        logger.info("%s: added columns %s for newly configured indicators", table, names)
    return added


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
