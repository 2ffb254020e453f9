"""Project settings: config loader and hooks."""

from kedro.config import OmegaConfigLoader

from stock_pipeline import configuration
from stock_pipeline.hooks import (
    CalendarHooks,
    DatabaseHooks,
    EngineHooks,
    NotificationHooks,
    RunContextHooks,
    RunLockHooks,
    RunRecordHooks,
)

HOOKS = (
    CalendarHooks(),
    RunContextHooks(),
    RunLockHooks(),
    DatabaseHooks(),
    RunRecordHooks(),
    NotificationHooks(),
    EngineHooks(),
)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = configuration.CONFIG_LOADER_ARGS
