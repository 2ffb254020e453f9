"""The intraday pipeline: registered on its own, namespaced datasets, and a run through the Yahoo stub.

The slice runs with SequentialRunner on an in-memory catalog, except the bronze folder (a temporary
OptionalPartitionedDataset, so that runs are incremental) and the SQL table (SQLite in a temporary
folder, migrated to stock_features_intraday). Prices come through the real YFinanceSource and
yfinance code from the local stub's synthetic NSE market.
"""

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset, Version
from kedro.runner import SequentialRunner

from stock_pipeline.datasets import DeltaTableDataset, SQLUpsertDataset, TableRecipeDataset
from stock_pipeline.db import upgrade_database
from stock_pipeline.pipeline_registry import register_pipelines
from stock_pipeline.pipelines.intraday import create_pipeline
from stock_pipeline.rate_limit import NO_LIMIT
from stock_pipeline.settings import CONFIG_LOADER_ARGS
from stock_pipeline.sources.yfinance_source import YFinanceSource
from tests.pipelines.catalog_helpers import KeptDataset, bronze_dataset
from tests.sources.yahoo_stub import (
    LocalYahooSession,
    SyntheticMarket,
    YahooStub,
    install_stub,
    reset_yfinance,
    stub_server,
)

TICKERS = ["TCS.NS", "INFY.NS"]
IST = "Asia/Kolkata"
PERSISTED = {
    "raw_prices_stored",
    "raw_prices",
    "ingestion_report",
    "clean_prices",
    "quarantine",
    "quality_report",
    "prices@table",
    "features",
    "stock_features_sql",
}


@pytest.fixture(scope="module")
def parameters(project_root: Path) -> dict[str, Any]:
    """The project's own parameters from conf/base (cleaning, features, persistence as shipped)."""
    loader = OmegaConfigLoader(str(project_root / "conf"), **CONFIG_LOADER_ARGS)
    return loader["parameters"]


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[YahooStub]:
    """The Yahoo stub with a synthetic market for each ticker."""
    reset_yfinance(tmp_path / "yfinance")
    with stub_server() as httpd:
        stub = install_stub(httpd)
        for ticker in TICKERS:
            stub.market(ticker)
        yield stub


