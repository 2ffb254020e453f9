"""`python -m stock_pipeline.api.openapi <file>`: write the API's OpenAPI document (the docs site
publishes it; a test keeps the committed copy equal to the app's)."""

import json
import sys
from pathlib import Path
from typing import Any

from stock_pipeline.api.main import create_app


def openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document, as served at /openapi.json."""
    return create_app().openapi()


def main(argv: list[str] | None = None) -> None:
    """Write the document, indented, to the file named on the command line."""
    (target,) = argv if argv is not None else sys.argv[1:]
    Path(target).write_text(json.dumps(openapi_document(), indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
