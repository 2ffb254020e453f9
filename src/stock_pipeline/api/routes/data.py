"""Market data: tickers, features from memory (one ticker or in bulk), and the SQL views."""

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from fastapi.responses import StreamingResponse
from pydantic_core import to_json

from stock_pipeline.api.bulk import (
    CURSOR_PATTERN,
    MEDIA_TYPES,
    BulkFormat,
    decode_cursor,
    encode,
    encode_cursor,
)
from stock_pipeline.api.models import (
    FeaturePage,
    FeatureRows,
    InvalidInput,
    LatestBar,
    MarketSummaryDay,
    Problem,
    TickerInfo,
)
from stock_pipeline.api.services import ServicesDep
from stock_pipeline.api.store import FeatureSnapshot
from stock_pipeline.api.validation import (
    COLUMNS_PATTERN,
    TICKERS_PATTERN,
    VERSION_PATTERN,
    IsoDate,
    sql_record,
)
from stock_pipeline.contract import KEY, TICKER_LENGTH, TICKER_PATTERN

router = APIRouter(tags=["data"])

DATA_VERSION_HEADER = "X-Data-Version"
NOT_READY = {503: {"model": Problem, "description": "The pipeline has not produced the data yet"}}
INVALID = {422: {"model": InvalidInput, "description": "Malformed input"}}
ERRORS = {**NOT_READY, **INVALID}
VERSIONED: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            DATA_VERSION_HEADER: {
                "description": "The version of the feature data served",
                "required": True,
                "schema": {"type": "string"},
            }
        }
    },
    404: {"model": Problem, "description": "Unknown ticker or version"},
    **ERRORS,
}
BINARY = {"schema": {"type": "string", "format": "binary"}}
Ticker = Annotated[
    str,
    Path(
        pattern=TICKER_PATTERN,
        max_length=TICKER_LENGTH,
        examples=["INFY.NS"],
        description="NSE symbol",
    ),
]
Start = Annotated[IsoDate | None, Query(description="First date (YYYY-MM-DD), inclusive")]
End = Annotated[
    IsoDate | None,
    Query(description="Last date (YYYY-MM-DD), inclusive; before start: no rows"),
]
Columns = Annotated[
    str | None,
    Query(
        pattern=COLUMNS_PATTERN,
        description="Comma-separated feature columns (all when absent); ticker and date always come",
        examples=["close,rsi_14,macd"],
    ),
]
Version = Annotated[
    str | None,
    Query(
        pattern=VERSION_PATTERN,
        description="The version of the feature data to serve (X-Data-Version); the current one when absent",
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
    requested = tuple(dict.fromkeys(c for c in columns.split(",") if c not in KEY))
    unknown = [c for c in requested if c not in snapshot.columns]
    if unknown:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"unknown columns: {', '.join(unknown)}"
        )
    return requested


def requested_tickers(snapshot: FeatureSnapshot, tickers: str | None) -> tuple[str, ...]:
    """The comma-separated tickers (none: every ticker), each known, else 404 naming them."""
    requested = tuple(dict.fromkeys(tickers.split(","))) if tickers else ()
    unknown = [t for t in requested if t not in snapshot.spans]
    if unknown:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"unknown tickers: {', '.join(unknown)}"
        )
    return requested


def cursor_position(cursor: str | None, version: str | None) -> tuple[str | None, int]:
    """The version and first row a cursor stands for (no cursor: the asked version, row 0)."""
    if cursor is None:
        return version, 0
    decoded = decode_cursor(cursor)
    if decoded is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"unknown cursor: {cursor}")
    if version is not None and version != decoded[0]:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"the cursor belongs to version {decoded[0]}, not {version}",
        )
    return decoded


@router.get("/tickers", response_model=list[TickerInfo], responses=VERSIONED)
async def list_tickers(
    services: ServicesDep, response: Response, version: Version = None
) -> list[TickerInfo]:
    """Every ticker in the feature dataset with its first and last date and row count."""
    snapshot = await services.features(version)
    response.headers[DATA_VERSION_HEADER] = snapshot.version
    return [
        TickerInfo(ticker=t, first_date=s.first_date, last_date=s.last_date, rows=s.stop - s.start)
        for t, s in snapshot.spans.items()
    ]


