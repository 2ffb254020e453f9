"""A Kedro dataset that upserts a DataFrame into a SQL table on its key (PostgreSQL and SQLite)."""

import abc
import io
import itertools
import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from kedro.io import AbstractDataset, DatasetError
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from stock_pipeline.db import connect, create_db_engine, mask_url

logger = logging.getLogger(__name__)

COPY_BATCH_ROWS = 100_000
COPY_CHUNK_BYTES = 1 << 20
# More row layouts than this (nulls scattered at random) and the COPY goes as CSV instead.
MAX_BINARY_LAYOUTS = 256
_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_PGCOPY_TRAILER = b"\xff\xff"
_PG_EPOCH_DAYS = 10_957  # 2000-01-01, PostgreSQL's day zero, in days since 1970-01-01
_TEXT_TYPES = frozenset({"text", "character varying"})
# PostgreSQL type: (the Arrow type its values are cast to, safely; the big-endian wire format)
_FIXED_TYPES = {
    "double precision": (pa.float64(), ">f8"),
    "bigint": (pa.int64(), ">i8"),
    "integer": (pa.int32(), ">i4"),
    "smallint": (pa.int16(), ">i2"),
    "boolean": (pa.bool_(), "u1"),
    "date": (pa.date32(), ">i4"),
}


class SQLUpsertDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """Upserts rows into `table` on `keys`; rows whose values did not change are left untouched.

    Each save is one transaction: the rows go to a temporary staging table (a binary COPY built
    with numpy on PostgreSQL, CSV for column types it does not encode),
    then one INSERT ... ON CONFLICT (keys) DO UPDATE ... WHERE the stored row differs merges the
    staged rows that are new or different. Frame columns the table lacks are ignored (and logged);
    NaN is stored as NULL. The database is migrated to the latest schema on first use.

    Example catalog entry::

        stock_features_sql:
          type: stock_pipeline.datasets.SQLUpsertDataset
          table: stock_features
          keys: [ticker, date]
          url: ${db_url:}
          report_filepath: data/08_reporting/persistence/persistence_report.json
          load_args: {columns: [ticker, date, close], filters: {ticker: [INFY.NS]}}
    """

    def __init__(
        self,
        *,
        table: str,
        keys: list[str],
        url: str,
        load_args: dict[str, Any] | None = None,
        report_filepath: str | None = None,
        connect_attempts: int = 5,
        retry_wait: float = 1.0,
        metadata: dict[str, Any] | None = None,
    ):
        self._table = table
        self._keys = list(keys)
        self._url = url
        self._load_args = dict(load_args or {})
        self._report_filepath = Path(report_filepath) if report_filepath else None
        self._connect_attempts = connect_attempts
        self._retry_wait = retry_wait
        self._engine = create_db_engine(url)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"table": self._table, "keys": self._keys, "url": mask_url(self._url)}

    def _connect(self) -> Connection:
        """A connection to a database migrated to the latest schema."""
        connection = connect(self._engine, self._connect_attempts, self._retry_wait)
        return connection

    def _exists(self) -> bool:
        with self._connect() as connection:
            return sa.inspect(connection).has_table(self._table)

    def load(self) -> pd.DataFrame:
        """The table's rows ordered by key, limited to `load_args` columns and `filters` if given."""
        with self._connect() as connection:
            types = _column_types(connection, self._table)
            names = self._load_args.get("columns") or list(types)
            table = sa.table(self._table, *(sa.column(name) for name in types))
            query = sa.select(*(table.c[name] for name in names)).order_by(
                *(table.c[key] for key in self._keys)
            )
            for name, wanted in self._load_args.get("filters", {}).items():
                values = wanted if isinstance(wanted, list) else [wanted]
                query = query.where(table.c[name].in_(values))
            frame = pd.read_sql(query, connection)
        for name in frame.columns:
            if isinstance(types[name], sa.DateTime):
                frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
            elif isinstance(types[name], sa.Date):
                frame[name] = pd.to_datetime(frame[name], format="ISO8601")
        return frame

    def save(self, data: pd.DataFrame) -> None:
        """Upsert `data` in one transaction, then log (and optionally write) what changed."""
        self._check_keys(data)
        started = time.perf_counter()
        with self._connect() as connection, connection.begin():
            types = _column_types(connection, self._table)
            columns = [name for name in data.columns if name in types]
            ignored = [name for name in data.columns if name not in types]
            if ignored:
                logger.info("%s: ignoring columns the table lacks: %s", self._table, ignored)
            merge = _PostgresMerge if connection.dialect.name == "postgresql" else _SQLiteMerge
            merge_rows = merge(connection, self._table, self._keys, list(types), columns)
            inserted, updated = merge_rows.run(_to_arrow(data, columns, types))
        report = {
            "table": self._table,
            "database": mask_url(self._url),
            "rows": len(data),
            "inserted": inserted,
            "updated": updated,
            "unchanged": len(data) - inserted - updated,
            "ignored_columns": ignored,
            "seconds": round(time.perf_counter() - started, 3),
        }
        logger.info(
            "%s: %d rows upserted (%d inserted, %d updated, %d unchanged) in %.2fs",
            self._table,
            report["rows"],
            inserted,
            updated,
            report["unchanged"],
            report["seconds"],
        )
        if self._report_filepath:
            _write_json_atomically(report, self._report_filepath)

    def _check_keys(self, data: pd.DataFrame) -> None:
        """Fail before touching the database when key columns are missing, null or repeated."""
        missing = [key for key in self._keys if key not in data.columns]
        if missing:
            raise DatasetError(f"{self._table}: the rows lack key columns {missing}")
        for problem, mask in (
            ("a null key", data[self._keys].isna().any(axis=1)),
            ("a repeated key", data.duplicated(self._keys, keep=False)),
        ):
            if mask.any():
                examples = data.loc[mask, self._keys].head(3).to_dict("records")
                raise DatasetError(
                    f"{self._table}: {int(mask.sum())} rows have {problem}, e.g. {examples}"
                )