class IntradayRuns:
    """Runs of the intraday pipeline at chosen moments, sharing bronze and the SQL table."""

    def __init__(
        self, tmp_path: Path, stub: YahooStub, parameters: dict[str, Any], monkeypatch
    ) -> None:
        self.bronze = tmp_path / "01_raw" / "intraday"
        self.tables = tmp_path / "tables"
        self.db_url = f"sqlite:///{tmp_path / 'stock_pipeline.db'}"
        upgrade_database(self.db_url)
        self.stub = stub
        self.parameters = parameters
        self.monkeypatch = monkeypatch

    def run(self, at: str, interval: str = "5m") -> DataCatalog:
        """One run at `at` (Asia/Kolkata); the catalog holds what it produced."""
        now = pd.Timestamp(at, tz=IST).to_pydatetime()
        self.stub.clock = lambda: now
        ingestion = self.parameters["ingestion"] | {
            "source": "yfinance",
            "interval": interval,
            "tickers": TICKERS,
            "max_workers": 2,
            "rate_limit": None,  # the stub answers as fast as asked
        }
        self.monkeypatch.setattr(
            "stock_pipeline.pipelines.ingestion.nodes.build_source",
            lambda params, limiter=NO_LIMIT: YFinanceSource.from_params(
                params,
                limiter=limiter,
                session=LocalYahooSession(self.stub.base_url),
                now=lambda: now,
            ),
        )
        catalog = DataCatalog(
            {
                "intraday.raw_prices_stored": bronze_dataset(self.bronze),
                "intraday.raw_prices": bronze_dataset(self.bronze),
                "intraday.stock_features_sql": SQLUpsertDataset(
                    table="stock_features_intraday",
                    keys=["ticker", "timestamp"],
                    url=self.db_url,
                    add_columns=True,
                ),
                "intraday.stock_features_sql_stored": TableRecipeDataset(
                    table="stock_features_intraday", url=self.db_url
                ),
                "intraday.clean_prices": DeltaTableDataset(str(self.tables / "clean_prices")),
                "intraday.prices@table": DeltaTableDataset(str(self.tables / "prices")),
                "intraday.features": DeltaTableDataset(str(self.tables / "features")),
                "intraday.prices@buckets": DeltaTableDataset(
                    str(self.tables / "prices"), load_args={"by_bucket": True}
                ),
                "intraday.features_stored": DeltaTableDataset(
                    str(self.tables / "features"),
                    load_args={"columns": ["obv"], "last_per_ticker": True, "by_bucket": True},
                    optional=True,
                ),
                "intraday.clean_prices_stored": DeltaTableDataset(
                    str(self.tables / "clean_prices"), load_args={"columns": []}, optional=True
                ),
                **{
                    f"intraday.{name}": KeptDataset()
                    for name in ("ingestion_report", "quality_report", "price_changes")
                },
                "params:rebuild": MemoryDataset(False),
                "params:compute": MemoryDataset({"engine": "local"}),
                "params:ingestion": MemoryDataset(ingestion),
                "params:ingestion.max_failed_ratio": MemoryDataset(ingestion["max_failed_ratio"]),
                **{
                    f"params:{name}": MemoryDataset(self.parameters[name])
                    for name in ("cleaning", "features", "persistence")
                },
                "run_context": MemoryDataset(
                    {"run_id": f"intraday-{at}", "started_at": now.isoformat()}
                ),
            }
        )
        SequentialRunner().run(create_pipeline(), catalog)
        return catalog

    def table(self) -> pd.DataFrame:
        """stock_features_intraday as stored."""
        return SQLUpsertDataset(
            table="stock_features_intraday", keys=["ticker", "timestamp"], url=self.db_url
        ).load()

    def updated_rows(self) -> int:
        """Rows whose updated_at moved past created_at (the trigger fired)."""
        engine = sa.create_engine(self.db_url)
        with engine.connect() as connection:
            return connection.exec_driver_sql(
                "SELECT count(*) FROM stock_features_intraday WHERE updated_at > created_at"
            ).scalar_one()


@pytest.fixture
def runs(tmp_path: Path, stub: YahooStub, parameters: dict[str, Any], monkeypatch) -> IntradayRuns:
    return IntradayRuns(tmp_path, stub, parameters, monkeypatch)


def test_intraday_is_registered_apart_from_daily():
    pipelines = register_pipelines()
    intraday, daily = pipelines["intraday"], pipelines["daily"]
    assert all(node.name.startswith("intraday.") for node in intraday.nodes)
    assert not {node.name for node in daily.nodes} & {node.name for node in intraday.nodes}
    shared = {"run_context"} | {name for name in intraday.datasets() if name.startswith("params:")}
    assert {name for name in intraday.datasets() - shared if not name.startswith("intraday.")} == (
        set()
    )
    daily_functions = {node.func for node in daily.nodes}
    reused = [node for node in intraday.nodes if node.func in daily_functions]
    assert len(reused) == len(intraday.nodes) - 2  # all but the two intraday-specific nodes


def test_every_persisted_dataset_has_its_own_intraday_entry(project_root: Path):
    loader = OmegaConfigLoader(str(project_root / "conf"), **CONFIG_LOADER_ARGS)
    catalog = loader["catalog"]
    locations = {}
    for name in PERSISTED:
        entry = catalog[f"intraday.{name}"]
        locations[name] = entry.get("filepath") or entry.get("path") or entry.get("table")
        assert locations[name] != (catalog.get(name, {}).get("filepath") or name)
    assert locations["raw_prices"] == "data/01_raw/intraday"
    assert locations["features"] == "data/04_feature/intraday/features"
    assert locations["stock_features_sql"] == "stock_features_intraday"
    assert catalog["intraday.stock_features_sql"]["keys"] == ["ticker", "timestamp"]


