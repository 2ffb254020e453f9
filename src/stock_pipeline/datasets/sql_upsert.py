"""A Kedro dataset that upserts a DataFrame into a SQL table on its key (PostgreSQL and SQLite)."""

import abc
import io
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from kedro.io import AbstractDataset, DatasetError
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from stock_pipeline.atomic import write_json_atomically
from stock_pipeline.contract import TABLE_RECIPES
from stock_pipeline.db import add_float_columns, connect, create_db_engine, mask_url
from stock_pipeline.recipes import Recipe

logger = logging.getLogger(__name__)

COPY_BATCH_ROWS = 100_000
COPY_CHUNK_BYTES = 1 << 20


class SQLUpsertDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """Upserts rows into `table` on `keys`; rows whose values did not change are left untouched.

    Each save is one transaction: the rows go to a temporary staging table (a CSV COPY on
    PostgreSQL), then one INSERT ... ON CONFLICT (keys) DO UPDATE ... WHERE the stored row differs
    merges the staged rows that are new or different. A frame column the table lacks is an error,
    never a silent drop, unless `add_columns` (the feature tables: a newly configured indicator's
    column is added, DOUBLE PRECISION); NaN is stored as NULL. A frame whose `attrs["recipe"]`
    names a recipe (stock_pipeline.recipes) records it in `table_recipes`; when it differs from
    the stored one the frame is the whole table: the float columns it lacks (indicators no longer
    configured) are emptied and the stored rows it lacks are deleted. Tables are created by the migrations (`make db-upgrade`,
    and every run's hook).

    Example catalog entry::

        stock_features_sql:
          type: stock_pipeline.datasets.SQLUpsertDataset
          table: stock_features
          keys: [ticker, date]
          url: ${db_url:}
          report_filepath: data/08_reporting/persistence/persistence_report.json
          add_columns: true
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
        add_columns: bool = False,
        connect_attempts: int = 5,
        retry_wait: float = 1.0,
        metadata: dict[str, Any] | None = None,
    ):
        self._table = table
        self._keys = list(keys)
        self._url = url
        self._load_args = dict(load_args or {})
        self._report_filepath = Path(report_filepath) if report_filepath else None
        self._add_columns = add_columns
        self.saved_recipe: Recipe | None = None  # the recipe of the last save (the run record's)
        self._connect_attempts = connect_attempts
        self._retry_wait = retry_wait
        self._engine = create_db_engine(url)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"table": self._table, "keys": self._keys, "url": mask_url(self._url)}

    def _connect(self) -> Connection:
        """A connection, retried while the database is starting or briefly unreachable."""
        return connect(self._engine, self._connect_attempts, self._retry_wait)

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
        recipe = Recipe.from_json(data.attrs.get("recipe"))
        with self._connect() as connection, connection.begin():
            if connection.dialect.name == "postgresql":  # saves to one table queue here
                connection.execute(
                    sa.text(
                        "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.' || :table))"
                    ),
                    {"table": self._table},
                )
            types = _column_types(connection, self._table)
            lacking = [name for name in data.columns if name not in types]
            if lacking and self._add_columns:
                add_float_columns(connection, self._table, lacking)
                types, lacking = _column_types(connection, self._table), []
            if lacking:  # never a silent drop
                raise DatasetError(f"{self._table} has no columns {lacking}")
            changed = recipe is not None and self._follow_recipe(
                connection, recipe, data.columns, types
            )
            columns = list(data.columns)
            merge = _PostgresMerge if connection.dialect.name == "postgresql" else _SQLiteMerge
            merge_rows = merge(connection, self._table, self._keys, list(types), columns)
            inserted, updated = merge_rows.run(_to_arrow(data, columns, types), replace=changed)
        self.saved_recipe = recipe
        report = {
            "table": self._table,
            "database": mask_url(self._url),
            "rows": len(data),
            "inserted": inserted,
            "updated": updated,
            "unchanged": len(data) - inserted - updated,
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
            write_json_atomically(report, self._report_filepath)

    def _follow_recipe(
        self,
        connection: Connection,
        recipe: Recipe,
        columns: pd.Index,
        types: dict[str, sa.types.TypeEngine],
    ) -> bool:
        """Record `recipe` as the table's; whether it replaces another (or none was recorded).
        Then the rows given are the whole table (persistence's node gives every row), so the
        float columns they lack (indicators no longer configured) are emptied, and the stored
        rows they lack are deleted by the merge: no stale value remains."""
        stored = _stored_recipe(connection, self._table)
        if stored is not None and Recipe.from_json(stored).fingerprint == recipe.fingerprint:
            return False
        dropped = [
            name
            for name, kind in types.items()
            if name not in columns and isinstance(kind, sa.Float | sa.Numeric)
        ]
        if dropped:
            quote = connection.dialect.identifier_preparer.quote
            assignments = ", ".join(f"{quote(name)} = NULL" for name in dropped)
            connection.exec_driver_sql(f"UPDATE {quote(self._table)} SET {assignments}")
            logger.info("%s: columns no longer configured emptied: %s", self._table, dropped)
        values = {
            "fingerprint": recipe.fingerprint,
            "recipe": recipe.to_json(),
            "updated_at": pd.Timestamp.now(tz="UTC").to_pydatetime(),
        }
        if stored is None:
            connection.execute(TABLE_RECIPES.insert().values(table_name=self._table, **values))
        else:
            connection.execute(
                TABLE_RECIPES.update()
                .where(TABLE_RECIPES.c.table_name == self._table)
                .values(**values)
            )
        return True

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


class TableRecipeDataset(AbstractDataset[None, Recipe | None]):
    """The recipe a SQL table was last written under (`table_recipes`), None before its first
    save with one: what persistence compares the configured recipe with. Read-only: a save of
    the table itself (SQLUpsertDataset) records it."""

    def __init__(self, *, table: str, url: str, metadata: dict[str, Any] | None = None):
        self._table = table
        self._url = url
        self._engine = create_db_engine(url)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"table": self._table, "url": mask_url(self._url)}

    def load(self) -> Recipe | None:
        """The stored recipe (None when none is, or when the database lacks `table_recipes`)."""
        with connect(self._engine) as connection:
            if not sa.inspect(connection).has_table(TABLE_RECIPES.name):
                return None
            return Recipe.from_json(_stored_recipe(connection, self._table))

    def save(self, data: None) -> None:
        """Recipes are recorded by saving the table itself."""
        raise DatasetError(f"{self._table}: its recipe is read-only")


def _stored_recipe(connection: Connection, table: str) -> str | None:
    """The recipe `table` was last written under, as `table_recipes` holds it (None: none)."""
    return connection.execute(
        sa.select(TABLE_RECIPES.c.recipe).where(TABLE_RECIPES.c.table_name == table)
    ).scalar_one_or_none()


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
        self.key_names = keys
        self.target = quote(table)
        self.stage = quote(f"stage_{table}")
        self.keys = [quote(key) for key in keys]
        self.columns = [quote(column) for column in columns]
        self.table_columns = [quote(column) for column in table_columns]
        self.values = [column for column in self.columns if column not in self.keys]

    def run(self, rows: pa.Table, replace: bool = False) -> tuple[int, int]:
        """Merge `rows` (holding the written columns); with `replace`, delete the stored rows whose
        key they lack (the rows are the whole table); returns (inserted, updated)."""
        self.create_stage()
        self.load_stage(rows)
        existing = self.connection.exec_driver_sql(
            f"SELECT count(*) FROM {self.stage} AS s JOIN {self.target} AS t ON {self.key_match}"
        ).scalar_one()
        try:
            # a savepoint, so the rejected row can still be looked up in the staging table
            with self.connection.begin_nested():
                affected = self.connection.exec_driver_sql(self.merge_sql()).rowcount
        except IntegrityError as error:
            raise DatasetError(self.rejection(error)) from None
        if replace:
            deleted = self.connection.exec_driver_sql(self.delete_missing_sql()).rowcount
            if deleted:
                logger.info("%s: %d rows no longer in the data deleted", self.table, deleted)
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

    def delete_missing_sql(self) -> str:
        """The deletion of the stored rows whose key the staged rows lack (an anti-join)."""
        return (
            f"DELETE FROM {self.target} AS t WHERE NOT EXISTS "
            f"(SELECT 1 FROM {self.stage} AS s WHERE {self.key_match})"
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
    """CSV COPY into an ON COMMIT DROP staging table (the save holds the table's lock)."""

    def create_stage(self) -> None:
        self.connection.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {self.stage} ON COMMIT DROP AS "
            f"SELECT {', '.join(self.columns)} FROM {self.target} WITH NO DATA"
        )

    def load_stage(self, rows: pa.Table) -> None:
        """COPY the rows as headerless CSV written by pyarrow (nulls as empty fields)."""
        copy = f"COPY {self.stage} ({', '.join(self.columns)}) FROM STDIN WITH (FORMAT csv)"
        with self.connection.connection.cursor() as cursor:
            for batch in rows.to_batches(max_chunksize=COPY_BATCH_ROWS):
                buffer = io.BytesIO()
                pa_csv.write_csv(batch, buffer, pa_csv.WriteOptions(include_header=False))
                buffer.seek(0)
                cursor.copy_expert(copy, buffer, size=COPY_CHUNK_BYTES)
        self.connection.exec_driver_sql(f"ANALYZE {self.stage}")

    def rejection(self, error: IntegrityError) -> str:
        """The constraint from the driver's diagnostics, and the first staged row that breaks it."""
        diag = error.orig.diag
        key = self.rejected_key(diag) if diag.table_name == self.table else None
        row = f" {self.describe_key(key)}" if key else ""
        return (
            f"{self.table}: the database rejected the row{row}: it violates constraint "
            f"{diag.constraint_name or diag.column_name!r} ({diag.message_primary}; "
            f"{diag.message_detail or ''})"
        )

    def rejected_key(self, diag: Any) -> Sequence[Any] | None:
        """Key of the first row failing the diagnosed CHECK constraint, or null in its NOT NULL column."""
        quote = self.connection.dialect.identifier_preparer.quote
        if constraint := diag.constraint_name:
            check = self.connection.exec_driver_sql(
                "SELECT pg_get_expr(conbin, conrelid) FROM pg_constraint "
                "WHERE conrelid = %(table)s::regclass AND conname = %(name)s AND contype = 'c'",
                {"table": self.target, "name": constraint},
            ).scalar_one_or_none()
            if check is None:
                return None  # a unique or foreign key constraint: no single row to point at
            failing = f"NOT ({check})"
        elif diag.column_name:
            failing = f"{quote(diag.column_name)} IS NULL"
        else:
            return None
        # each row as it would be stored: staged values, else the stored ones
        merged = ", ".join(
            f"{'s' if name in self.columns else 't'}.{name}" for name in self.table_columns
        )
        return self.connection.exec_driver_sql(
            f"SELECT {', '.join(self.keys)} FROM (SELECT {merged} FROM {self.stage} AS s "
            f"LEFT JOIN {self.target} AS t ON {self.key_match}) AS merged WHERE {failing} "
            f"ORDER BY {', '.join(self.keys)} LIMIT 1"
        ).one_or_none()


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

    def delete_missing_sql(self) -> str:
        """SQLite runs NOT EXISTS once per stored row over the unindexed staging table (quadratic:
        minutes at half a million rows); NOT IN builds an index of the staged keys once."""
        keys = ", ".join(self.keys)
        return f"DELETE FROM {self.target} WHERE ({keys}) NOT IN (SELECT {keys} FROM {self.stage})"

    def run(self, rows: pa.Table, replace: bool = False) -> tuple[int, int]:
        counts = super().run(rows, replace)
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
    try:
        columns = sa.inspect(connection).get_columns(table)
    except sa.exc.NoSuchTableError:
        raise DatasetError(
            f"Table {table!r} does not exist in the database: run `make db-upgrade` to create it"
        ) from None
    return {column["name"]: column["type"] for column in columns}


def _to_arrow(data: pd.DataFrame, columns: list[str], types: dict[str, Any]) -> pa.Table:
    """The frame's table columns as Arrow (NaN as null), DATE columns as calendar dates."""
    rows = pa.Table.from_pandas(data[columns], preserve_index=False)
    for index, name in enumerate(columns):
        if isinstance(types[name], sa.Date) and not pa.types.is_date(rows.column(index).type):
            rows = rows.set_column(index, name, rows.column(index).cast(pa.date32(), safe=False))
    return rows.replace_schema_metadata(None)