class _Merge(abc.ABC):
    """Stage rows in a temporary table, then merge the new and changed ones into the target."""

    distinct = "IS DISTINCT FROM"

    def __init__(
        self,
        connection: Connection,
        table: str,
        keys: list[str],
        table_columns: list[str],
        columns: list[str],
    ):
        quote = connection.dialect.identifier_preparer.quote
        self.connection = connection
        self.table = table
        self.table_columns = table_columns
        self.key_names = keys
        self.target = quote(table)
        self.stage = quote(f"stage_{table}")
        self.keys = [quote(key) for key in keys]
        self.columns = [quote(column) for column in columns]
        self.values = [column for column in self.columns if column not in self.keys]

    def run(self, rows: pa.Table) -> tuple[int, int]:
        """Merge `rows` (holding the written columns); returns (inserted, updated)."""
        self.create_stage()
        self.load_stage(rows)
        existing = self.connection.exec_driver_sql(
            f"SELECT count(*) FROM {self.stage} AS s JOIN {self.target} AS t ON {self.key_match}"
        ).scalar_one()
        try:
            affected = self.connection.exec_driver_sql(self.merge_sql()).rowcount
        except IntegrityError as error:
            raise DatasetError(self.rejection(error)) from None
        inserted = rows.num_rows - existing
        return inserted, affected - inserted

    @property
    def key_match(self) -> str:
        return " AND ".join(f"s.{key} = t.{key}" for key in self.keys)

    def differs(self, left: str, right: str) -> str:
        """SQL true when the value columns of the two row aliases differ (NULL-safe)."""
        return (
            f"({', '.join(f'{left}.{c}' for c in self.values)}) {self.distinct} "
            f"({', '.join(f'{right}.{c}' for c in self.values)})"
        )

    def merge_sql(self, only: str = "TRUE") -> str:
        """The upsert of the staged rows that are new or differ from the stored ones."""
        columns = ", ".join(self.columns)
        changed = f" OR {self.differs('t', 's')}" if self.values else ""
        on_conflict = "DO NOTHING"
        if self.values:
            assignments = ", ".join(f"{c} = excluded.{c}" for c in self.values)
            on_conflict = (
                f"DO UPDATE SET {assignments} WHERE {self.differs(self.target, 'excluded')}"
            )
        return (
            f"INSERT INTO {self.target} ({columns}) "
            f"SELECT {', '.join(f's.{c}' for c in self.columns)} "
            f"FROM {self.stage} AS s LEFT JOIN {self.target} AS t ON {self.key_match} "
            f"WHERE ({only}) AND (t.{self.keys[0]} IS NULL"
            f"{changed}) "
            f"ORDER BY {', '.join(f's.{key}' for key in self.keys)} "
            f"ON CONFLICT ({', '.join(self.keys)}) {on_conflict}"
        )

    def describe_key(self, values: Sequence[Any]) -> str:
        """`ticker=INFY.NS, date=2024-01-02` for the key values of one row."""
        return ", ".join(f"{n}={v}" for n, v in zip(self.key_names, values, strict=True))

    @abc.abstractmethod
    def create_stage(self) -> None:
        """Create the empty staging table with the written columns."""

    @abc.abstractmethod
    def load_stage(self, rows: pa.Table) -> None:
        """Bulk-load the rows into the staging table."""

    @abc.abstractmethod
    def rejection(self, error: IntegrityError) -> str:
        """The message for a row the database rejected: its key and the constraint."""


