"""The database helpers: the migration fast path agrees with Alembic's own idea of head."""

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from stock_pipeline.db import (
    HEAD_REVISION,
    MIGRATIONS_DIR,
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
