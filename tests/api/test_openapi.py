"""The OpenAPI document the docs site publishes is the app's own."""

import json
from pathlib import Path

from stock_pipeline.api.openapi import main, openapi_document

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_published_document_is_the_apps(tmp_path: Path) -> None:
    written = tmp_path / "openapi.json"
    main([str(written)])
    assert json.loads(written.read_text()) == openapi_document()
    assert json.loads(PUBLISHED.read_text()) == openapi_document(), (
        "docs/openapi.json is stale: run `make docs`"
    )