class _PostgresMerge(_Merge):
    """Binary COPY into an ON COMMIT DROP staging table; saves to one table queue on a lock."""

    def create_stage(self) -> None:
        self.connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.' || :table))"),
            {"table": self.table},
        )
        self.connection.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {self.stage} ON COMMIT DROP AS "
            f"SELECT {', '.join(self.columns)} FROM {self.target} WITH NO DATA"
        )

    def load_stage(self, rows: pa.Table) -> None:
        """COPY in PostgreSQL's binary format (CSV when a column type has no binary encoder)."""
        types = self.stage_types()
        with self.connection.connection.cursor() as cursor:
            for batch in rows.to_batches(max_chunksize=COPY_BATCH_ROWS):
                payload = _binary_copy(batch, types)
                options = "FORMAT binary"
                if payload is None:
                    payload = _csv_copy(batch)
                    options = "FORMAT csv"
                copy = f"COPY {self.stage} ({', '.join(self.columns)}) FROM STDIN WITH ({options})"
                cursor.copy_expert(copy, io.BytesIO(payload), size=COPY_CHUNK_BYTES)
        self.connection.exec_driver_sql(f"ANALYZE {self.stage}")

    def stage_types(self) -> list[str]:
        """The staging table's column types as PostgreSQL names them (`double precision`, ...)."""
        return list(
            self.connection.exec_driver_sql(
                "SELECT atttypid::regtype::text FROM pg_attribute "
                "WHERE attrelid = %(stage)s::regclass AND attnum > 0 AND NOT attisdropped "
                "ORDER BY attnum",
                {"stage": self.stage},
            ).scalars()
        )

    def rejection(self, error: IntegrityError) -> str:
        """The key of the rejected row (from the server's 'Failing row contains') and the constraint."""
        diag = error.orig.diag
        detail = diag.message_detail or ""
        row = ""
        if detail.startswith("Failing row contains (") and detail.endswith(")."):
            values = detail[len("Failing row contains (") : -2].split(", ")
            if len(values) == len(self.table_columns):
                stored = dict(zip(self.table_columns, values, strict=True))
                row = " " + self.describe_key([stored[key] for key in self.key_names])
        return (
            f"{self.table}: the database rejected the row{row}: it violates constraint "
            f"{diag.constraint_name or diag.column_name!r} ({diag.message_primary}; {detail})"
        )


