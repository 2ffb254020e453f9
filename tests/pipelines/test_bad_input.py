"""Bad input through the real ingestion and cleaning pipelines: each bad file fails alone, nothing is lost.

A folder of CSVs holds two good tickers and one of each kind of bad input; the slice runs with
SequentialRunner, bronze in a temporary folder, everything else in memory.
"""

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from stock_pipeline.pipelines import cleaning, ingestion
from stock_pipeline.pipelines.ingestion.nodes import IngestionFailedError
from stock_pipeline.settings import CONFIG_LOADER_ARGS
from tests.pipelines.catalog_helpers import KeptDataset, bronze_dataset

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "csv"
RUN_CONTEXT = {"run_id": "bad-input", "started_at": "2024-04-01T12:00:00+00:00"}
HEADER = "Date,Open,High,Low,Close,Adj Close,Volume\n"
BAD_FILES = {
    "JUNK.NS": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00garbage",
    "EMPTY.NS": b"",
    "WRONG.NS": b"when,what,how much\n2024-01-02,x,3\n",
}


@pytest.fixture
def csv_dir(tmp_path: Path) -> Path:
    """Two good tickers, three unreadable files, and one file with a bad value and a repeated session."""
    folder = tmp_path / "csv"
    folder.mkdir()
    shutil.copy(FIXTURES / "TCS_classic.csv", folder / "TCS.NS.csv")
    shutil.copy(FIXTURES / "TCS_classic.csv", folder / "GOOD.NS.csv")
    for ticker, content in BAD_FILES.items():
        (folder / f"{ticker}.csv").write_bytes(content)
    rows = (FIXTURES / "TCS_classic.csv").read_text().splitlines()[1:6]
    cells = rows[2].split(",")
    rows[2] = ",".join([*cells[:4], "n/a", *cells[5:]])  # text in the close column
    rows.append(rows[-1])  # the same session twice
    (folder / "MIXED.NS.csv").write_text(HEADER + "\n".join(rows) + "\n")
    return folder


def run_slice(csv_dir: Path, tmp_path: Path, max_failed_ratio: float) -> DataCatalog:
    """Ingestion and cleaning over the folder, with the project's own parameters otherwise."""
    loader = OmegaConfigLoader(
        str(Path(__file__).resolve().parents[2] / "conf"), **CONFIG_LOADER_ARGS
    )
    parameters: dict[str, Any] = loader["parameters"]
    settings = parameters["ingestion"] | {
        "source": "csv",
        "csv_dir": str(csv_dir),
        "start_date": "2024-01-01",
        "end_date": None,
        "tickers": ["TCS.NS", "GOOD.NS", *BAD_FILES, "MIXED.NS", "MISSING.NS"],
        "max_failed_ratio": max_failed_ratio,
    }
    catalog = DataCatalog(
        {
            "raw_prices_stored": bronze_dataset(tmp_path / "bronze"),
            "raw_prices": bronze_dataset(tmp_path / "bronze"),
            "params:ingestion": MemoryDataset(settings),
            "params:ingestion.max_failed_ratio": MemoryDataset(max_failed_ratio),
            "params:cleaning": MemoryDataset(parameters["cleaning"]),
            "params:rebuild": MemoryDataset(False),
            "params:compute": MemoryDataset({"engine": "local"}),
            "clean_prices_stored": MemoryDataset(
                pd.DataFrame({"ticker": pd.Series(dtype=str), "date": pd.Series(dtype="M8[us]")})
            ),
            "run_context": MemoryDataset(RUN_CONTEXT),
            **{
                name: KeptDataset()
                for name in ("ingestion_report", "quality_report", "quarantine", "prices@table")
            },
        }
    )
    SequentialRunner().run(ingestion.create_pipeline() + cleaning.create_pipeline(), catalog)
    return catalog


def test_each_bad_file_fails_alone_with_its_reason(csv_dir: Path, tmp_path: Path):
    catalog = run_slice(csv_dir, tmp_path, max_failed_ratio=0.7)
    report = catalog.load("quality_report")
    failed = report["summary"]["tickers_failed"]
    assert set(failed) == {*BAD_FILES, "MISSING.NS"}
    assert all(reason for reason in failed.values())
    assert "MISSING.NS" in failed and "no" in failed["MISSING.NS"].lower()
    prices = pd.concat(
        rows() for rows in catalog.load("prices@table").values()
    )  # one frame per bucket
    assert set(prices["ticker"]) == {"TCS.NS", "GOOD.NS", "MIXED.NS"}
    assert prices.groupby("ticker").size()["TCS.NS"] == prices.groupby("ticker").size()["GOOD.NS"]


def test_bad_rows_are_quarantined_with_their_rule(csv_dir: Path, tmp_path: Path):
    catalog = run_slice(csv_dir, tmp_path, max_failed_ratio=0.7)
    quarantine = catalog.load("quarantine")
    mixed = quarantine[quarantine["ticker"] == "MIXED.NS"]
    assert set(mixed["rule"]) == {"unparsable_value", "duplicate_date"}
    assert "n/a" in set(mixed["raw_close"])
    assert report_rules(catalog.load("quality_report"), "MIXED.NS") == {
        "unparsable_value",
        "duplicate_date",
    }


def report_rules(report: dict[str, Any], ticker: str) -> set[str]:
    """The quarantine rules the quality report counts for a ticker."""
    return set(report["tickers"][ticker]["quarantine_by_rule"])


def test_too_many_failures_stop_the_run_naming_them(csv_dir: Path, tmp_path: Path):
    with pytest.raises(IngestionFailedError, match=r"JUNK\.NS"):
        run_slice(csv_dir, tmp_path, max_failed_ratio=0.2)
