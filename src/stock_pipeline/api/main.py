"""The FastAPI app: `uvicorn stock_pipeline.api.main:app`."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request, Security
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from stock_pipeline.api.config import ApiConfig, load_config
from stock_pipeline.api.database import DatabaseUnavailable
from stock_pipeline.api.models import Liveness, Problem
from stock_pipeline.api.routes import data, mlops, models, stream
from stock_pipeline.api.security import API_KEY_HEADER, RequestLog
from stock_pipeline.api.services import (
    DataNotReady,
    Services,
    ServicesDep,
    rate_limit,
    require_api_key,
)
from stock_pipeline.api.store import UnknownVersion
from stock_pipeline.api.validation import COLUMNS_PATTERN, columns_pattern

logger = logging.getLogger(__name__)

DESCRIPTION = """Features, market views and MLOps health of stock-pipeline.

Data responses name the version of the feature data they served (`X-Data-Version`); pass it back
as `?version=` to get exactly those rows again. `GET /features` downloads many tickers at once:
JSON pages, or every row as CSV, Parquet or an Arrow IPC stream.

When API keys are configured, every endpoint but `/health` requires one in the `X-API-Key` header.
"""
UNAUTHORIZED = {401: {"model": Problem, "description": "API key missing or wrong"}}
TOO_MANY = {
    429: {
        "model": Problem,
        "description": "Over the key's rate limit",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before the next request",
                "required": True,
                "schema": {"type": "integer"},
            }
        },
    }
}
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


async def watch_files(services: Services) -> None:
    """Reload changed files in a worker thread every interval; announce feature changes."""
    while True:
        await asyncio.sleep(services.config.reload_interval_seconds)
        changed = await asyncio.to_thread(services.store.refresh)
        if "features" in changed:
            services.changes.publish()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the files once, watch them while serving, close the pool at the end."""
    services: Services = app.state.services
    await asyncio.to_thread(services.store.refresh)
    watcher = asyncio.create_task(watch_files(services))
    logger.info(
        "Serving %s (env %s), database %s",
        services.config.project_root,
        services.config.env,
        services.db.masked_url,
    )
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        services.db.dispose()


async def not_ready(_: Request, error: Exception) -> JSONResponse:
    """503 for data the pipeline has not produced yet."""
    return JSONResponse({"detail": str(error)}, status_code=503)


async def unknown_version(_: Request, error: Exception) -> JSONResponse:
    """404 naming a version of the feature data that is not there."""
    return JSONResponse({"detail": f"unknown version: {error.args[0]}"}, status_code=404)


async def database_unavailable(_: Request, __: Exception) -> JSONResponse:
    """503 when the database is down or not migrated (no details: they could hold secrets)."""
    return JSONResponse({"detail": "database unavailable or not migrated"}, status_code=503)


def show_api_logs() -> None:
    """Print the API's INFO lines (the request log included) when nothing configured logging."""
    api_logger = logging.getLogger("stock_pipeline.api")
    if not api_logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        api_logger.addHandler(handler)
        api_logger.setLevel(logging.INFO)


def guards(config: ApiConfig) -> tuple[list[Any], dict[int | str, dict[str, Any]]]:
    """The dependencies that check keys and rate limits, and the answers they add, for what is
    configured: the OpenAPI document declares a key and a 429 only when they apply."""
    dependencies: list[Any] = []
    responses: dict[int | str, dict[str, Any]] = {}
    if config.api_keys:
        dependencies.append(Security(require_api_key))
        responses |= UNAUTHORIZED
    if config.rate_limit.enabled:
        dependencies.append(Depends(rate_limit))
        responses |= TOO_MANY
    return dependencies, responses


def _narrow(node: Any, pattern: str) -> None:
    """Replace COLUMNS_PATTERN with `pattern` everywhere in an OpenAPI (sub)document."""
    if isinstance(node, dict):
        if node.get("pattern") == COLUMNS_PATTERN:
            node["pattern"] = pattern
        for child in node.values():
            _narrow(child, pattern)
    elif isinstance(node, list):
        for child in node:
            _narrow(child, pattern)


def document_columns(app: FastAPI) -> None:
    """Make the OpenAPI document list the columns the data has (rebuilt when they change), so
    that a request it calls valid is one the API accepts."""
    build = app.openapi
    shown: tuple[str, ...] | None = None

    def openapi() -> dict[str, Any]:
        nonlocal shown
        snapshot = app.state.services.store.features.snapshot()
        columns = snapshot.columns if snapshot else None
        if app.openapi_schema is None or columns != shown:
            app.openapi_schema = None
            document = build()
            if columns:
                _narrow(document, columns_pattern((*data.KEY, *columns)))
            shown = columns
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(config: ApiConfig | None = None) -> FastAPI:
    """The app for a project configuration (KEDRO_ENV and STOCK_PIPELINE_PROJECT_ROOT by default)."""
    show_api_logs()
    app = FastAPI(
        title="stock-pipeline API",
        version="1.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.services = Services.from_config(config or load_config())
    app.add_exception_handler(DataNotReady, not_ready)
    app.add_exception_handler(UnknownVersion, unknown_version)
    app.add_exception_handler(DatabaseUnavailable, database_unavailable)
    if app.state.services.config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(app.state.services.config.cors_origins),
            allow_methods=["GET"],
            allow_headers=[API_KEY_HEADER],
            expose_headers=[data.DATA_VERSION_HEADER, "Retry-After"],
        )
    app.add_middleware(RequestLog)
    dependencies, responses = guards(app.state.services.config)
    app.include_router(data.router, dependencies=dependencies, responses=responses)
    app.include_router(mlops.router, dependencies=dependencies, responses=responses)
    app.include_router(models.router, dependencies=dependencies, responses=responses)
    app.include_router(stream.router)
    app.add_api_route("/health", health, methods=["GET"], response_model=Liveness, tags=["health"])
    document_columns(app)
    return app


async def health(services: ServicesDep) -> Liveness:
    """Liveness: the process answers; says whether feature data is loaded (no key needed)."""
    snapshot = services.store.features.snapshot()
    return Liveness(
        status="ok",
        features_loaded=snapshot is not None,
        tickers=len(snapshot.spans) if snapshot else 0,
        last_date=snapshot.last_date if snapshot else None,
    )


app = create_app()
