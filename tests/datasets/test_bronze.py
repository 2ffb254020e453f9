"""Bronze files: appends equal rewrites, reading the ends equals reading everything, a killed
append loses nothing, a rewrite stays marked until cleaning clears it."""

import io
import logging
from pathlib import Path

import pandas as pd
import pytest

from stock_pipeline.contract import BRONZE_COLUMNS, BronzeAppend
from stock_pipeline.datasets.bronze import BronzeDataset, BronzeFile, parse_bronze, rows_after


def bronze(days: pd.DatetimeIndex, first_close: float = 100.0) -> pd.DataFrame:
    """Bronze text rows, one per day, as ingestion writes them."""
    close = [f"{first_close + i:.2f}" for i in range(len(days))]
    frame = pd.DataFrame({column: close for column in BRONZE_COLUMNS}, dtype=object)
    frame["date"] = [str(day.date()) if day == day.normalize() else str(day) for day in days]
    frame["volume"] = "1000.0"
    return frame


DAYS = pd.bdate_range("2024-01-01", periods=300)


def test_an_append_writes_what_a_rewrite_would(tmp_path: Path):
    appended, rewritten = BronzeDataset(str(tmp_path / "a")), BronzeDataset(str(tmp_path / "b"))
    full = bronze(DAYS)
    appended.save({"AAA.NS": full.iloc[:290]})
    appended.save({"AAA.NS": BronzeAppend(full.iloc[290:])})
    rewritten.save({"AAA.NS": full})
    a, b = tmp_path / "a/AAA.NS.csv", tmp_path / "b/AAA.NS.csv"
    assert a.read_bytes() == b.read_bytes()
    pd.testing.assert_frame_equal(appended.load()["AAA.NS"](), rewritten.load()["AAA.NS"]())


@pytest.mark.parametrize("before", [0, 1, 7, 500, None])
@pytest.mark.parametrize("moment", ["2023-12-29", "2024-01-01", "2024-12-31", "2025-12-31", None])
def test_reading_the_end_equals_reading_everything(tmp_path: Path, moment, before):
    dataset = BronzeDataset(str(tmp_path))
    dataset.save({"AAA.NS": bronze(DAYS)})
    file = dataset.load()["AAA.NS"]
    pd.testing.assert_frame_equal(
        file.first(3), file().head(3), check_dtype=False, check_column_type=False
    )
    pd.testing.assert_frame_equal(
        file.last(3),
        file().tail(3).reset_index(drop=True),
        check_dtype=False,
        check_column_type=False,
    )
    moment = pd.Timestamp(moment) if moment else pd.NaT
    expected = rows_after(file(), moment, before).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        file.after(moment, before), expected, check_dtype=False, check_column_type=False
    )
    rows, failed = dataset.load().rows_after({"AAA.NS": moment}, before, BRONZE_COLUMNS)
    assert failed == {}
    pd.testing.assert_frame_equal(
        rows.drop(columns="ticker"),
        expected.astype(str),
        check_dtype=False,
        check_column_type=False,
    )


def test_intraday_bars_compare_by_their_time(tmp_path: Path):
    stamps = pd.date_range("2024-06-03 09:15", periods=150, freq="5min")
    path = tmp_path / "AAA.NS.csv"
    bronze(stamps).to_csv(path, index=False)
    file = BronzeFile(path)
    assert file.after(pd.Timestamp("2024-06-03 15:00"), 2)["date"].tolist()[:3] == [
        "2024-06-03 14:55:00",
        "2024-06-03 15:00:00",
        "2024-06-03 15:05:00",
    ]
    assert len(file.after(pd.Timestamp("2024-06-03"), 0)) == 150  # every bar is after midnight