class _SQLiteMerge(_Merge):
    """executemany into a temporary staging table, dropped before the transaction commits."""

    distinct = "IS NOT"

    def create_stage(self) -> None:
        self.connection.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {self.stage} AS "
            f"SELECT {', '.join(self.columns)} FROM {self.target} WHERE 0"
        )

    def load_stage(self, rows: pa.Table) -> None:
        text_dates = [
            column.cast(pa.string()) if pa.types.is_date(column.type) else column
            for column in rows.columns
        ]
        values = list(zip(*(column.to_pylist() for column in text_dates), strict=True))
        placeholders = ", ".join("?" for _ in self.columns)
        if values:
            self.connection.exec_driver_sql(
                f"INSERT INTO {self.stage} ({', '.join(self.columns)}) VALUES ({placeholders})",
                values,
            )

    def run(self, rows: pa.Table) -> tuple[int, int]:
        counts = super().run(rows)
        self.connection.exec_driver_sql(f"DROP TABLE {self.stage}")
        return counts

    def rejection(self, error: IntegrityError) -> str:
        """SQLite names the constraint but not the row: find it by merging staged rows one by one."""
        rowids = self.connection.exec_driver_sql(
            f"SELECT rowid FROM {self.stage} ORDER BY {', '.join(self.keys)}"
        ).scalars()
        for rowid in rowids:
            try:
                self.connection.exec_driver_sql(self.merge_sql(only=f"s.rowid = {int(rowid)}"))
            except IntegrityError:
                key = self.connection.exec_driver_sql(
                    f"SELECT {', '.join(self.keys)} FROM {self.stage} WHERE rowid = {int(rowid)}"
                ).one()
                return (
                    f"{self.table}: the database rejected the row {self.describe_key(key)}: "
                    f"{error.orig}"
                )
        return f"{self.table}: the database rejected a row: {error.orig}"


def _column_types(connection: Connection, table: str) -> dict[str, sa.types.TypeEngine]:
    """The table's columns in order with their SQL types; a clear error when the table is absent."""
    columns = sa.inspect(connection).get_columns(table)
    if not columns:
        raise DatasetError(f"Table {table!r} does not exist in the database")
    return {column["name"]: column["type"] for column in columns}


def _to_arrow(data: pd.DataFrame, columns: list[str], types: dict[str, Any]) -> pa.Table:
    """The frame's table columns as Arrow (NaN as null), DATE columns as calendar dates."""
    rows = pa.Table.from_pandas(data[columns], preserve_index=False)
    for index, name in enumerate(columns):
        if isinstance(types[name], sa.Date) and not pa.types.is_date(rows.column(index).type):
            rows = rows.set_column(index, name, rows.column(index).cast(pa.date32(), safe=False))
    return rows.replace_schema_metadata(None)


def _csv_copy(batch: pa.RecordBatch) -> bytes:
    """The rows as headerless CSV for COPY (FORMAT csv); nulls as empty fields."""
    buffer = io.BytesIO()
    pa_csv.write_csv(batch, buffer, pa_csv.WriteOptions(include_header=False))
    return buffer.getvalue()


def _binary_copy(batch: pa.RecordBatch, types: list[str]) -> bytes | None:
    """The rows in COPY's binary format, or None when a column has no exact binary encoding.

    A binary COPY row is a field count, then each field as a length (-1 for null) and its bytes,
    so a row's layout depends on which fields are null and how long its strings are. Rows are
    grouped by layout (a handful of groups: warm-up nulls, ticker lengths) and every group is
    laid out at once as a numpy structured array. Row order changes, which a staging table
    does not mind.
    """
    try:
        fields = [
            _BinaryField.of(column, pg_type)
            for column, pg_type in zip(batch.columns, types, strict=True)
        ]
    except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if batch.num_rows == 0:
        return _PGCOPY_HEADER + _PGCOPY_TRAILER
    nulls = np.packbits(np.column_stack([field.valid for field in fields]), axis=1)
    lengths = [field.lengths for field in fields if field.lengths is not None]
    group, layouts = _group_codes([*nulls.T, *lengths])
    if layouts > MAX_BINARY_LAYOUTS:
        return None
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(layouts + 1))
    chunks = [_PGCOPY_HEADER]
    for start, stop in itertools.pairwise(bounds):
        rows = order[start:stop]
        layout = [("count", ">i2")]
        for index, field in enumerate(fields):
            layout += field.layout(index, rows[0])
        record = np.empty(len(rows), dtype=layout)
        record["count"] = len(fields)
        for index, field in enumerate(fields):
            field.fill(record, index, rows)
        chunks.append(record.tobytes())
    chunks.append(_PGCOPY_TRAILER)
    return b"".join(chunks)


