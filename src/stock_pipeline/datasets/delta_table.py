"""A Delta Lake table of (ticker, date) rows, partitioned by ticker bucket, one version per save."""

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, PostCommitHookProperties, Schema
from deltalake.exceptions import DeltaError, TableNotFoundError
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions
from kedro.io import AbstractVersionedDataset, DatasetError, Version

from stock_pipeline.contract import BUCKET_COLUMN, KEY, ticker_bucket
from stock_pipeline.recipes import Recipe

logger = logging.getLogger(__name__)

LOAD_ARGS = ("tickers", "start", "end", "columns", "by_bucket", "last_per_ticker")
# chunks written at once: Arrow conversion, Parquet writing and NumPy checks release the GIL
WRITE_THREADS = min(4, os.cpu_count() or 1)
RECIPE_KEY = "recipe"  # the commit metadata that holds the recipe the rows were written under
RECIPE_SEARCH_COMMITS = 32  # newest commits searched first (another client's vacuums carry none)
CHECKPOINT_INTERVAL = 10  # commits between log checkpoints: a load replays at most this many
# Checkpoints and log cleanup are this dataset's (`_maintain`), by versions: delta-rs's own, by
# time (30 days), would drop versions `retention_versions` promises.
HOOKS = PostCommitHookProperties(create_checkpoint=False, cleanup_expired_logs=False)
VACUUMS = ("VACUUM START", "VACUUM END")  # commits of delta-rs's vacuum (another client's)
COMPACTION_KEY = "compacted"  # the commit metadata of a compaction: how many files it merged


class TableWrite(dict):
    """Chunks for `DeltaTableDataset.save` ({name: frame, or function returning one}) with the
    `recipe` that made them; `overwrite` replaces the whole table, columns included (a changed
    recipe), instead of each ticker's rows from its first date."""

    def __init__(self, chunks: dict[Any, Any], recipe: Recipe | None, overwrite: bool = False):
        super().__init__(chunks)
        self.recipe = recipe
        self.overwrite = overwrite


class BucketLoaders(dict):
    """{bucket: function loading its rows}, as a `by_bucket` load returns, with the table's
    `version` and stored `recipe` (None for a table not written yet or written before recipes)."""

    version: int | None = None
    recipe: Recipe | None = None


def _last_rows(dataset: Any, selected: pc.Expression | None, columns: list[str] | None) -> pa.Table:
    """Each ticker's latest row (of `columns`, the key included; all when None)."""
    rows = dataset.to_table(filter=selected, columns=columns)
    keys = rows.select(list(KEY))
    latest = keys.group_by("ticker").aggregate([("date", "max")]).rename_columns(list(KEY))
    if len(rows.column_names) == len(KEY):
        return latest
    return rows.join(latest, keys=list(KEY), join_type="inner")


