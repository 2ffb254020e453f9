"""The FastAPI app: `uvicorn api.main:app`."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from api.config import ApiConfig, load_config
from api.database import DatabaseUnavailable
from api.models import Liveness
from api.routes import data, mlops, models, stream
from api.services import DataNotReady, Services, ServicesDep, require_api_key

logger = logging.getLogger(__name__)

DESCRIPTION = """Features, market views and MLOps health of stock-pipeline.

Every endpoint but `/health` requires the `X-API-Key` header when `STOCK_PIPELINE_API_KEY` is set.
"""


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


async def database_unavailable(_: Request, __: Exception) -> JSONResponse:
    """503 when the database is down or not migrated (no details: they could hold secrets)."""
    return JSONResponse({"detail": "database unavailable or not migrated"}, status_code=503)


def create_app(config: ApiConfig | None = None) -> FastAPI:
    """The app for a project configuration (KEDRO_ENV and STOCK_PIPELINE_PROJECT_ROOT by default)."""
    app = FastAPI(
        title="stock-pipeline API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.services = Services.from_config(config or load_config())
    app.add_exception_handler(DataNotReady, not_ready)
    app.add_exception_handler(DatabaseUnavailable, database_unavailable)
    if app.state.services.config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(app.state.services.config.cors_origins),
            allow_methods=["GET"],
            allow_headers=["X-API-Key"],
        )
    secured = [Depends(require_api_key)]
    app.include_router(data.router, dependencies=secured)
    app.include_router(mlops.router, dependencies=secured)
    app.include_router(models.router, dependencies=secured)
    app.include_router(stream.router)
    app.add_api_route("/health", health, methods=["GET"], response_model=Liveness, tags=["health"])
    return app


async def health(services: ServicesDep) -> Liveness:
    """Liveness: the process answers; says whether feature data is loaded (no key needed)."""
    snapshot = services.store.features.get()
    return Liveness(
        status="ok",
        features_loaded=snapshot is not None,
        tickers=len(snapshot.spans) if snapshot else 0,
        last_date=snapshot.last_date if snapshot else None,
    )


app = create_app()
