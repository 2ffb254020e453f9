"""Market data: tickers, features from memory, and the SQL views of the latest bars."""

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from pydantic_core import to_json

from api.models import FeatureRows, LatestBar, MarketSummaryDay, Problem, TickerInfo
from api.services import ServicesDep
from api.store import FeatureSnapshot
from api.validation import COLUMNS_PATTERN, sql_record
from stock_pipeline.contract import TICKER_LENGTH, TICKER_PATTERN

router = APIRouter(tags=["data"])

ERRORS = {
    401: {"model": Problem, "description": "API key missing or wrong"},
    503: {"model": Problem, "description": "The pipeline has not produced the data yet"},
}
Ticker = Annotated[
    str,
    Path(
        pattern=TICKER_PATTERN,
        max_length=TICKER_LENGTH,
        examples=["INFY.NS"],
        description="NSE symbol",
    ),
]


def known_ticker(snapshot: FeatureSnapshot, ticker: str) -> str:
    """The ticker when the feature data has it, else 404."""
    if ticker not in snapshot.spans:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"unknown ticker: {ticker}")
    return ticker


def chosen_columns(snapshot: FeatureSnapshot, columns: str | None) -> tuple[str, ...]:
    """The requested columns (all when none), each checked against the dataset's columns."""
    if columns is None:
        return snapshot.columns
    requested = tuple(dict.fromkeys(c for c in columns.split(",") if c != "date"))
    unknown = [c for c in requested if c not in snapshot.columns]
    if unknown:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"unknown columns: {', '.join(unknown)}"
        )
    return requested


def checked_range(start: date | None, end: date | None) -> None:
    """422 when start is after end."""
    if start and end and start > end:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="start is after end")


@router.get("/tickers", response_model=list[TickerInfo], responses=ERRORS)
async def list_tickers(services: ServicesDep) -> list[TickerInfo]:
    """Every ticker in the feature dataset with its first and last date and row count."""
    spans = services.features().spans
    return [
        TickerInfo(ticker=t, first_date=s.first_date, last_date=s.last_date, rows=s.stop - s.start)
        for t, s in spans.items()
    ]


@router.get(
    "/features/{ticker}",
    response_model=FeatureRows,
    responses={404: {"model": Problem, "description": "Unknown ticker"}, **ERRORS},
)
async def get_features(
    *,
    services: ServicesDep,
    ticker: Ticker,
    start: Annotated[date | None, Query(description="First date (ISO), inclusive")] = None,
    end: Annotated[date | None, Query(description="Last date (ISO), inclusive")] = None,
    columns: Annotated[
        str | None,
        Query(
            pattern=COLUMNS_PATTERN,
            description="Comma-separated feature columns; date is always included",
            examples=["close,rsi_14,macd"],
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10000, description="At most this many rows")] = 250,
    order: Annotated[
        Literal["asc", "desc"],
        Query(description="Date order; the limit keeps the first rows in this order"),
    ] = "desc",
) -> Response:
    """A ticker's feature rows, served from memory (desc with a limit gives the latest rows)."""
    snapshot = services.features()
    checked_range(start, end)
    known_ticker(snapshot, ticker)
    chosen = chosen_columns(snapshot, columns)
    count, rows = snapshot.rows_json(
        ticker=ticker, start=start, end=end, columns=chosen, limit=limit, descending=order == "desc"
    )
    # A FeatureRows body written directly: the rows are JSON already (see FeatureSnapshot).
    head = to_json({"ticker": ticker, "columns": ["date", *chosen], "order": order, "count": count})
    return Response(head[:-1] + b',"rows":' + rows + b"}", media_type="application/json")


@router.get("/latest", response_model=list[LatestBar], responses=ERRORS)
def latest(services: ServicesDep) -> list[dict]:
    """Every ticker's latest stored bar, from the SQL view latest_stock_data."""
    return [sql_record(row) for row in services.db.latest()]


@router.get("/market-summary", response_model=list[MarketSummaryDay], responses=ERRORS)
def market_summary(
    services: ServicesDep,
    start: Annotated[date | None, Query(description="First date (ISO), inclusive")] = None,
    end: Annotated[date | None, Query(description="Last date (ISO), inclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=10000, description="At most this many days")] = 30,
) -> list[dict]:
    """Market-wide daily aggregates from the SQL view daily_market_summary, newest first."""
    checked_range(start, end)
    rows = services.db.market_summary(start or date.min, end or date.max, limit)
    return [sql_record(row) for row in rows]
