"""/tickers, /features/{ticker}, /latest and /market-summary with good and bad input."""

from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from stock_pipeline.versions import table_versions
from tests.api.conftest import FEATURES, make_features, write_features


def test_health_reports_what_is_loaded(client: TestClient, fresh_date: date) -> None:
    body = client.get("/health").json()
    assert body == {
        "status": "ok",
        "features_loaded": True,
        "tickers": 3,
        "last_date": fresh_date.isoformat(),
    }


def test_tickers_lists_each_with_its_range_and_rows(
    client: TestClient, fresh_date: date, tickers: tuple[str, ...], sessions: int
) -> None:
    response = client.get("/tickers")
    assert response.status_code == 200
    body = response.json()
    assert [t["ticker"] for t in body] == sorted(tickers)
    assert all(t["rows"] == sessions and t["last_date"] == fresh_date.isoformat() for t in body)


def test_features_default_is_the_latest_rows_newest_first(
    client: TestClient, sessions: int
) -> None:
    body = client.get("/features/INFY.NS").json()
    assert body["ticker"] == "INFY.NS"
    assert body["order"] == "desc"
    assert body["count"] == sessions == len(body["rows"])
    dates = [row["date"] for row in body["rows"]]
    assert dates == sorted(dates, reverse=True)
    assert body["columns"][:3] == ["date", "open", "high"]
    assert set(body["rows"][0]) == set(body["columns"])


def test_features_nan_becomes_null(client: TestClient) -> None:
    rows = client.get("/features/INFY.NS", params={"order": "asc", "limit": 1}).json()["rows"]
    assert rows[0]["sma_50"] is None
    assert rows[0]["daily_return"] is None


def test_features_limit_order_and_columns(client: TestClient) -> None:
    params = {"limit": 5, "order": "asc", "columns": "close,rsi_14"}
    body = client.get("/features/M&M.NS", params=params).json()
    assert body["columns"] == ["date", "close", "rsi_14"]
    assert body["count"] == 5
    assert all(set(row) == {"date", "close", "rsi_14"} for row in body["rows"])
    assert body["rows"][0]["date"] < body["rows"][-1]["date"]


def test_features_date_range_is_inclusive(client: TestClient) -> None:
    everything = client.get("/features/BAJAJ-AUTO.NS", params={"order": "asc"}).json()["rows"]
    start, end = everything[10]["date"], everything[19]["date"]
    body = client.get(
        "/features/BAJAJ-AUTO.NS", params={"start": start, "end": end, "order": "asc"}
    ).json()
    assert [r["date"] for r in body["rows"]] == [r["date"] for r in everything[10:20]]


@pytest.mark.parametrize(
    "params", [{"end": "2000-01-01"}, {"start": "2025-02-01", "end": "2025-01-01"}]
)
def test_features_range_without_rows_is_empty(client: TestClient, params: dict) -> None:
    body = client.get("/features/INFY.NS", params=params).json()
    assert body["count"] == 0
    assert body["rows"] == []


def test_features_name_the_version_served(client: TestClient) -> None:
    response = client.get("/features/INFY.NS", params={"limit": 1})
    version = response.headers["X-Data-Version"]
    assert response.json()["version"] == version
    assert client.get("/tickers").headers["X-Data-Version"] == version
    pinned = client.get("/features/INFY.NS", params={"limit": 1, "version": version})
    assert pinned.json() == response.json()


def test_a_pinned_version_is_the_delta_version_that_wrote_it(
    client: TestClient, project: Path, fresh_date: date
) -> None:
    old = client.get("/features/INFY.NS", params={"limit": 3})
    version = old.headers["X-Data-Version"]
    assert version == str(table_versions(project / FEATURES)[0]["version"])
    write_features(make_features(fresh_date).assign(close=1.0), project)  # the next version
    client.app.state.services.store.refresh()
    new = client.get("/features/INFY.NS", params={"limit": 3})
    assert new.headers["X-Data-Version"] == str(int(version) + 1)
    assert {row["close"] for row in new.json()["rows"]} == {1.0}
    pinned = client.get("/features/INFY.NS", params={"limit": 3, "version": version})
    assert pinned.headers["X-Data-Version"] == version
    assert pinned.json() == old.json()
    assert client.get("/features/INFY.NS", params={"version": "99"}).json() == {
        "detail": "unknown version: 99"
    }


