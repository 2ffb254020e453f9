"""Run the project with `python -m stock_pipeline` (Kedro's entry point of a packaged project)."""

import sys
from pathlib import Path

# conf/logging.yml writes logs/pipeline.log, and Kedro configures logging as it is imported: a
# deployment folder of configuration and data gets its logs/ first, as a checkout has it
Path("logs").mkdir(exist_ok=True)

from kedro.framework.cli.utils import find_run_command  # noqa: E402
from kedro.framework.project import configure_project  # noqa: E402


def main(*args, **kwargs) -> None:
    """Run the Kedro CLI `run` command for this package."""
    package_name = Path(__file__).parent.name
    configure_project(package_name)
    run = find_run_command(package_name)
    run(*args, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
