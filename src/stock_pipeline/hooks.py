"""Hooks that give every run its identity."""

from datetime import UTC, datetime
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog, MemoryDataset

RUN_CONTEXT = "run_context"


def make_run_context(
    run_id: str, env: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The run's id, environment and start time (UTC, ISO 8601) that nodes stamp on what they write."""
    started = now or datetime.now(UTC)
    return {"run_id": run_id, "env": env or "local", "started_at": started.isoformat()}


class RunContextHooks:
    """Put `run_context` in the catalog so that nodes stay pure and still know their run."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], catalog: DataCatalog) -> None:
        """Register the run context as a memory dataset before any node runs."""
        run_id = run_params.get("run_id") or run_params.get("session_id") or "unknown"
        context = make_run_context(str(run_id), env=run_params.get("env"))
        catalog[RUN_CONTEXT] = MemoryDataset(context)
