"""`python -m stock_pipeline.api.openapi <file>`: write the API's OpenAPI document (the docs site
publishes it; a test keeps the committed copy equal to the app's)."""

import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from stock_pipeline.api.config import load_config
from stock_pipeline.api.main import create_app

# the committed environment whose document is published (conf/local is each user's own)
PUBLISHED_ENV = "sample"


def openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document as the project ships it: before any data and without keys (a
    deployment's own narrows the column names to its table's, and declares its key)."""
    config = load_config(env=PUBLISHED_ENV)
    with tempfile.TemporaryDirectory() as empty:
        files = {name: Path(empty) / path.name for name, path in config.files.items()}
        return create_app(replace(config, files=files, api_keys={})).openapi()


def main(argv: list[str] | None = None) -> None:
    """Write the document, indented, to the file named on the command line."""
    (target,) = argv if argv is not None else sys.argv[1:]
    Path(target).write_text(json.dumps(openapi_document(), indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
