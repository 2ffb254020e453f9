"""Alembic environment: runs the migrations on the connection that stock_pipeline.db hands over.

Run them with `python -m stock_pipeline.db upgrade` (or `make db-upgrade`); there is no alembic.ini.
"""

from alembic import context
from sqlalchemy import Connection, text


def run_migrations(connection: Connection) -> None:
    """Migrate in one transaction; on PostgreSQL concurrent runs wait on an advisory lock."""
    context.configure(connection=connection, transactional_ddl=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtext('stock_pipeline.migrations'))")
            )
        context.run_migrations()


run_migrations(context.config.attributes["connection"])
