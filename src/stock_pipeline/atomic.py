"""The one way files are written: next to the target, then renamed over it, so a killed run
leaves the previous file whole and never a half-written one."""

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A fresh hidden temporary path next to `path` (same suffix, mode 644) that replaces `path`
    when the block ends without error, and is deleted when it does not."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}"
    )
    os.fchmod(handle, 0o644)
    os.close(handle)
    try:
        yield Path(temporary)
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)


def write_text_atomically(text: str, path: Path | str) -> None:
    """Write UTF-8 text atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_json_atomically(content: Any, path: Path | str) -> None:
    """Write JSON (indented; dates and other objects as text) atomically."""
    write_text_atomically(json.dumps(content, indent=2, default=str), path)
