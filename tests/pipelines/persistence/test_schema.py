"""Migration 0001 on SQLite and PostgreSQL: the schema objects, the views, `make db-upgrade`."""

import os
import subprocess
import sys

import pandas as pd
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from stock_pipeline.datasets import SQLUpsertDataset
from stock_pipeline.db import DB_URL_ENV, MIGRATIONS_DIR, main, upgrade_database

HEAD = [(ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head(),)]

STOCK_FEATURES_INDEXES = {
    "idx_date_ticker": ["date", "ticker"],
    "idx_ticker_date": ["ticker", "date"],
    "idx_created_at": ["created_at"],
    "idx_updated_at": ["updated_at"],
}
TRIGGERS = {
    "postgresql": "SELECT tgname FROM pg_trigger "
    "WHERE tgrelid = 'stock_features'::regclass AND NOT tgisinternal",
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'stock_features'",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh database: a SQLite file, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'stock.db'}"
    return request.getfixturevalue("pg_url")


def rows(url: str, sql: str) -> list[tuple]:
    """Rows of one query."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


def test_schema_objects_exist(db_url):
    upgrade_database(db_url)
    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            schema = inspect(connection)
            checks = {c["name"] for c in schema.get_check_constraints("stock_features")}
            indexes = {i["name"]: i["column_names"] for i in schema.get_indexes("stock_features")}
            alert_indexes = {i["name"] for i in schema.get_indexes("model_health_alerts")}
            alert_uniques = schema.get_unique_constraints("model_health_alerts")
            primary_key = schema.get_pk_constraint("stock_features")["constrained_columns"]
            views = set(schema.get_view_names())
            triggers = {row[0] for row in connection.execute(text(TRIGGERS[engine.dialect.name]))}
            version = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()

    assert primary_key == ["ticker", "date"]
    assert {"valid_ohlc", "valid_rsi", "positive_volume"} <= checks
    assert {name: indexes[name] for name in STOCK_FEATURES_INDEXES} == STOCK_FEATURES_INDEXES
    assert triggers == {"update_stock_features_updated_at"}
    assert {"latest_stock_data", "daily_market_summary"} <= views
    assert "idx_alerts_ticker_detected" in alert_indexes
    assert [u["column_names"] for u in alert_uniques] == [["ticker", "feature", "as_of"]]
    assert version == HEAD


def test_views_summarise_the_stored_rows(db_url):
    frame = pd.DataFrame(
        {
            "ticker": ["AAA.NS", "AAA.NS", "BBB.NS"],
            "date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-02"]),
            "open": 10.0,
            "high": 12.0,
            "low": 9.0,
            "close": 11.0,
            "adj_close": 11.0,
            "volume": [100, 200, 300],
            "daily_return": [0.01, 0.02, -0.03],
            "rsi_14": [40.0, 50.0, 70.0],
        }
    )
    upgrade_database(db_url)
    SQLUpsertDataset(table="stock_features", keys=["ticker", "date"], url=db_url).save(frame)

    latest = rows(db_url, "SELECT ticker, volume FROM latest_stock_data ORDER BY ticker")
    summary = rows(
        db_url,
        "SELECT tickers, advancers, decliners, total_volume, avg_rsi_14 "
        "FROM daily_market_summary ORDER BY date",
    )
    assert latest == [("AAA.NS", 200), ("BBB.NS", 300)]
    assert [tuple(float(v) for v in row) for row in summary] == [
        (1, 1, 0, 100, 40.0),
        (2, 1, 1, 500, 60.0),
    ]


def test_concurrent_db_upgrade_commands_do_not_fail(db_url):
    environment = {**os.environ, DB_URL_ENV: db_url}
    command = [sys.executable, "-m", "stock_pipeline.db", "upgrade"]
    processes = [subprocess.Popen(command, env=environment) for _ in range(2)]

    assert [process.wait(timeout=120) for process in processes] == [0, 0]
    upgrade_database(db_url)
    assert rows(db_url, "SELECT version_num FROM alembic_version") == HEAD


def test_existing_schema_without_alembic_history_is_adopted(tmp_path):
    url = f"sqlite:///{tmp_path / 'seed.db'}"
    upgrade_database(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))
    engine.dispose()

    upgrade_database(url)

    assert rows(url, "SELECT version_num FROM alembic_version") == HEAD


def test_db_upgrade_command_migrates_the_configured_database(tmp_path, monkeypatch):
    database = tmp_path / "nested" / "cli.db"
    monkeypatch.setenv(DB_URL_ENV, f"sqlite:///{database}")

    main(["upgrade"])

    assert rows(f"sqlite:///{database}", "SELECT count(*) FROM stock_features") == [(0,)]
