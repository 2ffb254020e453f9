"""A Delta Lake table of (ticker, date) rows, partitioned by ticker bucket, one version per save."""

import logging
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError, TableNotFoundError
from kedro.io import AbstractVersionedDataset, DatasetError, Version

from stock_pipeline.contract import BUCKET_COLUMN, KEY, ticker_bucket

logger = logging.getLogger(__name__)

LOAD_ARGS = ("tickers", "start", "end", "columns")


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
    always included). With `optional`, a table not yet written loads as an empty frame with the
    key columns (a first run's stored state). `retention_versions` keeps that many latest versions loadable (vacuum after
    each save); `max_files` compacts small files (one more version) once the table holds more.

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
        max_files: int | None = None,
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
        self._max_files = max_files
        self._optional = optional
        self.metadata = metadata

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
            return DeltaTable(str(self._filepath), version=int(wanted) if wanted else None)
        except TableNotFoundError as error:
            raise DatasetError(f"{self._filepath}: no table stored yet") from error
        except (DeltaError, ValueError) as error:
            raise DatasetError(
                f"{self._filepath}: version {wanted!r} is not loadable (pruned or never written; "
                f"versions: {self.list_versions()}): {error}"
            ) from error

    def latest_version(self) -> int | None:
        """The newest version's id, None before the first save."""
        return DeltaTable(str(self._filepath)).version() if self._exists() else None

    def list_versions(self, full_path: bool = False) -> list[str]:
        """The loadable versions' ids, newest first."""
        if not self._exists():
            return []
        table = DeltaTable(str(self._filepath))
        return [str(entry["version"]) for entry in table.history()]

    def load(self) -> pd.DataFrame:
        """The stored rows (of `load_args`' tickers, dates and columns), sorted by ticker then date."""
        if self._optional and not self._exists():
            return pd.DataFrame(
                {"ticker": pd.Series(dtype=str), "date": pd.Series(dtype="datetime64[us]")}
            )
        table = self._table()
        columns = self._load_args.get("columns")
        if columns is not None:
            columns = [*KEY, *(name for name in columns if name not in KEY)]
        rows = table.to_pyarrow_dataset().to_table(filter=self._filter(), columns=columns)
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

    def save(self, data: pd.DataFrame) -> None:
        """Replace each ticker's rows from its first date in `data` onward, in one commit."""
        path = str(self._filepath)
        if not self._exists():
            if data.empty:  # nothing to store yet, and no typed schema to create a table from
                return
            Path(path).mkdir(parents=True, exist_ok=True)
            write_deltalake(path, _to_arrow(data), partition_by=[BUCKET_COLUMN], mode="overwrite")
        elif len(data):
            write_deltalake(
                path,
                _to_arrow(data),
                mode="overwrite",
                predicate=_replace_predicate(data),
                schema_mode="merge",
            )
        table = DeltaTable(path)
        self._prune(table)
        logger.info("%s: %d rows written, version %d", path, len(data), table.version())

    def _prune(self, table: DeltaTable) -> None:
        """Compact small files past `max_files`; vacuum versions older than `retention_versions`."""
        if self._max_files and len(table.file_uris()) > self._max_files:
            table.optimize.compact()
        if self._retention_versions:
            latest = table.version()
            table.vacuum(
                retention_hours=0,
                dry_run=False,
                enforce_retention_duration=False,
                keep_versions=list(
                    range(max(0, latest - self._retention_versions + 1), latest + 1)
                ),
            )


def _to_arrow(data: pd.DataFrame) -> pa.Table:
    """The frame with its bucket column, dates at microseconds (Delta's timestamp resolution)."""
    frame = data.reset_index(drop=True)
    frame = frame.assign(
        date=pd.to_datetime(frame["date"]).astype("datetime64[us]"),
        **{BUCKET_COLUMN: frame["ticker"].map(ticker_bucket).astype("int64")},
    )
    return pa.Table.from_pandas(frame, preserve_index=False)


def _quote(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _replace_predicate(data: pd.DataFrame) -> str:
    """Delta predicate matching, per ticker, the stored rows from its first new date onward."""
    first = data.groupby("ticker", sort=True)["date"].min()
    clauses = []
    for since, tickers in first.groupby(first, sort=True):
        names = list(tickers.index)
        buckets = sorted({ticker_bucket(name) for name in names})
        clauses.append(
            f"({BUCKET_COLUMN} IN ({', '.join(map(str, buckets))}) "
            f"AND ticker IN ({', '.join(map(_quote, names))}) "
            f"AND date >= '{pd.Timestamp(since).isoformat()}')"
        )
    return " OR ".join(clauses)