def test_intraday_runs_incrementally_into_its_own_table(
    runs: IntradayRuns, stub: YahooStub, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    first = runs.run("2024-06-04 10:37:12")  # mid-session: the 10:35 bar is still open

    report = first.load("intraday.ingestion_report")
    assert report["counts"] == {"created": 2}
    assert report["window"] == {"start": "2024-04-06", "end": "2024-06-04"}
    assert "ingestion.start_date 2024-01-01 is too far back for 5m bars" in caplog.text
    bronze = pd.read_csv(runs.bronze / "TCS.NS.csv", dtype=str)
    assert bronze["date"].iloc[[0, -1]].tolist() == ["2024-04-08 09:15:00", "2024-06-04 10:30:00"]
    prices = first.load("intraday.prices@table")
    assert (
        prices["date"]
        .dt.time.between(pd.Timestamp("09:15").time(), pd.Timestamp("15:25").time())
        .all()
    )
    features = first.load("intraday.features")
    assert {"sma_20", "sma_50", "rsi_14", "macd", "volatility"} <= set(features.columns)
    assert features.groupby("ticker")["date"].is_monotonic_increasing.all()
    quality = first.load("intraday.quality_report")
    assert quality["summary"]["rows_quarantined"] == 0
    table = runs.table()
    assert len(table) == len(features)
    assert str(table["timestamp"].dt.tz) == "UTC"
    latest = table.loc[table["ticker"] == "TCS.NS", "timestamp"].max().tz_convert(IST)
    assert latest == pd.Timestamp("2024-06-04 10:30", tz=IST)

    stub.chart_queries.clear()
    second = runs.run("2024-06-04 16:05")  # after the close

    report = second.load("intraday.ingestion_report")
    assert report["counts"] == {"updated": 2}
    assert report["tickers"]["TCS.NS"]["rows_stored"] == len(bronze) + 59  # 10:35 to 15:25
    history = [query for query in stub.chart_queries if "period1" in query]
    overlap_start = pd.Timestamp("2024-05-28", tz=IST)  # 5 sessions before 06-04
    assert {int(query["period1"]) for query in history} == {int(overlap_start.timestamp())}
    table = runs.table()
    assert len(table) == len(second.load("intraday.features"))
    assert runs.updated_rows() == 0  # only new bars were inserted; stored rows kept their values
    gold = DeltaTableDataset(str(runs.tables / "features"))
    assert gold.latest_version() == 1  # one version per run; the first run's loads back as it was
    first_run = DeltaTableDataset(str(runs.tables / "features"), version=Version("0", None))
    pd.testing.assert_frame_equal(first_run.load(), features)


def test_bonus_issue_refreshes_the_intraday_history(
    runs: IntradayRuns, stub: YahooStub, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    runs.run("2024-06-04 16:05")
    stub.markets["TCS.NS"] = SyntheticMarket(scale=0.5)  # a 1:1 bonus: Yahoo halves the history
    refreshed = runs.run("2024-06-05 16:05")

    entry = refreshed.load("intraday.ingestion_report")["tickers"]
    assert entry["TCS.NS"]["status"] == "refreshed"
    assert entry["INFY.NS"]["status"] == "updated"
    assert "TCS.NS: prices in the overlap changed: corporate-action refresh" in caplog.text
    assert "refreshed (history rewritten): TCS.NS" in caplog.text
    features = refreshed.load("intraday.features")
    tcs = features[features["ticker"] == "TCS.NS"].set_index("date")["close"]
    assert tcs.pct_change().abs().max() < 0.05  # one price scale: no fake 50% crash
    assert runs.updated_rows() > 0  # the re-adjusted rows were rewritten in SQL


def test_fifteen_minute_bars(runs: IntradayRuns):
    catalog = runs.run("2024-06-04 16:05", interval="15m")
    bars = catalog.load("intraday.prices@table")
    assert set(bars["date"].dt.minute) == {0, 15, 30, 45}
    assert catalog.load("intraday.ingestion_report")["interval"] == "15m"


def test_intraday_refuses_daily_bars(runs: IntradayRuns):
    with pytest.raises(
        ValueError, match=r"ingestion.interval is '1d'.*--params=ingestion.interval=5m"
    ):
        runs.run("2024-06-04 16:05", interval="1d")
