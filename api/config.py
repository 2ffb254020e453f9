"""What the API reads, found through the pipeline's own Kedro configuration."""

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader

from stock_pipeline.configuration import config_loader, configure_calendar
from stock_pipeline.db import database_url, resolve_db_url

logger = logging.getLogger(__name__)

PROJECT_ROOT_ENV = "STOCK_PIPELINE_PROJECT_ROOT"
API_KEY_ENV = "STOCK_PIPELINE_API_KEY"
DEFAULT_ENV = "local"

# The catalog entries whose files the API serves.
CATALOG_FILES = (
    "features",
    "quality_report",
    "drift_results",
    "drift_recommendations",
    "model_summary",
    "model_predictions",
)


class ApiConfigError(RuntimeError):
    """The project's configuration does not say where a file the API serves is."""


@dataclass(frozen=True)
class ApiConfig:
    """Everything the app needs to know about the project it serves."""

    project_root: Path
    env: str
    files: dict[str, Path]
    db_url: str
    api_key: str | None
    max_staleness_hours: float = 36.0
    reload_interval_seconds: float = 2.0
    cors_origins: tuple[str, ...] = ()
    metrics_default_runs: int = 20


def default_project_root() -> Path:
    """STOCK_PIPELINE_PROJECT_ROOT when set, else the folder that holds api/."""
    override = os.environ.get(PROJECT_ROOT_ENV)
    return Path(override).resolve() if override else Path(__file__).resolve().parents[1]


def _config_section(loader: OmegaConfigLoader, key: str) -> dict[str, Any]:
    """One config section (catalog, parameters), empty when the environment has none."""
    try:
        return dict(loader[key])
    except Exception as error:  # a missing env folder or a broken file must not stop the API
        logger.warning("Could not read %s configuration: %s", key, type(error).__name__)
        return {}


def _catalog_path(catalog: dict[str, Any], name: str, root: Path) -> Path:
    """The local file of a catalog entry, under root."""
    entry = catalog.get(name)
    if isinstance(entry, dict) and isinstance(entry.get("dataset"), dict):
        entry = entry["dataset"]  # a wrapping dataset, such as SkipEmptyDataset
    filepath = entry.get("filepath") if isinstance(entry, dict) else None
    if not isinstance(filepath, str) or "://" in filepath:
        raise ApiConfigError(f"catalog entry {name!r} names no local file: {entry!r}")
    path = Path(filepath)
    return path if path.is_absolute() else root / path


def load_config(project_root: Path | None = None, env: str | None = None) -> ApiConfig:
    """Read catalog paths and `api` parameters for the environment KEDRO_ENV (default local)."""
    root = (project_root or default_project_root()).resolve()
    chosen_env = env or os.environ.get("KEDRO_ENV") or DEFAULT_ENV
    loader = config_loader(root, chosen_env)
    catalog = _config_section(loader, "catalog")
    api_params = _config_section(loader, "parameters").get("api") or {}
    configure_calendar(loader)  # freshness counts the special sessions the pipeline knows
    files = {name: _catalog_path(catalog, name, root) for name in CATALOG_FILES}
    return ApiConfig(
        project_root=root,
        env=chosen_env,
        files=files,
        db_url=resolve_db_url(database_url(), root),
        api_key=os.environ.get(API_KEY_ENV) or None,
        max_staleness_hours=float(api_params.get("max_staleness_hours", 36.0)),
        reload_interval_seconds=float(api_params.get("reload_interval_seconds", 2.0)),
        cors_origins=tuple(api_params.get("cors_origins") or ()),
        metrics_default_runs=int(api_params.get("metrics_default_runs", 20)),
    )
