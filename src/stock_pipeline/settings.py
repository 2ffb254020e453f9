"""Project settings: config loader and hooks."""

import warnings

from kedro.config import OmegaConfigLoader

from stock_pipeline import configuration
from stock_pipeline.hooks import DatabaseHooks, RunContextHooks, RunLockHooks, RunRecordHooks

HOOKS = (RunContextHooks(), RunLockHooks(), DatabaseHooks(), RunRecordHooks())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = configuration.CONFIG_LOADER_ARGS

# Kedro 1.7 calls OmegaConf's deprecated register_new_resolver on every config load: a warning per
# resolver and run that a person can do nothing about
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated")