def test_files_written_by_hand_are_read_whole(tmp_path: Path):
    """Quoted values, another column order, Windows line ends: the slow path, same rows."""
    frame = bronze(DAYS[:20])
    frame.loc[15, "volume"] = "1,000"  # quoted by to_csv
    (tmp_path / "QQQ.NS.csv").write_text(frame.to_csv(index=False))
    (tmp_path / "ORD.NS.csv").write_text(frame[frame.columns[::-1]].to_csv(index=False))
    (tmp_path / "WIN.NS.csv").write_bytes(frame.to_csv(index=False, lineterminator="\r\n").encode())
    (tmp_path / "BAD.NS.csv").write_text("date,open\n2024-01-01,1\n")
    files = BronzeDataset(str(tmp_path)).load()
    moment = pd.Timestamp(DAYS[12])
    rows, failed = files.rows_after(dict.fromkeys(files, moment), 3, BRONZE_COLUMNS)
    assert failed == {"BAD.NS": f"bronze file lacks columns {list(BRONZE_COLUMNS[2:])}"}
    expected = rows_after(frame, moment, 3).reset_index(drop=True)
    for ticker in ("ORD.NS", "QQQ.NS", "WIN.NS"):
        got = rows[rows["ticker"] == ticker].drop(columns="ticker").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_column_type=False)
        pd.testing.assert_frame_equal(
            files[ticker].after(moment, 3)[list(BRONZE_COLUMNS)],
            expected,
            check_dtype=False,
            check_column_type=False,
        )


def test_a_killed_append_loses_nothing(tmp_path: Path, caplog):
    dataset = BronzeDataset(str(tmp_path))
    full = bronze(DAYS)
    dataset.save({"AAA.NS": full.iloc[:290]})
    path = tmp_path / "AAA.NS.csv"
    with path.open("ab") as file:  # the append of a killed run stopped mid-row
        file.write(b"2025-02-11,391.00,391.00,39")
    file = dataset.load()["AAA.NS"]
    with caplog.at_level(logging.WARNING):
        assert file.last(1)["date"].tolist() == [full["date"].iloc[289]]
        assert len(file()) == 290
    assert "have no line end, as an append interrupted by a killed run" in caplog.text
    dataset.save({"AAA.NS": BronzeAppend(full.iloc[290:])})  # the next run refetches it
    pd.testing.assert_frame_equal(file(), full, check_dtype=False, check_column_type=False)


def test_a_killed_rewrite_leaves_the_old_file(tmp_path: Path, monkeypatch):
    dataset = BronzeDataset(str(tmp_path))
    dataset.save({"AAA.NS": bronze(DAYS[:10])})

    def killed(self, path, **kwargs):
        Path(path).write_text("date,open\n2024-")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", killed)
    with pytest.raises(KeyboardInterrupt):
        dataset.save({"AAA.NS": bronze(DAYS, first_close=50.0)})
    monkeypatch.undo()
    files = dataset.load()
    assert list(files) == ["AAA.NS"]
    pd.testing.assert_frame_equal(
        files["AAA.NS"](), bronze(DAYS[:10]), check_dtype=False, check_column_type=False
    )


def test_nothing_stored_loads_empty(tmp_path: Path):
    assert BronzeDataset(str(tmp_path / "absent")).load() == {}


def test_a_rewrite_stays_marked_until_cleared(tmp_path: Path):
    dataset = BronzeDataset(str(tmp_path))
    dataset.save({"AAA.NS": bronze(DAYS[:10]), "BBB.NS": bronze(DAYS[:10])})
    dataset.load().clear_rewritten({"AAA.NS", "BBB.NS"})
    assert dataset.load().rewritten == frozenset()
    dataset.save({"AAA.NS": BronzeAppend(bronze(DAYS[10:12])), "BBB.NS": bronze(DAYS[:12])})
    files = dataset.load()
    assert files.rewritten == {"BBB.NS"}  # appends are not marked
    assert list(files) == ["AAA.NS", "BBB.NS"]  # the marks are no bronze file
    files.clear_rewritten({"AAA.NS"})  # not cleaned whole: BBB.NS stays marked
    assert dataset.load().rewritten == {"BBB.NS"}


@pytest.mark.parametrize(
    "text",
    [
        b"date,open,close\n2024-01-01,NA,null\n2024-01-02,NaN,N/A\n",  # text, never missing
        b"date,open,close\n2024-01-01, 12 ,  \n2024-01-02,\t3,x\n",
        b"date,open,close\r\n2024-01-01,1,2\r\n",
        b'date,open,close\n2024-01-01,"1\n2","a,""b"""\n',
        b"\xef\xbb\xbfdate,open\n2024-01-01,1",
        b"date,open,close\n2024-01-01,1,2\n\n   \n2024-01-02,3,4\n",  # Arrow refuses these
        b"date,open,close\n2024-01-01,1,2,9\n2024-01-02,1\n",
        b"date,open",
    ],
)
def test_arrow_parsing_gives_what_pandas_parser_gives(text: bytes):
    expected = pd.read_csv(io.BytesIO(text), dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(parse_bronze(text), expected, check_column_type=False)
