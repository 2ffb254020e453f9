"""The CSV source reads both yfinance layouts as text and fails clearly on bad files."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from stock_pipeline.contract import BRONZE_COLUMNS
from stock_pipeline.sources import CSVSource, NoDataError, SourceError, build_source

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "csv"


@pytest.fixture
def csv_dir(tmp_path: Path) -> Path:
    """A folder with one classic and one three-line-header file."""
    shutil.copy(FIXTURES / "TCS_classic.csv", tmp_path / "TCS.NS.csv")
    shutil.copy(FIXTURES / "INFY_multiheader.csv", tmp_path / "INFY.NS.csv")
    return tmp_path


def test_classic_header_keeps_values_as_written(csv_dir: Path):
    frame = CSVSource(csv_dir).fetch(
        "TCS.NS", pd.Timestamp("2024-01-01"), pd.Timestamp("2024-12-31")
    )
    original = pd.read_csv(csv_dir / "TCS.NS.csv", dtype=str)
    assert list(frame.columns) == list(BRONZE_COLUMNS)
    assert frame["close"].tolist() == original["Close"].tolist()
    assert frame["adj_close"].tolist() == original["Adj Close"].tolist()


def test_multiheader_any_order_without_adj_close(csv_dir: Path):
    frame = CSVSource(csv_dir).fetch(
        "INFY.NS", pd.Timestamp("2026-03-01"), pd.Timestamp("2026-12-31")
    )
    original = pd.read_csv(
        csv_dir / "INFY.NS.csv", skiprows=[1, 2], dtype=str, keep_default_na=False
    )
    assert frame["date"].tolist() == original["Price"].tolist()
    assert frame["open"].tolist() == original["Open"].tolist()
    assert (frame["adj_close"] == frame["close"]).all()
    assert frame.iloc[-1]["close"] == ""  # the partial bar survives for cleaning to quarantine


def test_window_filters_rows(csv_dir: Path):
    frame = CSVSource(csv_dir).fetch(
        "TCS.NS", pd.Timestamp("2024-02-01"), pd.Timestamp("2024-02-29")
    )
    dates = pd.to_datetime(frame["date"])
    assert dates.min() >= pd.Timestamp("2024-02-01")
    assert dates.max() <= pd.Timestamp("2024-02-29")
    assert len(frame) > 15


def test_unknown_ticker_is_no_data(csv_dir: Path):
    with pytest.raises(NoDataError, match="no file"):
        CSVSource(csv_dir).fetch("NOPE.NS", pd.Timestamp("2024-01-01"), pd.Timestamp("2024-12-31"))


def test_window_without_rows_is_no_data(csv_dir: Path):
    with pytest.raises(NoDataError, match="no rows"):
        CSVSource(csv_dir).fetch("TCS.NS", pd.Timestamp("2010-01-01"), pd.Timestamp("2010-12-31"))


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (b"", NoDataError, "empty file"),
        (bytes(range(256)) * 8, SourceError, "TCS.NS.csv"),
        (b"Date,Open,Close\n2024-01-01,1,2\n", SourceError, "lacks columns"),
        (b"a,b\n1,2,3,4\n5\n", SourceError, "TCS.NS.csv"),
    ],
    ids=["empty", "random-bytes", "missing-columns", "ragged"],
)
def test_bad_files_raise_clear_errors(tmp_path: Path, content: bytes, error: type, message: str):
    (tmp_path / "TCS.NS.csv").write_bytes(content)
    with pytest.raises(error, match=message):
        CSVSource(tmp_path).fetch("TCS.NS", pd.Timestamp("2024-01-01"), pd.Timestamp("2024-12-31"))


def test_build_source_rejects_unknown_name():
    with pytest.raises(ValueError, match=r"ingestion\.source must be one of"):
        build_source({"source": "bloomberg"})


INTRADAY_CSV = """Price,Close,High,Low,Open,Volume
Ticker,TCS.NS,TCS.NS,TCS.NS,TCS.NS,TCS.NS
Datetime,,,,,
2024-06-03 09:15:00+05:30,3810.5,3822.0,3801.0,3815.0,120345
2024-06-03 09:20:00+05:30,3812.25,3815.0,3805.5,3810.5,80211
2024-06-04 03:45:00+00:00,3701.0,3730.0,3690.0,3725.0,150000
2024-06-05 09:15:00+05:30,3750.0,3760.0,3740.0,3745.0,90000
"""


def test_intraday_csv_times_become_naive_exchange_time(tmp_path: Path):
    (tmp_path / "TCS.NS.csv").write_text(INTRADAY_CSV)
    frame = CSVSource(tmp_path, interval="5m").fetch(
        "TCS.NS", pd.Timestamp("2024-06-03"), pd.Timestamp("2024-06-04")
    )
    assert frame["date"].tolist() == [
        "2024-06-03 09:15:00",
        "2024-06-03 09:20:00",
        "2024-06-04 09:15:00",  # written in UTC, read as the Kolkata bar it is
    ]
    assert frame["close"].tolist() == ["3810.5", "3812.25", "3701.0"]


def test_classic_intraday_header_without_offsets(tmp_path: Path):
    (tmp_path / "INFY.NS.csv").write_text(
        "Datetime,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-06-04 09:15:00,1450,1455,1440,1452,1452,1000\n"
        "2024-06-04 09:20:00,1452,1456,1450,1455,1455,1500\n"
        "2024-06-04 15:25:00,1460,1462,1458,1461,1461,2000\n"
    )
    frame = CSVSource(tmp_path, interval="5m").fetch(
        "INFY.NS", pd.Timestamp("2024-06-04"), pd.Timestamp("2024-06-04")
    )
    assert frame["date"].tolist() == [
        "2024-06-04 09:15:00",
        "2024-06-04 09:20:00",
        "2024-06-04 15:25:00",
    ]


def test_a_file_of_other_bars_than_the_interval_is_an_error(tmp_path: Path, csv_dir: Path):
    intraday = tmp_path / "intraday"
    intraday.mkdir()
    (intraday / "TCS.NS.csv").write_text(INTRADAY_CSV)
    window = (pd.Timestamp("2024-06-03"), pd.Timestamp("2024-06-05"))
    with pytest.raises(
        SourceError, match=r"TCS\.NS\.csv holds 5m bars, but ingestion.interval is 15m"
    ):
        CSVSource(intraday, interval="15m").fetch("TCS.NS", *window)
    with pytest.raises(SourceError, match=r"holds 5m bars, but ingestion\.interval is 1d"):
        build_source({"source": "csv", "csv_dir": str(intraday)}).fetch("TCS.NS", *window)
    with pytest.raises(SourceError, match=r"holds 1d bars, but ingestion\.interval is 5m"):
        CSVSource(csv_dir, interval="5m").fetch(
            "TCS.NS", pd.Timestamp("2024-01-01"), pd.Timestamp("2024-12-31")
        )
