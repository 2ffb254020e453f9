"""Bulk downloads: streamed CSV, Parquet and Arrow IPC bodies, and opaque JSON page cursors."""

import base64
import binascii
import io
import json
from collections.abc import Callable, Iterator
from enum import StrEnum

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,200}$"


class BulkFormat(StrEnum):
    """What GET /features answers with."""

    JSON = "json"
    CSV = "csv"
    PARQUET = "parquet"
    ARROW = "arrow"


MEDIA_TYPES = {
    BulkFormat.JSON: "application/json",
    BulkFormat.CSV: "text/csv; charset=utf-8",
    BulkFormat.PARQUET: "application/vnd.apache.parquet",
    BulkFormat.ARROW: "application/vnd.apache.arrow.stream",
}


class _Drain(io.RawIOBase):
    """A write-only file that hands over what was written since the last take().

    It counts every byte ever written, so a Parquet writer's offsets stay right.
    """

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        """Writers check this."""
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        """Keep a copy of the bytes until the next take()."""
        self._parts.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        """Bytes written so far, taken or not."""
        return self._position

    def take(self) -> bytes:
        """What was written since the last call."""
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _csv_ready(table: pa.Table) -> pa.Table:
    """Timestamps at midnight written as plain dates (2026-11-27), like the JSON endpoints."""
    date = table.schema.field("date")
    if pa.types.is_timestamp(date.type):
        index = table.schema.get_field_index("date")
        table = table.set_column(index, "date", table.column("date").cast(pa.date32()))
    return table


def _stream(
    tables: Iterator[pa.Table],
    open_writer: Callable[[pa.NativeFile], object],
    prepare: Callable[[pa.Table], pa.Table],
) -> Iterator[bytes]:
    """Write each table with the writer and yield the bytes as they are produced."""
    drain = _Drain()
    writer = open_writer(pa.PythonFile(drain, mode="w"))
    for table in tables:
        writer.write_table(prepare(table))
        if chunk := drain.take():
            yield chunk
    writer.close()
    if tail := drain.take():
        yield tail


def encode(tables: Iterator[pa.Table], schema: pa.Schema, chosen: BulkFormat) -> Iterator[bytes]:
    """The tables as one CSV, Parquet or Arrow IPC stream body, chunk by chunk."""
    if chosen == BulkFormat.CSV:
        csv_schema = _csv_ready(schema.empty_table()).schema
        return _stream(tables, lambda sink: pa_csv.CSVWriter(sink, csv_schema), _csv_ready)
    if chosen == BulkFormat.PARQUET:
        return _stream(tables, lambda sink: pq.ParquetWriter(sink, schema), lambda t: t)
    return _stream(tables, lambda sink: pa.ipc.new_stream(sink, schema), lambda t: t)


def encode_cursor(version: str, row: int) -> str:
    """An opaque cursor: the version and the row of the sorted dataset where the page starts."""
    return base64.urlsafe_b64encode(json.dumps([version, row]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int] | None:
    """The version and row of a cursor; None when it is not one this API wrote."""
    try:
        version, row = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, TypeError):
        return None
    if not isinstance(version, str) or not isinstance(row, int) or row < 0:
        return None
    return version, row