@router.get("/features/{ticker}", response_model=FeatureRows, responses=VERSIONED)
async def get_features(
    *,
    services: ServicesDep,
    ticker: Ticker,
    start: Start = None,
    end: End = None,
    columns: Columns = None,
    limit: Annotated[int, Query(ge=1, le=10000, description="At most this many rows")] = 250,
    order: Annotated[
        Literal["asc", "desc"],
        Query(description="Date order; the limit keeps the first rows in this order"),
    ] = "desc",
    version: Version = None,
) -> Response:
    """A ticker's feature rows, served from memory (desc with a limit gives the latest rows)."""
    snapshot = await services.features(version)
    known_ticker(snapshot, ticker)
    chosen = chosen_columns(snapshot, columns)
    count, rows = snapshot.rows_json(
        ticker=ticker, start=start, end=end, columns=chosen, limit=limit, descending=order == "desc"
    )
    # A FeatureRows body written directly: the rows are JSON already (see FeatureSnapshot).
    head = to_json(
        {
            "ticker": ticker,
            "version": snapshot.version,
            "columns": ["date", *chosen],
            "order": order,
            "count": count,
        }
    )
    return Response(
        head[:-1] + b',"rows":' + rows + b"}",
        media_type="application/json",
        headers={DATA_VERSION_HEADER: snapshot.version},
    )


@router.get(
    "/features",
    response_model=FeaturePage,
    responses={
        **VERSIONED,
        200: {
            **VERSIONED[200],
            "description": "A JSON page, or every row as CSV, Parquet or an Arrow IPC stream",
            "content": {MEDIA_TYPES[f]: BINARY for f in BulkFormat if f != BulkFormat.JSON},
        },
        404: {"model": Problem, "description": "Unknown ticker, version or cursor"},
        409: {"model": Problem, "description": "The cursor belongs to another version"},
    },
)
async def bulk_features(
    *,
    services: ServicesDep,
    tickers: Annotated[
        str | None,
        Query(
            pattern=TICKERS_PATTERN,
            max_length=20_000,
            description="Comma-separated NSE symbols; every ticker when absent",
            examples=["INFY.NS,TCS.NS"],
        ),
    ] = None,
    start: Start = None,
    end: End = None,
    columns: Columns = None,
    format_: Annotated[
        BulkFormat,
        Query(
            alias="format",
            description="json: pages of `limit` rows; csv, parquet, arrow (IPC stream): every row, streamed",
        ),
    ] = BulkFormat.JSON,
    limit: Annotated[
        int, Query(ge=1, le=10000, description="Rows per JSON page (other formats have no cap)")
    ] = 1000,
    cursor: Annotated[
        str | None,
        Query(
            pattern=CURSOR_PATTERN,
            description="The next_cursor of the previous JSON page (it pins that page's version)",
        ),
    ] = None,
    version: Version = None,
) -> Response:
    """Every matching row sorted by ticker then date, from memory: JSON pages or a streamed file."""
    pinned, first_row = cursor_position(cursor, version)
    snapshot = await services.features(pinned)
    requested = requested_tickers(snapshot, tickers)
    chosen = chosen_columns(snapshot, columns)
    selections = snapshot.select(requested, start, end, first_row)
    headers = {DATA_VERSION_HEADER: snapshot.version}
    if format_ == BulkFormat.JSON:
        rows, next_row = snapshot.page_json(selections, chosen, limit)
        head = to_json(
            {
                "version": snapshot.version,
                "columns": [*KEY, *chosen],
                "count": len(rows),
                "next_cursor": None
                if next_row is None
                else encode_cursor(snapshot.version, next_row),
            }
        )
        body = head[:-1] + b',"rows":[' + b",".join(rows) + b"]}"
        return Response(body, media_type=MEDIA_TYPES[format_], headers=headers)
    tables = snapshot.batches(selections, chosen, services.config.bulk_batch_rows)
    schema = snapshot.table.select([*KEY, *chosen]).schema
    filename = f"features.{'arrows' if format_ == BulkFormat.ARROW else format_.value}"
    return StreamingResponse(
        encode(tables, schema, format_),
        media_type=MEDIA_TYPES[format_],
        headers={**headers, "Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/latest", response_model=list[LatestBar], responses=NOT_READY)
def latest(services: ServicesDep) -> list[dict]:
    """Every ticker's latest stored bar, from the SQL view latest_stock_data."""
    return [sql_record(row) for row in services.db.latest()]


@router.get("/market-summary", response_model=list[MarketSummaryDay], responses=ERRORS)
def market_summary(
    services: ServicesDep,
    start: Start = None,
    end: End = None,
    limit: Annotated[int, Query(ge=1, le=10000, description="At most this many days")] = 30,
) -> list[dict]:
    """Market-wide daily aggregates from the SQL view daily_market_summary, newest first."""
    rows = services.db.market_summary(start or date.min, end or date.max, limit)
    return [sql_record(row) for row in rows]
