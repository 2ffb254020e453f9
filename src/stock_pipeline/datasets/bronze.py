"""Bronze: one CSV of text per ticker, appended to as sessions arrive, read whole or by its ends.

A daily run adds a few bars to every ticker. Rewriting and re-reading whole files made that cost
grow with history; here a save appends the new bars, and ingestion and cleaning read only the
ends of each file (seeking from the end), so a run's bronze I/O grows with what it adds.
"""

import io
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from kedro.io import AbstractDataset

from stock_pipeline.contract import BRONZE_COLUMNS, BronzeAppend

logger = logging.getLogger(__name__)

BLOCK = 1 << 16  # bytes read at a time from either end of a file, at most
FIRST_BLOCK = 1 << 12  # the first read: a daily run needs only a few lines of each end
ISO_DATE = re.compile(rb"\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2}(\.\d+)?)?")
BLANK = (b"", b"\r")  # lines pandas skips
SPECIAL = re.compile(r'[,"\r\n]')  # characters after which a CSV value must be quoted
REWRITTEN = ".rewritten"  # subfolder: an empty file per ticker rewritten and not yet cleaned whole
# column labels of the few-row frames ingestion builds per ticker: object labels, because pandas
# looks a column up by an Arrow string label twice as slowly
BRONZE_INDEX = pd.Index(BRONZE_COLUMNS, dtype=object)


class WholeFileNeeded(Exception):
    """The file's end cannot be read line by line (quoted values, a date that is not ISO text)."""


def parse_bronze(data: bytes) -> pd.DataFrame:
    """CSV bytes as a frame of text: every value a string, empty where empty (nothing lost);
    object column labels, as the frames read from a file's ends have (see BRONZE_INDEX).

    Arrow's parser reads it several times faster; text it refuses (a ragged or blank-only line,
    bytes that are not UTF-8, a header alone) is read by pandas' own parser, as leniently as
    before, so both give the same frame."""
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, engine="pyarrow")
    except (ValueError, pa.ArrowException):  # pandas' ParserError and EmptyDataError included
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    frame.columns = frame.columns.astype(object)
    return frame


def rows_after(frame: pd.DataFrame, moment: Any, before: int | None) -> pd.DataFrame:
    """From the first row dated after `moment` on, with the `before` rows in front of it (all rows
    when `moment` is missing or `before` is None); no rows when none is dated after `moment`."""
    if pd.isna(moment):
        return frame
    dates = pd.to_datetime(frame["date"], errors="coerce", format="ISO8601")
    newer = np.flatnonzero((dates > pd.Timestamp(moment)).to_numpy())
    if not len(newer):
        return frame.iloc[:0]
    return frame if before is None else frame.iloc[max(0, newer[0] - before) :]