class DeltaTableDataset(AbstractVersionedDataset[pd.DataFrame, pd.DataFrame]):
    """Rows keyed by (ticker, date) in a Delta table partitioned by `bucket` (contract.ticker_bucket).

    A save replaces, for each ticker in the frame, the stored rows from that ticker's first date in
    the frame onward: a whole history replaces the ticker (a corporate-action refresh), new
    sessions are appended, other tickers are untouched. It is one Delta commit, so a run killed
    mid-write leaves the table at its previous version; only the changed rows are written, so
    storage grows with what changed. `latest_version()` names the version that holds the result.

    Loading returns a DataFrame sorted by ticker then date: the latest version, or the one given to
    `catalog.load(name, version="<n>")`. `load_args` select a subset without reading the rest:
    `tickers` (only their buckets are read), `start`/`end` (inclusive dates), `columns` (the key is
    always included; those the table lacks are left out), `by_bucket` (one loading function per
    bucket, as a PartitionedDataset loads, so a node holds one bucket at a time),
    `last_per_ticker` (only each ticker's latest row: where a run resumes, without holding every
    key). A loaded frame's `attrs` name its `version` and `recipe` (what made the rows, as
    `Recipe.to_json()`: a string, which pandas copies at no cost along every operation on the
    frame; saves of a `TableWrite` record it in the commit). With `optional`, a table not written yet loads as an
    empty frame with the key columns (a first run's stored state). Versioning is the table's own:
    no `versioned:`.

    After each save (docs/storage.md, "Storage policy"): a bucket holding more than
    `max_files_per_bucket` files has its files smaller than `small_file_kib` merged into one,
    or is merged whole once large files fill half that budget (a compaction: one more version,
    readers unaffected); `retention_versions` keeps the versions of that many latest saves
    loadable, the compactions between them included, and deletes the files and log entries
    only older versions need; a checkpoint every CHECKPOINT_INTERVAL commits keeps a load's
    log replay short.

    Example catalog entry::

        features_recent:
          type: stock_pipeline.datasets.DeltaTableDataset
          filepath: data/04_feature/features
          load_args: {tickers: [INFY.NS, TCS.NS], start: "2024-01-01", columns: [close, rsi_14]}
    """

    def __init__(
        self,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        retention_versions: int | None = None,
        max_files_per_bucket: int | None = None,
        small_file_kib: int = 256,
        optional: bool = False,
        metadata: dict[str, Any] | None = None,
        version: Version | None = None,
    ):
        super().__init__(PurePosixPath(filepath), version)
        unknown = set(load_args or {}) - set(LOAD_ARGS)
        if unknown:
            raise DatasetError(f"{filepath}: unknown load_args {sorted(unknown)}; use {LOAD_ARGS}")
        self._load_args = dict(load_args or {})
        self._retention_versions = retention_versions
        self._max_files_per_bucket = max_files_per_bucket
        self._small_file_bytes = small_file_kib * 1024
        self._optional = optional
        self.metadata = metadata
        self.saved_recipe: Recipe | None = None  # the recipe of the last save (the run record's)
        self.rows_written = 0  # rows written by the last save

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._filepath),
            "load_args": self._load_args,
            "version": self._version.load if self._version else None,
        }

    def _exists(self) -> bool:
        return DeltaTable.is_deltatable(str(self._filepath))

    def _table(self) -> DeltaTable:
        """The table at the requested version (the latest when none)."""
        wanted = self._version.load if self._version else None
        try:
            table = DeltaTable(str(self._filepath), version=int(wanted) if wanted else None)
            if wanted and int(wanted) < self._oldest_kept(DeltaTable(str(self._filepath))):
                raise DeltaError("older than the retained versions: its files are vacuumed")
            return table
        except TableNotFoundError as error:
            if not (wanted and self._exists()):
                raise DatasetError(f"{self._filepath}: no table stored yet") from error
            raise self._unloadable(wanted, error) from error  # its log entries were trimmed
        except (DeltaError, ValueError) as error:
            raise self._unloadable(wanted, error) from error

    def _unloadable(self, wanted: Any, error: Exception) -> DatasetError:
        """The error of a version that cannot be loaded."""
        return DatasetError(
            f"{self._filepath}: version {wanted!r} is not loadable (pruned or never written; "
            f"versions: {self.list_versions()}): {error}"
        )

    def latest_version(self) -> int | None:
        """The newest version's id, None before the first save."""
        return DeltaTable(str(self._filepath)).version() if self._exists() else None

    def list_versions(self, full_path: bool = False) -> list[str]:
        """The loadable versions' ids (those `retention_versions` keeps), newest first."""
        if not self._exists():
            return []
        table = DeltaTable(str(self._filepath))
        oldest = self._oldest_kept(table)
        return [str(entry["version"]) for entry in table.history() if entry["version"] >= oldest]

    def load(self) -> pd.DataFrame | BucketLoaders:
        """The stored rows (of `load_args`' tickers, dates and columns), sorted by ticker then date;
        with `by_bucket`, a function per bucket that loads them."""
        if self._optional and not self._exists():
            if self._load_args.get("by_bucket"):
                return BucketLoaders()
            empty = pd.DataFrame(
                {"ticker": pd.Series(dtype=str), "date": pd.Series(dtype="datetime64[us]")}
            )
            empty.attrs.update(version=None, recipe=None)
            return empty
        table = self._table()
        if self._load_args.get("by_bucket"):
            buckets = sorted({int(values[BUCKET_COLUMN]) for values in table.partitions()})
            loaders = BucketLoaders(
                {
                    str(bucket): partial(self._bucket_rows, table.version(), bucket)
                    for bucket in buckets
                }
            )
            loaders.version, loaders.recipe = table.version(), stored_recipe(table)
            return loaders
        frame = self._rows(table)
        recipe = stored_recipe(table)
        frame.attrs.update(version=table.version(), recipe=recipe and recipe.to_json())
        return frame

    def _bucket_rows(self, version: int, bucket: int) -> pd.DataFrame:
        """One bucket's rows at `version` (picklable, so a dask worker can load them itself)."""
        table = DeltaTable(str(self._filepath), version=version)
        return self._rows(table, pc.field(BUCKET_COLUMN) == bucket)

    def _rows(self, table: DeltaTable, bucket: pc.Expression | None = None) -> pd.DataFrame:
        """The rows `load_args` select (within one bucket when given), sorted by ticker then date."""
        selected = self._filter()
        if bucket is not None:
            selected = bucket if selected is None else selected & bucket
        columns = self._load_args.get("columns")
        dataset = table.to_pyarrow_dataset()
        if columns is not None:  # those the table lacks (an indicator not configured) left out
            stored = set(dataset.schema.names)
            columns = [*KEY, *(name for name in columns if name not in KEY and name in stored)]
        if self._load_args.get("last_per_ticker"):
            rows = _last_rows(dataset, selected, columns)
        else:
            rows = dataset.to_table(filter=selected, columns=columns)
        if BUCKET_COLUMN in rows.column_names:
            rows = rows.drop_columns([BUCKET_COLUMN])
        frame = rows.to_pandas()
        return frame.sort_values(list(KEY), kind="stable", ignore_index=True)

    def _filter(self) -> pc.Expression | None:
        """The load_args as an Arrow filter; tickers also prune the bucket partitions."""
        conditions = []
        tickers = self._load_args.get("tickers")
        if tickers is not None:
            tickers = [tickers] if isinstance(tickers, str) else list(tickers)
            buckets = sorted({ticker_bucket(ticker) for ticker in tickers})
            conditions += [pc.field(BUCKET_COLUMN).isin(buckets), pc.field("ticker").isin(tickers)]
        for name, compare in (("start", pc.greater_equal), ("end", pc.less_equal)):
            if self._load_args.get(name) is not None:
                bound = pd.Timestamp(self._load_args[name]).to_pydatetime()
                if name == "end" and bound.time() == datetime.min.time():
                    bound = (
                        pd.Timestamp(bound) + pd.Timedelta(days=1, microseconds=-1)
                    ).to_pydatetime()
                conditions.append(compare(pc.field("date"), pa.scalar(bound, pa.timestamp("us"))))
        expression = None
        for condition in conditions:
            expression = condition if expression is None else expression & condition
        return expression

    def save(self, data: pd.DataFrame | dict[Any, Callable[[], pd.DataFrame]]) -> None:
        """Replace each ticker's rows from its first date in `data` onward, in one commit.

        `data` is a frame, or chunks of it as {name: function returning a frame} (as a
        PartitionedDataset saves lazily), computed and written a few at a time (WRITE_THREADS) so
        memory holds a few chunks; a `TableWrite` also names its recipe, and may replace the
        whole table."""
        path = str(self._filepath)
        Path(path).mkdir(parents=True, exist_ok=True)
        table = DeltaTable(path) if self._exists() else None
        recipe = data.recipe if isinstance(data, TableWrite) else None
        overwrite = isinstance(data, TableWrite) and data.overwrite
        writer = _ReplaceWriter(path, table, recipe, overwrite)
        chunks = list(data.values()) if isinstance(data, dict) else [data]
        with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
            pending = [
                pool.submit(lambda chunk=chunk: writer.write(chunk() if callable(chunk) else chunk))
                for chunk in chunks
            ]
            try:
                for future in pending:
                    future.result()
            except BaseException:
                for future in pending:
                    future.cancel()  # nothing is committed: the staged files stay invisible
                raise
        writer.commit()
        self.saved_recipe, self.rows_written = recipe, writer.rows
        if table is not None or writer.rows:
            table = DeltaTable(path)
            logger.info("%s: %d rows written, version %d", path, writer.rows, table.version())
            self._maintain(table)

    def _maintain(self, table: DeltaTable) -> None:
        """Compact crowded buckets, delete every file the kept versions do not need (a full
        vacuum's list: files of a killed run's write go too), checkpoint and trim the log."""
        self._compact(table)
        table = DeltaTable(str(self._filepath))  # with the compaction's version
        oldest = self._oldest_kept(table)
        log = Path(self._filepath) / "_delta_log"
        if self._retention_versions:
            stale = table.vacuum(
                retention_hours=0,
                dry_run=True,  # deleted here: delta-rs lists the files of its tombstones again
                enforce_retention_duration=False,  # until they expire, and would commit a
                full=True,  # vacuum (two versions) each time
                keep_versions=_holding_versions(log, oldest, table.version()),
            )
            for name in stale:
                (Path(self._filepath) / name).unlink(missing_ok=True)
        _checkpoint(table, log, oldest)

    def _oldest_kept(self, table: DeltaTable) -> int:
        """The oldest version kept loadable: that of the `retention_versions`-th latest save
        (compactions and vacuums in between do not count, so they never shorten the promise)."""
        if not self._retention_versions:
            return 0
        saves = [
            entry["version"]
            for entry in table.history()  # newest first; the trimmed log bounds its length
            if entry.get("operation") not in VACUUMS and COMPACTION_KEY not in entry
        ]
        return saves[min(self._retention_versions, len(saves)) - 1] if saves else 0

    def storage_bound(self) -> int | None:
        """The bytes the storage policy lets the table's folder hold now (docs/storage.md): twice
        its live files (one older copy of each bucket: a whole-bucket merge or a rewrite), the
        small files replaced by the merges the kept saves span (one every ceil(K / 2) saves at
        most, under 2 T per bucket), and its log; None when nothing bounds it."""
        if not (self._retention_versions and self._max_files_per_bucket and self._exists()):
            return None
        table = DeltaTable(str(self._filepath))
        live = sum(pa.table(table.get_add_actions()).column("size_bytes").to_pylist())
        merges = -(-self._retention_versions // -(-self._max_files_per_bucket // 2))
        buckets = len(table.partitions())
        log = sum(entry.stat().st_size for entry in (Path(self._filepath) / "_delta_log").iterdir())
        return 2 * live + merges * buckets * 2 * self._small_file_bytes + log

    def _compact(self, table: DeltaTable) -> None:
        """In each bucket holding more than `max_files_per_bucket` files, merge the files smaller
        than `small_file_kib` into one; merge the bucket whole when more than half that budget
        is large files (they accumulated), so that a merge always frees half the budget and a
        bucket never compacts run after run. One commit, marked a compaction and carrying the
        table's recipe; the other buckets are untouched."""
        if not self._max_files_per_bucket:
            return
        merges = {}
        for bucket, files in _stored_files(table).items():
            if len(files) <= self._max_files_per_bucket:
                continue
            small = [name for name, size in files.items() if size < self._small_file_bytes]
            whole = len(files) - len(small) > self._max_files_per_bucket // 2
            merges[bucket] = list(files) if whole else small
        merges = {bucket: names for bucket, names in merges.items() if len(names) > 1}
        if not merges:
            return
        writer = _ReplaceWriter(str(self._filepath), table, stored_recipe(table), overwrite=False)
        for bucket, names in merges.items():
            writer.merge(bucket, names)
        writer.commit(compaction=True)
        logger.info(
            "%s: compacted buckets %s, %d files into %d",
            self._filepath,
            ",".join(map(str, merges)),
            len(writer.removes),
            len(merges),
        )


def _holding_versions(log: Path, oldest: int, latest: int) -> list[int]:
    """The versions whose files are every file versions `oldest` to `latest` read: the latest,
    the oldest, and each one before a commit that removed files (a compaction, a rewrite); an
    append removes none, so the vacuum loads a few versions, not every kept one."""
    holding = {oldest, latest}
    for version in range(oldest + 1, latest + 1):
        lines = (log / f"{version:020d}.json").read_text().splitlines()
        if any("remove" in json.loads(line) for line in lines if line):
            holding.add(version - 1)
    return sorted(holding)


def _checkpoint(table: DeltaTable, log: Path, oldest_kept: int) -> None:
    """Checkpoint every CHECKPOINT_INTERVAL commits, then delete the log entries older than the
    newest checkpoint at or before `oldest_kept`: the log stays a bounded number of files and
    every kept version still loads. The newest checkpoint is never the cut, so a reader that
    just found it still finds the entries after it."""
    checkpoints = sorted(int(entry.name[:20]) for entry in log.glob("*.checkpoint*.parquet"))
    if table.version() - (checkpoints[-1] if checkpoints else 0) >= CHECKPOINT_INTERVAL:
        table.create_checkpoint()
        checkpoints.append(table.version())
    cut = max((version for version in checkpoints[:-1] if version <= oldest_kept), default=0)
    for entry in log.iterdir():
        if entry.is_file() and entry.name[:20].isdigit() and int(entry.name[:20]) < cut:
            entry.unlink(missing_ok=True)


def _recipe_properties(recipe: Recipe | None, **metadata: str) -> CommitProperties:
    """Commit metadata recording `metadata` and the recipe (compactions carry it on, so the
    newest commits always name it however much of the log is trimmed)."""
    if recipe is not None:
        metadata[RECIPE_KEY] = recipe.to_json()
    return CommitProperties(custom_metadata=metadata)


def _to_arrow(data: pd.DataFrame) -> pa.Table:
    """The frame with its bucket column, dates at microseconds (Delta's timestamp resolution)."""
    frame = data.reset_index(drop=True)
    codes, tickers = pd.factorize(frame["ticker"])  # one hash per ticker, not per row
    buckets = np.array([ticker_bucket(ticker) for ticker in tickers], dtype="int64")
    frame = frame.assign(
        date=pd.to_datetime(frame["date"]).astype("datetime64[us]"),
        **{BUCKET_COLUMN: buckets[codes]},
    )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return table.set_column(0, "ticker", table.column("ticker").cast(pa.string()))


class _ReplaceWriter:
    """Parquet files written with pyarrow, one per chunk and bucket, then committed in one Delta
    transaction with the removal (and rewrite without the replaced rows) of stored files that
    hold rows being replaced. Nothing is visible until the commit. Chunks may be written from
    several threads: a bucket's files are replaced by one chunk at a time."""

    def __init__(self, path: str, table: DeltaTable | None, recipe: Recipe | None, overwrite: bool):
        self.path = path
        self.table = table
        self.recipe = recipe
        self.overwrite = overwrite
        kept = table is not None and not overwrite  # an overwrite starts from no stored file
        self.schema = pa.schema(table.schema().to_arrow()) if kept else None
        self.stored = _stored_files(table) if kept else {}
        self.adds: dict[str, AddAction] = {}
        self.removes: list[RemoveAction] = []
        self.tickers: set[str] = set()
        self.rows = 0
        self._lock = threading.Lock()  # the staged actions and counts
        self._buckets: dict[int, threading.Lock] = {}

    def _bucket_lock(self, bucket: int) -> threading.Lock:
        """The lock of one bucket's stored files."""
        with self._lock:
            return self._buckets.setdefault(bucket, threading.Lock())

    def write(self, frame: pd.DataFrame) -> None:
        """Stage one chunk: its rows as new files, the stored rows it replaces as rewrites."""
        if frame.empty:
            return
        rows = _to_arrow(frame)
        with self._lock:
            if self.schema is None:
                self.schema = pa.schema(rows.schema)
        if set(rows.schema.names) != set(self.schema.names):
            changed = sorted(set(rows.schema.names) ^ set(self.schema.names))
            raise DatasetError(
                f"{self.path}: the columns changed ({changed}) in a save that keeps stored rows; "
                "a changed recipe rewrites the whole table (TableWrite(..., overwrite=True))"
            )
        rows = rows.select(self.schema.names).cast(self.schema)
        buckets = rows.column(BUCKET_COLUMN).to_numpy()
        for bucket in np.unique(buckets):
            part = rows.filter(pa.array(buckets == bucket)).drop_columns([BUCKET_COLUMN])
            since = part.select(["ticker", "date"]).to_pandas().groupby("ticker")["date"].min()
            with self._bucket_lock(int(bucket)):
                self._replace_stored(int(bucket), since)
                self._add(int(bucket), part)
        with self._lock:
            self.tickers.update(rows.column("ticker").unique().to_pylist())
            self.rows += rows.num_rows

    def _replace_stored(self, bucket: int, since: pd.Series) -> None:
        """Rewrite the bucket's files that hold rows of `since`'s tickers from their dates on."""
        for name in list(self.stored.get(bucket, [])):
            full = Path(self.path) / name
            if _latest_date(full) < since.min():
                continue  # every row is older than the first replaced date: the usual append
            replaced = _replaced_rows(pq.read_table(full, columns=["ticker", "date"]), since)
            if replaced is False:
                continue
            if replaced is not True:  # the other rows are kept: read the whole file once
                self._add(bucket, pq.read_table(full).filter(pa.array(~replaced)))
            with self._lock:
                del self.stored[bucket][name]
                staged = self.adds.pop(name, None)
                if staged is None:
                    self.removes.append(_remove(name, bucket))
            if staged is not None:
                full.unlink()

    def merge(self, bucket: int, names: list[str]) -> None:
        """Stage the rows of a bucket's files as one file, and the files' removal (no row
        changes: a compaction)."""
        tables = [pq.read_table(Path(self.path) / name) for name in names]
        merged = pa.concat_tables(table.cast(tables[0].schema) for table in tables)
        self._add(bucket, merged, data_change=False)
        for name in names:
            del self.stored[bucket][name]
            self.removes.append(_remove(name, bucket, data_change=False))

    def _add(self, bucket: int, rows: pa.Table, data_change: bool = True) -> None:
        """Write rows of one bucket as a new Parquet file, staged for the commit."""
        name = f"{BUCKET_COLUMN}={bucket}/part-{uuid.uuid4().hex}.parquet"
        full = Path(self.path) / name
        full.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(rows, full, use_dictionary=["ticker", "date"])
        action = AddAction(
            path=name,
            size=full.stat().st_size,
            partition_values={BUCKET_COLUMN: str(bucket)},
            modification_time=int(time.time() * 1000),
            data_change=data_change,
            stats=json.dumps({"numRecords": rows.num_rows}),
        )
        with self._lock:
            self.adds[name] = action
            self.stored.setdefault(bucket, {})[name] = action.size

    def commit(self, compaction: bool = False) -> None:
        """One transaction: the new files and the removed ones (nothing when nothing changed); an
        overwrite replaces every stored file and the schema."""
        adds = list(self.adds.values())
        if self.overwrite and self.table is not None:
            if self.schema is None:  # nothing computed: an empty table of the stored columns
                self.schema = pa.schema(self.table.schema().to_arrow())
            self.table.create_write_transaction(
                adds,
                mode="overwrite",
                schema=Schema.from_arrow(self.schema),
                partition_by=[BUCKET_COLUMN],
                commit_properties=self._properties(compaction),
                post_commithook_properties=HOOKS,
            )
        elif self.table is None:
            if adds:
                create_table_with_add_actions(
                    self.path,
                    Schema.from_arrow(self.schema),
                    adds,
                    partition_by=[BUCKET_COLUMN],
                    commit_properties=self._properties(compaction),
                    post_commithook_properties=HOOKS,
                )
        elif adds or self.removes:
            self.table.create_write_transaction(
                [*adds, *self.removes],
                mode="append",
                schema=self.table.schema(),
                partition_by=[BUCKET_COLUMN],
                commit_properties=self._properties(compaction),
                post_commithook_properties=HOOKS,
            )

    def _properties(self, compaction: bool) -> CommitProperties:
        """The commit's own record of what it wrote (shown by `DeltaTable.history()`)."""
        if compaction:
            return _recipe_properties(self.recipe, **{COMPACTION_KEY: str(len(self.removes))})
        return _recipe_properties(self.recipe, rows_written=str(self.rows))


def stored_recipe(table: DeltaTable) -> Recipe | None:
    """The recipe of the table's newest commit that records one (None: written before recipes);
    the newest commits are read first, the whole log only when they hold none."""
    for limit in (RECIPE_SEARCH_COMMITS, None):
        history = table.history(limit=limit)
        for commit in history:  # newest first
            if RECIPE_KEY in commit:
                return Recipe.from_json(commit[RECIPE_KEY])
        if limit is None or len(history) < limit:
            return None
    return None


def _stored_files(table: DeltaTable) -> dict[int, dict[str, int]]:
    """The table's live data files by bucket: {path relative to the table folder: bytes}."""
    actions = pa.table(table.get_add_actions(flatten=True)).to_pydict()
    files: dict[int, dict[str, int]] = {}
    rows = zip(
        actions["path"], actions["size_bytes"], actions[f"partition.{BUCKET_COLUMN}"], strict=True
    )
    for name, size, bucket in rows:
        files.setdefault(int(bucket), {})[name] = size
    return files


def _replaced_rows(keys: pa.Table, since: pd.Series) -> bool | np.ndarray:
    """Which stored rows (their ticker and date) a save replacing each ticker of `since` from its
    date on replaces: True (all, such as a rebuild's), False (none) or a mask of the rows. Decided
    per ticker from its first and last stored date when that settles it (one pass in Arrow)."""
    if not keys.num_rows:
        return False
    span = keys.group_by("ticker").aggregate([("date", "min"), ("date", "max")]).to_pandas()
    first = since.reindex(span["ticker"]).to_numpy(dtype="datetime64[us]")
    unset = np.isnat(first)
    if (~unset & (span["date_min"].to_numpy(dtype="datetime64[us]") >= first)).all():
        return True
    if (unset | (span["date_max"].to_numpy(dtype="datetime64[us]") < first)).all():
        return False
    rows = keys.to_pandas()
    first = since.reindex(rows["ticker"]).to_numpy(dtype="datetime64[us]")
    mask = ~np.isnat(first) & (rows["date"].to_numpy(dtype="datetime64[us]") >= first)
    return bool(mask[0]) if mask.all() or not mask.any() else mask


def _latest_date(path: Path) -> pd.Timestamp:
    """The file's latest `date`, from its Parquet footer statistics."""
    metadata = pq.read_metadata(path)
    column = metadata.schema.names.index("date")
    latest = pd.Timestamp.min
    for group in range(metadata.num_row_groups):
        statistics = metadata.row_group(group).column(column).statistics
        if statistics is None or not statistics.has_min_max:
            return pd.Timestamp.max  # unknown: read the file
        latest = max(latest, pd.Timestamp(statistics.max))
    return latest


def _remove(name: str, bucket: int, data_change: bool = True) -> RemoveAction:
    """The removal of a stored file."""
    return RemoveAction(
        path=name,
        data_change=data_change,
        deletion_timestamp=int(time.time() * 1000),
        partition_values={BUCKET_COLUMN: str(bucket)},
    )
