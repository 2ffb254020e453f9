"""How the project's Kedro configuration is read: by `kedro run` (settings.py) and by the API."""

from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader

from stock_pipeline.db import database_url

CONFIG_LOADER_ARGS: dict[str, Any] = {
    "base_env": "base",
    "default_run_env": "local",
    "merge_strategy": {"parameters": "soft"},
    "custom_resolvers": {"db_url": database_url},
}


def config_loader(project_root: Path, env: str) -> OmegaConfigLoader:
    """The loader `kedro run --env=<env>` uses, for the project at project_root."""
    return OmegaConfigLoader(conf_source=str(project_root / "conf"), env=env, **CONFIG_LOADER_ARGS)