@pytest.mark.parametrize("path", ["/features/INFY.NS", "/tickers", "/features"])
def test_an_unknown_version_is_404_naming_it(client: TestClient, path: str) -> None:
    response = client.get(path, params={"version": "2026-11-24T18.30.01.123Z"})
    assert response.status_code == 404
    assert response.json() == {"detail": "unknown version: 2026-11-24T18.30.01.123Z"}


def test_features_columns_may_name_the_key(client: TestClient) -> None:
    body = client.get("/features/INFY.NS", params={"columns": "ticker,date,close"}).json()
    assert body["columns"] == ["date", "close"]


def test_features_encoded_ampersand_ticker(client: TestClient) -> None:
    assert client.get("/features/M%26M.NS?limit=1").json()["ticker"] == "M&M.NS"


def test_features_unknown_ticker_is_404(client: TestClient) -> None:
    response = client.get("/features/TCS.NS")
    assert response.status_code == 404
    assert response.json() == {"detail": "unknown ticker: TCS.NS"}


@pytest.mark.parametrize(
    "path",
    [
        "/features/infy.ns",
        "/features/INFY",
        "/features/INFY.NS;DROP",
        "/features/%27%20OR%201=1",
        "/features/" + "A" * 30 + ".NS",
        "/features/INFY.NS?limit=0",
        "/features/INFY.NS?limit=10001",
        "/features/INFY.NS?limit=abc",
        "/features/INFY.NS?start=2024-13-01",
        "/features/INFY.NS?end=yesterday",
        "/features/INFY.NS?start=0",
        "/features/INFY.NS?end=1700000000",
        "/features/INFY.NS?start=2024-1-5",
        "/features/INFY.NS?order=sideways",
        "/features/INFY.NS?columns=close;select",
        "/features/INFY.NS?columns=close,nope",
        "/features/INFY.NS?columns=",
        "/features/INFY.NS?version=",
        "/features/INFY.NS?version=bad%20version",
    ],
)
def test_features_malformed_input_is_422(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 422


def test_latest_reads_the_view(
    client: TestClient, fresh_date: date, tickers: tuple[str, ...]
) -> None:
    body = client.get("/latest").json()
    assert [bar["ticker"] for bar in body] == sorted(tickers)
    assert all(bar["date"] == fresh_date.isoformat() for bar in body)
    assert {"close", "volume", "rsi_14"} <= set(body[0])


def test_market_summary_in_a_range(client: TestClient, fresh_date: date) -> None:
    start = (fresh_date - timedelta(days=10)).isoformat()
    body = client.get(
        "/market-summary", params={"start": start, "end": fresh_date.isoformat()}
    ).json()
    assert body
    assert body[0]["date"] == fresh_date.isoformat()
    assert all(start <= day["date"] <= fresh_date.isoformat() for day in body)
    assert body[0]["tickers"] == 3


def test_market_summary_default_limit_and_extreme_dates(client: TestClient) -> None:
    assert len(client.get("/market-summary").json()) == 30
    response = client.get("/market-summary", params={"start": "0001-01-01", "end": "9999-12-31"})
    assert response.status_code == 200


def test_market_summary_with_start_after_end_is_empty(client: TestClient) -> None:
    response = client.get("/market-summary", params={"start": "2025-02-01", "end": "2025-01-01"})
    assert (response.status_code, response.json()) == (200, [])


@pytest.mark.parametrize("query", ["limit=0", "start=not-a-date", "start=0", "limit=99999"])
def test_market_summary_malformed_input_is_422(client: TestClient, query: str) -> None:
    assert client.get(f"/market-summary?{query}").status_code == 422
