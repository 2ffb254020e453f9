"""Project settings: config loader and hooks."""

from kedro.config import OmegaConfigLoader

from stock_pipeline import configuration
from stock_pipeline.hooks import CalendarHooks, DatabaseHooks, RunContextHooks, RunRecordHooks

# A `running` run record whose process is gone is abandoned by the next run; one from another host
# (whose process cannot be checked) once it is older than abandon_after_hours.
HOOKS = (
    CalendarHooks(),
    RunContextHooks(),
    DatabaseHooks(),
    RunRecordHooks(abandon_after_hours=24),
)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = configuration.CONFIG_LOADER_ARGS
