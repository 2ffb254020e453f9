"""What the API reads, found through the pipeline's own Kedro configuration."""

import hashlib
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kedro.config import MissingConfigException, OmegaConfigLoader

from stock_pipeline.configuration import config_loader, configure_calendar
from stock_pipeline.db import database_url, resolve_db_url

logger = logging.getLogger(__name__)

PROJECT_ROOT_ENV = "STOCK_PIPELINE_PROJECT_ROOT"
API_KEY_ENV = "STOCK_PIPELINE_API_KEY"  # one key, named DEFAULT_KEY_NAME
API_KEYS_ENV = "STOCK_PIPELINE_API_KEYS"  # several: name1:key1,name2:key2
DEFAULT_KEY_NAME = "default"
KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # names go into log lines
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
class RateLimit:
    """Requests per second each client may send on average, after a burst; off without a rate."""

    requests_per_second: float | None = None
    burst: int = 20
    per_key: dict[str, float] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        """True when any client is limited."""
        return self.requests_per_second is not None or bool(self.per_key)

    def rate_for(self, client: str) -> float | None:
        """The rate of one client (a key's name or an address); None: unlimited."""
        return self.per_key.get(client, self.requests_per_second)


@dataclass(frozen=True)
class ApiConfig:
    """Everything the app needs to know about the project it serves."""

    project_root: Path
    env: str
    files: dict[str, Path]
    catalog_entries: dict[str, dict[str, Any]]  # the entries of CATALOG_FILES, paths made absolute
    db_url: str
    # name -> SHA-256 of the key: the keys themselves are not kept, so no repr or log can show one
    api_keys: dict[str, bytes] = field(default_factory=dict)
    rate_limit: RateLimit = field(default_factory=RateLimit)
    max_staleness_hours: float = 36.0
    reload_interval_seconds: float = 2.0
    cors_origins: tuple[str, ...] = ()
    metrics_default_runs: int = 20
    bulk_batch_rows: int = 65536


def default_project_root() -> Path:
    """STOCK_PIPELINE_PROJECT_ROOT when set, else the working folder: the checkout, or for an
    installed package the folder that holds `conf/` and `data/` (as for `kedro run`)."""
    return Path(os.environ.get(PROJECT_ROOT_ENV) or Path.cwd()).resolve()


def _config_section(loader: OmegaConfigLoader, key: str) -> dict[str, Any]:
    """One config section (catalog, parameters), empty when the environment has none."""
    try:
        return dict(loader[key])
    except Exception as error:  # a missing env folder or a broken file must not stop the API
        logger.warning("Could not read %s configuration: %s", key, type(error).__name__)
        return {}


def _credentials(loader: OmegaConfigLoader) -> dict[str, Any]:
    """The credentials, empty when there are none; a broken file stops the API rather than open it."""
    try:
        return dict(loader["credentials"])
    except MissingConfigException:
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


def key_digest(key: str) -> bytes:
    """The SHA-256 of a key: what is kept and compared."""
    return hashlib.sha256(key.encode()).digest()


def _parse_keys_env(value: str) -> dict[str, str]:
    """name1:key1,name2:key2 as a mapping (a key may itself contain colons)."""
    pairs = [item.strip().split(":", 1) for item in value.split(",") if item.strip()]
    if any(len(pair) != 2 for pair in pairs):
        raise ApiConfigError(f"{API_KEYS_ENV} must read name1:key1,name2:key2")
    return dict(pairs)


def api_keys(credentials: Mapping[str, Any]) -> dict[str, bytes]:
    """Named keys from credentials `api_keys`, then STOCK_PIPELINE_API_KEYS, then
    STOCK_PIPELINE_API_KEY (named "default"); a later source wins for the same name."""
    configured = credentials.get("api_keys") or {}
    if not isinstance(configured, Mapping):
        raise ApiConfigError("credentials api_keys must map names to keys")
    keys = {str(name): str(key) for name, key in configured.items()}
    keys |= _parse_keys_env(os.environ.get(API_KEYS_ENV, ""))
    if os.environ.get(API_KEY_ENV):
        keys[DEFAULT_KEY_NAME] = os.environ[API_KEY_ENV]
    for name, key in keys.items():
        if not KEY_NAME.match(name) or not key:
            raise ApiConfigError(
                f"API key names are letters, digits, _ . -, keys non-empty: {name!r}"
            )
    return {name: key_digest(key) for name, key in keys.items()}


def rate_limit(params: Mapping[str, Any]) -> RateLimit:
    """The `api.rate_limit` parameters."""
    rate = params.get("requests_per_second")
    per_key = params.get("per_key") or {}
    limit = RateLimit(
        requests_per_second=None if rate is None else float(rate),
        burst=int(params.get("burst", 20)),
        per_key={str(name): float(value) for name, value in per_key.items()},
    )
    rates = [*limit.per_key.values(), limit.requests_per_second]
    if limit.burst < 1 or any(rate is not None and rate <= 0 for rate in rates):
        raise ApiConfigError(
            "stock_pipeline.api.rate_limit needs rates above 0 and a burst of at least 1"
        )
    return limit


def load_config(project_root: Path | None = None, env: str | None = None) -> ApiConfig:
    """Catalog paths, `api` parameters and API keys for the environment KEDRO_ENV (default local)."""
    root = (project_root or default_project_root()).resolve()
    chosen_env = env or os.environ.get("KEDRO_ENV") or DEFAULT_ENV
    loader = config_loader(root, chosen_env)
    catalog = _config_section(loader, "catalog")
    api_params = _config_section(loader, "parameters").get("api") or {}
    configure_calendar(loader)  # freshness counts the special sessions the pipeline knows
    files = {name: _catalog_path(catalog, name, root) for name in CATALOG_FILES}
    entries = {name: {**catalog[name], "filepath": str(files[name])} for name in CATALOG_FILES}
    return ApiConfig(
        project_root=root,
        env=chosen_env,
        files=files,
        catalog_entries=entries,
        db_url=resolve_db_url(database_url(), root),
        api_keys=api_keys(_credentials(loader)),
        rate_limit=rate_limit(api_params.get("rate_limit") or {}),
        max_staleness_hours=float(api_params.get("max_staleness_hours", 36.0)),
        reload_interval_seconds=float(api_params.get("reload_interval_seconds", 2.0)),
        cors_origins=tuple(api_params.get("cors_origins") or ()),
        metrics_default_runs=int(api_params.get("metrics_default_runs", 20)),
        bulk_batch_rows=int(api_params.get("bulk_batch_rows", 65536)),
    )
