"""How the project's Kedro configuration is read: by `kedro run` (settings.py) and by the API."""

import warnings
from pathlib import Path
from typing import Any

from kedro.config import MissingConfigException, OmegaConfigLoader

from stock_pipeline import trading_calendar
from stock_pipeline.db import database_url

# Kedro 1.7 calls OmegaConf's deprecated register_new_resolver on every config load: a warning per
# resolver and load that a person can do nothing about
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated")

CONFIG_LOADER_ARGS: dict[str, Any] = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {
        # NSE special sessions and late holidays: conf/base/calendar.yml, merged day by day
        "calendar": ["calendar*", "calendar*/**", "**/calendar*"],
        # alert targets and events: conf/base/notifications.yml, overridden in conf/local/
        "notifications": ["notifications*", "notifications*/**"],
    },
    "merge_strategy": {"parameters": "soft", "calendar": "soft"},
    "custom_resolvers": {"db_url": database_url},
}


def config_loader(project_root: Path, env: str) -> OmegaConfigLoader:
    """The loader `kedro run --env=<env>` uses, for the project at project_root."""
    return OmegaConfigLoader(conf_source=str(project_root / "conf"), env=env, **CONFIG_LOADER_ARGS)


def configure_calendar(loader: OmegaConfigLoader) -> None:
    """Merge the environment's calendar.yml into the NSE calendar; none keeps the project's base file."""
    try:
        calendar = dict(loader["calendar"])
    except MissingConfigException:  # no calendar.yml in this project
        calendar = {}
    if calendar:
        trading_calendar.configure(calendar)
