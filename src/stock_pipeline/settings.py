"""Project settings: config loader, hooks and the resolvers the catalog uses."""

from kedro.config import OmegaConfigLoader

from stock_pipeline.db import database_url
from stock_pipeline.hooks import RunContextHooks
from stock_pipeline.run_records import RunRecordHooks

HOOKS = (RunContextHooks(), RunRecordHooks())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "merge_strategy": {"parameters": "soft"},
    "custom_resolvers": {"db_url": database_url},
}
