"""GET /features: every matching row as JSON pages, CSV, Parquet or an Arrow IPC stream."""

import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from stock_pipeline.api.bulk import BulkFormat, encode, encode_cursor
from stock_pipeline.contract import KEY
from stock_pipeline.versions import load_features
from tests.api.conftest import make_features, write_features


def stored(project: Path) -> pd.DataFrame:
    """The feature table's latest version as the pipeline wrote it, sorted by ticker then date."""
    return load_features(project_path=project).sort_values(list(KEY)).reset_index(drop=True)


def read_body(fmt: str, body: bytes) -> pd.DataFrame:
    """A bulk download read back with pandas or pyarrow."""
    if fmt == "parquet":
        return pd.read_parquet(io.BytesIO(body))
    if fmt == "arrow":
        return pa.ipc.open_stream(body).read_all().to_pandas()
    return pd.read_csv(io.BytesIO(body), parse_dates=["date"])


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "csv"])
def test_every_row_of_the_dataset_in_each_format(
    client: TestClient, project: Path, fmt: str
) -> None:
    response = client.get("/features", params={"format": fmt})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(
        {"parquet": "application/vnd.apache.parquet", "arrow": "application/vnd.apache.arrow"}.get(
            fmt, "text/csv"
        )
    )
    assert response.headers["X-Data-Version"].isdigit()  # the Delta table version
    expected = stored(project)
    pd.testing.assert_frame_equal(
        read_body(fmt, response.content), expected, check_dtype=fmt == "parquet", atol=1e-9
    )


def test_filters_by_tickers_dates_and_columns(client: TestClient, project: Path) -> None:
    params = {
        "format": "parquet",
        "tickers": "M&M.NS,INFY.NS",
        "columns": "close,rsi_14",
        "start": "2026-01-01",
    }
    body = pd.read_parquet(io.BytesIO(client.get("/features", params=params).content))
    expected = stored(project)
    expected = expected[
        expected["ticker"].isin(["INFY.NS", "M&M.NS"]) & (expected["date"] >= "2026-01-01")
    ][["ticker", "date", "close", "rsi_14"]].reset_index(drop=True)
    assert list(body["ticker"].unique()) == ["INFY.NS", "M&M.NS"]  # dataset order, not asked order
    pd.testing.assert_frame_equal(body, expected)


def test_json_pages_walk_every_row_once(client: TestClient, project: Path) -> None:
    rows, params, pages = [], {"limit": 70, "columns": "close"}, 0
    while True:
        page = client.get("/features", params=params).json()
        pages += 1
        assert page["count"] == len(page["rows"]) <= 70
        rows += page["rows"]
        if page["next_cursor"] is None:
            break
        params = {"limit": 70, "columns": "close", "cursor": page["next_cursor"]}
    expected = stored(project)
    assert pages == -(-len(expected) // 70)
    assert [(r["ticker"], r["date"]) for r in rows] == [
        (t, d.date().isoformat()) for t, d in zip(expected["ticker"], expected["date"], strict=True)
    ]
    assert [r["close"] for r in rows] == pytest.approx(expected["close"].tolist())
    assert set(rows[0]) == {"ticker", "date", "close"}


def test_a_cursor_pins_its_version(client: TestClient, project: Path, fresh_date) -> None:
    first = client.get("/features", params={"limit": 10})
    version = first.headers["X-Data-Version"]
    before = stored(project)
    cursor = first.json()["next_cursor"]
    other = encode_cursor("999", 10)
    assert client.get("/features", params={"cursor": cursor, "version": "x1"}).status_code == 409
    write_features(make_features(fresh_date).head(20), project)  # a new table version
    client.app.state.services.store.refresh()
    assert client.get("/features").headers["X-Data-Version"] != version
    response = client.get("/features", params={"cursor": cursor})  # still the cursor's version
    assert response.status_code == 200
    assert response.headers["X-Data-Version"] == version
    row = response.json()["rows"][0]
    assert (row["ticker"], row["date"]) == (
        before["ticker"][10],
        before["date"][10].date().isoformat(),
    )
    response = client.get("/features", params={"cursor": other})
    assert response.status_code == 404
    assert response.json() == {"detail": "unknown version: 999"}


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"tickers": "INFY.NS,TCS.NS"}, 404),
        ({"cursor": "bm90LWEtY3Vyc29y"}, 404),
        ({"tickers": "infy.ns"}, 422),
        ({"tickers": "INFY.NS,"}, 422),
        ({"format": "xml"}, 422),
        ({"columns": "close,nope"}, 422),
        ({"limit": 0}, 422),
        ({"limit": 10001}, 422),
        ({"cursor": "not a cursor"}, 422),
        ({"start": "0"}, 422),
    ],
)
def test_bad_bulk_requests(client: TestClient, params: dict, status: int) -> None:
    assert client.get("/features", params=params).status_code == status


def test_unknown_tickers_are_named(client: TestClient) -> None:
    response = client.get("/features", params={"tickers": "INFY.NS,TCS.NS,ABC.NS"})
    assert response.json() == {"detail": "unknown tickers: TCS.NS, ABC.NS"}


@pytest.mark.parametrize("fmt", [BulkFormat.PARQUET, BulkFormat.ARROW, BulkFormat.CSV])
def test_bodies_stream_batch_by_batch(fmt: BulkFormat) -> None:
    table = pa.Table.from_pandas(
        make_features(pd.Timestamp("2026-11-27").date()), preserve_index=False
    )
    batches = (table.slice(start, 50) for start in range(0, table.num_rows, 50))
    chunks = list(encode(batches, table.schema, fmt))
    assert len(chunks) >= table.num_rows // 50
    assert max(map(len, chunks)) < sum(map(len, chunks)) / 2
    assert len(read_body(fmt.value, b"".join(chunks))) == table.num_rows
