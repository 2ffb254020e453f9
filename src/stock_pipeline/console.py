"""What the console shows a person: the project's own lines (one per node, with rows and time)
and every warning; Kedro's load-and-save INFO lines only with STOCK_PIPELINE_VERBOSE=1. The log
file (logs/pipeline.log) always has everything."""

import logging
import os

VERBOSE_ENV = "STOCK_PIPELINE_VERBOSE"
PROJECT_LOGGERS = frozenset({"stock_pipeline", "api"})


class ConsoleFilter(logging.Filter):
    """Pass warnings and the project's own records; everything when verbose."""

    def filter(self, record: logging.LogRecord) -> bool:
        """True when the console should show the record."""
        if os.environ.get(VERBOSE_ENV, "").lower() in {"1", "true", "yes"}:
            return True
        return record.levelno >= logging.WARNING or record.name.split(".")[0] in PROJECT_LOGGERS