class BronzeFile:
    """One ticker's bronze CSV. Called, it loads every row; `first`, `last` and `after` read only
    the file's ends. Bytes after the last line end are an interrupted append (a killed run): they
    are left out with a warning and dropped by the next save, which refetches that bar."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"BronzeFile({str(self.path)!r})"

    def __call__(self) -> pd.DataFrame:
        """Every complete row, as text."""
        data = self.path.read_bytes()
        return parse_bronze(data[: self._complete_end(data, len(data))])

    def _complete_end(self, data: bytes, size: int) -> int:
        """Where the complete lines of `data` (the last `len(data)` bytes of a `size`-byte file)
        end, as a position in `data`; warns about an unfinished last line."""
        end = data.rfind(b"\n") + 1
        if end < len(data):
            logger.warning(
                "%s: the last %d bytes (%r) have no line end, as an append interrupted by a "
                "killed run leaves them: they are not read, and the next save drops them",
                self.path,
                len(data) - end,
                data[end:][:80],
            )
        return end

    def header(self) -> bytes:
        """The first line (column names), without its line end."""
        with self.path.open("rb") as file:
            data = b""
            while b"\n" not in data:
                block = file.read(FIRST_BLOCK if not data else BLOCK)
                if not block:
                    break
                data += block
        return data.split(b"\n", 1)[0].rstrip(b"\r")

    def first(self, rows: int) -> pd.DataFrame:
        """The first `rows` rows."""
        with self.path.open("rb") as file:
            data = b""
            while data.count(b"\n") <= rows:
                block = file.read(BLOCK)
                if not block:
                    break
                data += block
        header, *lines = data[: data.rfind(b"\n") + 1].split(b"\n")
        lines = [line for line in lines if line not in BLANK][:rows]
        return self._parse_lines(header.rstrip(b"\r"), lines)

    def edge_dates(self) -> tuple[str, str] | None:
        """The date text of the first and the last complete row, without parsing the file; None
        when it has no row or no `date` column first."""
        header = self.header()
        if not header.startswith(b"date,"):
            return None
        last = next(iter(self._lines_from_end(len(header))), None)
        first = self.first_line(len(header))
        if last is None or first is None:
            return None
        return first.split(b",", 1)[0].decode(), last.split(b",", 1)[0].decode()

    def first_line(self, header_length: int) -> bytes | None:
        """The first non-blank data line, None when there is none."""
        with self.path.open("rb") as file:
            file.seek(header_length + 1)
            data = b""
            while True:
                block = file.read(FIRST_BLOCK)
                data += block
                lines = data.split(b"\n")
                line = next((line for line in lines[:-1] if line not in BLANK), None)
                if line is not None or not block:
                    return line

    def last(self, rows: int) -> pd.DataFrame:
        """The last `rows` complete rows."""
        header = self.header()
        lines = []
        for line in self._lines_from_end(len(header)):
            if len(lines) == rows:
                break
            lines.append(line)
        lines.reverse()
        return self._parse_lines(header, lines)

    def after(self, moment: Any, before: int | None = 0) -> pd.DataFrame:
        """The rows at the end of the file dated after `moment`, with the `before` rows in front of
        them (the whole file when `before` is None or `moment` missing); none when no row is dated
        after `moment`. Reads from the end: the file holds its bars in date order."""
        if pd.isna(moment):
            return self()
        if before is None:
            return self() if len(self.after(moment, 0)) else self.last(0)
        header = self.header()
        try:
            lines = self.lines_after(header, moment, before)
        except WholeFileNeeded:
            return rows_after(self(), moment, before).reset_index(drop=True)
        return self._parse_lines(header, lines)

    def lines_after(self, header: bytes, moment: Any, before: int) -> list[bytes]:
        """The data lines `after` selects, first to last; WholeFileNeeded when they cannot be
        told without parsing the file."""
        names = header.split(b",")
        if b"date" not in names or b'"' in header:
            raise WholeFileNeeded
        position = names.index(b"date")
        key = pd.Timestamp(moment).isoformat(sep=" ").encode()
        picked: list[bytes] = []
        found, extra = False, 0
        for line in self._lines_from_end(len(header)):
            if b'"' in line:
                raise WholeFileNeeded
            if not found:
                fields = line.split(b",", position + 1)
                day = fields[position].strip() if len(fields) > position else b""
                if not ISO_DATE.fullmatch(day):
                    raise WholeFileNeeded
                if day > key:  # ISO text sorts as time does: "2024-06-03" < "2024-06-03 09:15:00"
                    picked.append(line)
                    continue
                found = True
                if not picked:
                    return []
            if extra == before:
                break
            picked.append(line)
            extra += 1
        picked.reverse()
        return picked

    def _lines_from_end(self, header_length: int) -> Any:
        """The complete data lines from the last to the first, blank lines skipped."""
        with self.path.open("rb") as file:
            size = file.seek(0, os.SEEK_END)
            start_of_rows = header_length + 1
            position, rest, checked, block = size, b"", False, FIRST_BLOCK
            while position > start_of_rows or rest:
                start = max(start_of_rows, position - block)
                block = min(2 * block, BLOCK)
                file.seek(start)
                data = file.read(position - start) + rest
                position = start
                if not checked:
                    end = data.rfind(b"\n") + 1
                    if end == 0 and position > start_of_rows:
                        rest = data  # a very long unfinished line: read further back
                        continue
                    data = data[: self._complete_end(data, size)]
                    checked = True
                lines = data.split(b"\n")
                rest = lines.pop(0) if position > start_of_rows else b""
                for line in reversed(lines):
                    if line not in BLANK:
                        yield line

    def _parse_lines(self, header: bytes, lines: list[bytes]) -> pd.DataFrame:
        """Data lines under the header, parsed as the whole file would be (split at commas when
        no value is quoted and every line has the header's fields: much faster for a few)."""
        names = header.decode().split(",")
        fields = [line.rstrip(b"\r").decode().split(",") for line in lines]
        if (
            b'"' in header
            or any(b'"' in line for line in lines)
            or names != list(dict.fromkeys(names))
        ):
            return parse_bronze(header + b"\n" + b"".join(line + b"\n" for line in lines))
        if any(len(row) != len(names) for row in fields):
            return parse_bronze(header + b"\n" + b"".join(line + b"\n" for line in lines))
        labels = BRONZE_INDEX if names == list(BRONZE_COLUMNS) else pd.Index(names, dtype=object)
        return pd.DataFrame(fields, columns=labels, dtype=object)

    def count_rows(self) -> int:
        """The complete rows, counted from line ends without parsing (blank lines count too)."""
        lines = 0
        with self.path.open("rb") as file:
            while block := file.read(1 << 20):
                lines += block.count(b"\n")
        return max(lines - 1, 0)


class BronzeFiles(dict):
    """The bronze files by ticker, as `BronzeDataset` loads them; `rows_after` reads many at once.

    `rewritten` names the tickers whose file was rewritten (refresh, backfill) and whose whole
    history cleaning has not yet cleaned since: a run killed between the two leaves them marked."""

    rewritten: frozenset[str] = frozenset()
    marks: Path | None = None

    def clear_rewritten(self, tickers: set[str]) -> None:
        """Unmark `tickers`: their whole history is cleaned and stored."""
        for ticker in self.rewritten & tickers:
            (self.marks / ticker).unlink(missing_ok=True)

    def rows_after(
        self, after: dict[str, Any], before: int | None, columns: tuple[str, ...]
    ) -> tuple[pd.DataFrame, dict[str, str]]:
        """For each ticker in `after`, the rows `BronzeFile.after(after[ticker], before)` gives,
        as one text frame with a leading `ticker` column and `columns`, parsed at once; and the
        tickers whose file could not be read (or lacks one of `columns`), with why."""
        expected = ",".join(columns).encode()
        chunks: list[bytes] = []
        tickers, counts, alone, failed = [], [], [], {}
        for ticker, moment in after.items():
            try:
                lines = self._lines(self[ticker], expected, moment, before)
            except WholeFileNeeded:
                alone.append(ticker)
                continue
            except (OSError, ValueError) as error:
                failed[ticker] = f"unreadable bronze file: {error}"
                continue
            chunks.extend(lines)
            tickers.append(ticker)
            counts.append(len(lines))
        frames = []
        if chunks:
            parsed = parse_bronze(expected + b"\n" + b"\n".join(chunks) + b"\n")
            if len(parsed) == len(chunks):
                parsed.insert(0, "ticker", np.repeat(np.array(tickers, dtype=object), counts))
                frames.append(parsed)
            else:  # a line pandas reads otherwise (whitespace only): parse file by file
                alone = [*tickers, *alone]
        for ticker in alone:
            frame, failed_because = _parsed_alone(self[ticker], after[ticker], before, columns)
            if failed_because:
                failed[ticker] = failed_because
            else:
                frames.append(frame.assign(ticker=ticker))
        names = ["ticker", *columns]
        frames = [frame[names] for frame in frames if len(frame)]
        if not frames:
            return pd.DataFrame({name: pd.Series(dtype=str) for name in names}), failed
        return pd.concat(frames, ignore_index=True), failed

    @staticmethod
    def _lines(file: BronzeFile, expected: bytes, moment: Any, before: int | None) -> list[bytes]:
        """The data lines `file.after(moment, before)` selects, when the file has the `expected`
        header; else WholeFileNeeded."""
        header = file.header()
        if header != expected:
            raise WholeFileNeeded
        if not pd.isna(moment) and before is not None:
            return file.lines_after(header, moment, before)
        if not pd.isna(moment) and not file.lines_after(header, moment, 0):
            return []
        data = file.path.read_bytes()
        if b'"' in data:
            raise WholeFileNeeded
        body = data[len(header) + 1 : file._complete_end(data, len(data))]
        return [line for line in body.split(b"\n") if line not in BLANK]


def _parsed_alone(
    file: BronzeFile, moment: Any, before: int | None, columns: tuple[str, ...]
) -> tuple[pd.DataFrame | None, str | None]:
    """One file parsed whole (quoted values, another column order): its selected rows as text,
    or why it cannot be read."""
    try:
        frame = file()
    except (OSError, ValueError) as error:
        return None, f"unreadable bronze file: {error}"
    missing = [column for column in columns if column not in frame]
    if missing:
        return None, f"bronze file lacks columns {missing}"
    return rows_after(frame[list(columns)], moment, before).fillna("").astype(str), None


def bronze_lines(frame: pd.DataFrame) -> str:
    """Rows as CSV lines without the header, exactly as `DataFrame.to_csv` writes them."""
    values = frame.to_numpy(dtype=object)
    if all(type(value) is str and not SPECIAL.search(value) for value in values.ravel()):
        return "".join(",".join(row) + "\n" for row in values.tolist())
    return frame.to_csv(index=False, header=False, lineterminator="\n")


class BronzeDataset(AbstractDataset[dict[str, Any], BronzeFiles]):
    """A folder of bronze CSVs, `<path>/<TICKER><filename_suffix>`, one per ticker.

    Saving takes {ticker: rows}: a DataFrame replaces the ticker's file (written aside, then
    renamed over it, so a killed run leaves the old file or the new one), a
    `contract.BronzeAppend` appends its rows in one write after dropping an unfinished last line a
    killed run left. Loading gives {ticker: BronzeFile} (nothing is read until asked; an absent
    folder is an empty bronze), so a run reads only the ends it needs.

    Example catalog entry::

        raw_prices:
          type: stock_pipeline.datasets.BronzeDataset
          path: data/01_raw/prices
    """

    def __init__(
        self, path: str, filename_suffix: str = ".csv", metadata: dict[str, Any] | None = None
    ):
        self._path = PurePosixPath(path)
        self._suffix = filename_suffix
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "filename_suffix": self._suffix}

    def _exists(self) -> bool:
        return Path(self._path).is_dir()

    def _file(self, ticker: str) -> Path:
        return Path(self._path) / f"{ticker}{self._suffix}"

    def load(self) -> BronzeFiles:
        """A BronzeFile per stored ticker, by ticker; empty when nothing is stored."""
        folder = Path(self._path)
        if not folder.is_dir():
            return BronzeFiles()
        names = sorted(entry.name for entry in os.scandir(folder) if entry.is_file())
        files = BronzeFiles(
            {
                name[: -len(self._suffix)]: BronzeFile(folder / name)
                for name in names
                if name.endswith(self._suffix)
            }
        )
        files.marks = folder / REWRITTEN
        if files.marks.is_dir():
            files.rewritten = frozenset(entry.name for entry in os.scandir(files.marks))
        return files

    def save(self, data: dict[str, pd.DataFrame | BronzeAppend | Callable[[], Any]]) -> None:
        """Replace the files given a DataFrame, append to those given a BronzeAppend. A replaced
        file is marked (`BronzeFiles.rewritten`) before it is written, so that a run killed
        before cleaning still has its whole history cleaned again by a later run."""
        Path(self._path).mkdir(parents=True, exist_ok=True)
        marks = Path(self._path) / REWRITTEN
        for ticker, value in data.items():
            rows = value() if callable(value) else value
            path = self._file(ticker)
            if isinstance(rows, BronzeAppend):
                self._append(path, rows.rows)
            else:
                marks.mkdir(exist_ok=True)
                (marks / ticker).touch()
                _replace(path, rows)

    def _append(self, path: Path, rows: pd.DataFrame) -> None:
        """Rows added at the end of the file (one write); a file with other columns, or none yet,
        is rewritten whole instead."""
        if rows.empty:
            return
        if not path.exists():
            _replace(path, rows)
            return
        stored = BronzeFile(path)
        if stored.header() != ",".join(map(str, rows.columns)).encode():
            _replace(path, pd.concat([stored(), rows.astype(str)], ignore_index=True))
            return
        text = bronze_lines(rows).encode()
        with path.open("r+b") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - BLOCK))
            data = file.read()
            if b"\n" in data:
                end = size - len(data) + stored._complete_end(data, size)
                if end < size:
                    file.truncate(end)
                file.seek(end)
                file.write(text)
                return
        _replace(path, pd.concat([stored(), rows.astype(str)], ignore_index=True))


def _replace(path: Path, frame: pd.DataFrame) -> None:
    """The file written aside and renamed over the old one (atomic on one file system)."""
    partial = path.with_name(path.name + ".partial")
    frame.to_csv(partial, index=False)
    os.replace(partial, path)
