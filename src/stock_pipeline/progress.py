"""Progress of many concurrent tasks: a rich bar on a terminal, plain log lines otherwise."""

import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

logger = logging.getLogger(__name__)
Item = TypeVar("Item")
Result = TypeVar("Result")


def _progress_bar(interactive: bool) -> Progress:
    """A bar with done/total, failures and rate; drawn only on a terminal."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed {task.fields[failed]}"),
        TextColumn("{task.fields[rate]}/s"),
        TimeElapsedColumn(),
        transient=True,
        disable=not interactive,
    )


def run_concurrently(
    work: Callable[[Item], Result],
    items: Iterable[Item],
    max_workers: int,
    failed: Callable[[Result], bool],
    description: str,
) -> Iterator[tuple[Item, Result]]:
    """Run `work` on every item, at most max_workers in flight; yield (item, result) as each finishes."""
    items = list(items)
    interactive = sys.stderr.isatty()
    step = max(1, len(items) // 100)  # log lines: one per item, or per 1% of many (5,000 tickers)
    failures = 0
    with (
        ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool,
        _progress_bar(interactive) as bar,
    ):
        task = bar.add_task(description, total=len(items), failed=0, rate="-")
        futures = {pool.submit(work, item): item for item in items}
        for done, future in enumerate(as_completed(futures), start=1):
            item, result = futures[future], future.result()
            failures += failed(result)
            elapsed = bar.tasks[task].elapsed or 0.0
            rate = f"{done / elapsed:.1f}" if elapsed else "-"
            bar.update(task, advance=1, failed=failures, rate=rate)
            if not interactive and (done % step == 0 or done == len(items)):
                logger.info(
                    "%s %d/%d, %d failed: %s", description, done, len(items), failures, item
                )
            yield item, result