def _group_codes(keys: list[np.ndarray]) -> tuple[np.ndarray, int]:
    """A group number per row for the distinct combinations of the key arrays, and their count."""
    group = np.zeros(len(keys[0]), dtype=np.int64)
    count = 1
    for key in keys:
        values, codes = np.unique(key, return_inverse=True)
        combined, group = np.unique(group * len(values) + codes.reshape(-1), return_inverse=True)
        group, count = group.reshape(-1), len(combined)
    return group, count


@dataclass(frozen=True)
class _BinaryField:
    """One column in PostgreSQL's binary wire format.

    Fixed-width types keep big-endian values; text keeps each row's start and length in
    the column's UTF-8 bytes.
    """

    valid: np.ndarray
    values: np.ndarray
    lengths: np.ndarray | None = None
    data: np.ndarray | None = None

    @classmethod
    def of(cls, column: pa.Array, pg_type: str) -> "_BinaryField":
        """Encode an Arrow column for a PostgreSQL type; KeyError for a type not handled here."""
        if pg_type in _TEXT_TYPES:
            strings = column.cast(pa.large_string())
            valid = strings.is_valid().to_numpy(zero_copy_only=False)
            _, offsets, data = strings.buffers()
            starts = np.frombuffer(offsets, dtype=np.int64)[
                strings.offset : strings.offset + len(strings) + 1
            ]
            data = np.frombuffer(data, dtype=np.uint8) if data else np.empty(0, dtype=np.uint8)
            lengths = np.where(valid, np.diff(starts), 0)
            return cls(valid, starts[:-1], lengths, data)
        arrow_type, wire = _FIXED_TYPES[pg_type]
        typed = column.cast(arrow_type)
        valid = typed.is_valid().to_numpy(zero_copy_only=False)
        if pa.types.is_date32(arrow_type):
            values = typed.cast(pa.int32()).fill_null(0).to_numpy() - _PG_EPOCH_DAYS
        else:
            fill = False if pa.types.is_boolean(arrow_type) else 0
            values = typed.fill_null(fill).to_numpy(zero_copy_only=False)
        return cls(valid, values.astype(wire))

    def layout(self, index: int, row: int) -> list[tuple[Any, ...]]:
        """The structured-array fields of this column for rows laid out like `row`."""
        parts: list[tuple[Any, ...]] = [(f"length_{index}", ">i4")]
        if not self.valid[row]:
            return parts
        if self.lengths is None:
            return [*parts, (f"value_{index}", self.values.dtype)]
        width = int(self.lengths[row])
        return [*parts, (f"value_{index}", np.uint8, (width,))] if width else parts

    def fill(self, record: np.ndarray, index: int, rows: np.ndarray) -> None:
        """Write the length and value of this column for `rows`, which share one layout."""
        if not self.valid[rows[0]]:
            record[f"length_{index}"] = -1
        elif self.lengths is None:
            record[f"length_{index}"] = self.values.dtype.itemsize
            record[f"value_{index}"] = self.values[rows]
        elif width := int(self.lengths[rows[0]]):
            record[f"length_{index}"] = width
            record[f"value_{index}"] = self.data[self.values[rows][:, None] + np.arange(width)]
        else:
            record[f"length_{index}"] = 0


def _write_json_atomically(content: dict[str, Any], path: Path) -> None:
    """Write JSON to a temporary file next to `path` (a normal file's mode), then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            json.dump(content, handle, indent=2)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
