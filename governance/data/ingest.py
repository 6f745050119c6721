"""Read source tables (CSV, Parquet) into DataFrames with a stable row id.

Why a module of its own: every later stage (validation, quarantine, audit)
refers to rows by id, never by value, so the id must be assigned once, here, in
file order. Bad input is the most common user error, so every failure becomes a
one-line `InputError` that names the file and what was expected; the messages
never echo cell contents (they may be PII), only line numbers and offsets.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from governance.errors import InputError

PARQUET_MAGIC = b"PAR1"
_CSV_SUFFIXES = {".csv", ".txt", ".data", ".test", ".tsv", ".tab", ".psv"}
_PARQUET_SUFFIXES = {".parquet", ".pq", ".parq"}
_SNIFF_BYTES = 8192
# pandas read_csv options a caller may pass through `csv_options`.
_ALLOWED_CSV_OPTIONS = {
    "sep", "delimiter", "quotechar", "skipinitialspace", "comment", "dtype",
    "keep_default_na", "true_values", "false_values", "thousands", "decimal",
    "usecols", "skip_rows", "names", "na_values", "header", "skipfooter", "encoding",
}


def detect_format(path: Path, head: bytes) -> str:
    """Return "parquet" or "csv" from the magic bytes, then the extension.

    Magic wins over the extension: a Parquet file named `.csv` is still Parquet.
    """
    if head[:4] == PARQUET_MAGIC:
        return "parquet"
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        return "parquet"  # wrong magic: the parquet reader will name the problem
    if _looks_binary(head):
        raise InputError(
            f"{path}: not a CSV or Parquet file (binary content near the start); "
            "expected UTF-8 text with a header row or a Parquet file"
        )
    return "csv"


def _looks_binary(head: bytes) -> bool:
    if b"\x00" in head:
        return True
    if not head:
        return False
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 13, 12))
    return control / len(head) > 0.05


def read_table(
    path: Path,
    *,
    row_id_column: str = "row_id",
    fmt: str | None = None,
    na_values: list[str] | None = None,
    csv_options: dict | None = None,
    names: list[str] | None = None,
    skip_rows: int = 0,
) -> pd.DataFrame:
    """Read a CSV or Parquet file and make sure it carries a unique row id.

    `names` + `skip_rows` read headerless files such as UCI Adult
    (`names=[...]`, `skip_rows=1` for adult.test's `|1x3 Cross validator` line,
    `csv_options={"skipinitialspace": True}`, `na_values=["?"]`).
    Existing ids are kept (must be non-null and unique); otherwise ids are
    0..n-1 in file order, int64, inserted as the first column.
    """
    path = Path(path)
    opts = dict(csv_options or {})
    unknown = sorted(set(opts) - _ALLOWED_CSV_OPTIONS)
    if unknown:
        raise InputError(
            f"{path}: unknown csv_options {unknown}; expected some of {sorted(_ALLOWED_CSV_OPTIONS)}"
        )
    names = opts.pop("names", names)
    skip_rows = int(opts.pop("skip_rows", skip_rows))
    if opts.get("na_values") is not None:
        na_values = [*(na_values or []), *opts.pop("na_values")]
    opts.pop("na_values", None)
    if not path.exists():
        raise InputError(f"{path}: file not found; expected a CSV or Parquet file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; expected a CSV or Parquet file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty (0 bytes); expected a header row and data rows")
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    kind = (fmt or detect_format(path, head)).lower()
    if kind == "parquet":
        df = _read_parquet(path)
    elif kind in ("csv", "tsv"):
        if kind == "tsv" or path.suffix.lower() in (".tsv", ".tab"):
            opts.setdefault("sep", "\t")
        df = _read_csv(path, na_values=na_values, opts=opts, names=names, skip_rows=skip_rows)
    else:
        raise InputError(f"{path}: unknown format {fmt!r}; expected 'csv' or 'parquet'")
    if len(df) == 0:
        raise InputError(f"{path}: no data rows (header only?); expected at least one row")
    return ensure_row_ids(df, row_id_column, source=str(path))


def ensure_row_ids(
    df: pd.DataFrame, row_id_column: str, *, source: str = "table", start: int = 0
) -> pd.DataFrame:
    """Keep a valid existing id column, or insert start..start+n-1 (int64) first."""
    if row_id_column in df.columns:
        ids = df[row_id_column]
        if ids.isna().any():
            raise InputError(
                f"{source}: row id column {row_id_column!r} has {int(ids.isna().sum())} empty "
                "value(s); expected a unique id on every row"
            )
        if not ids.is_unique:
            dup = int(ids.duplicated().sum())
            raise InputError(
                f"{source}: row id column {row_id_column!r} has {dup} duplicate id(s); "
                "expected unique ids (drop the column to have ids assigned)"
            )
        return df
    df.insert(0, row_id_column, np.arange(start, start + len(df), dtype=np.int64))
    return df


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types; the message names the file
        raise InputError(
            f"{path}: not a readable Parquet file ({type(exc).__name__}); expected a valid Parquet file"
        ) from None
    return table.to_pandas()


def _decode(path: Path, data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{path}: byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}) is not "
            f"valid {encoding}; expected {encoding} text (re-encode the file or pass "
            "csv_options={'encoding': ...})"
        ) from None


def _read_csv(
    path: Path,
    *,
    na_values: list[str] | None,
    opts: dict[str, Any],
    names: list[str] | None,
    skip_rows: int,
) -> pd.DataFrame:
    encoding = opts.pop("encoding", "utf-8")
    text = _decode(path, path.read_bytes(), encoding)
    if text.startswith("\ufeff"):
        text = text[1:]
    sep = opts.pop("sep", None) or opts.pop("delimiter", None) or ","
    quotechar = opts.get("quotechar", '"')
    _check_structure(path, text, sep=sep, quotechar=quotechar, skip_rows=skip_rows,
                     comment=opts.get("comment"), skipinitialspace=bool(opts.get("skipinitialspace")))
    kwargs: dict[str, Any] = dict(opts)
    if names is not None:
        kwargs["names"] = list(names)
        kwargs.setdefault("header", None)
    if na_values is not None:
        kwargs["na_values"] = list(na_values)
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, skiprows=skip_rows or None,
                         engine="c", **kwargs)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: no columns found; expected a header row and data rows") from None
    except Exception as exc:  # ParserError, ValueError, OverflowError...: never leak cell text
        raise InputError(
            f"{path}: could not parse as CSV ({type(exc).__name__}: {_safe(exc)}); "
            "expected rectangular delimited text"
        ) from None
    if len(df.columns) == 1 and names is None:
        header = str(df.columns[0])
        for cand, label in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
            if cand != sep and cand in header:
                raise InputError(
                    f"{path}: found one column whose header contains {label}; the file looks "
                    f"{label}-delimited, expected {sep!r} (pass csv_options={{'sep': {cand!r}}})"
                )
    return df


def _safe(exc: Exception) -> str:
    """Keep only the part of a parser message that carries positions, not data."""
    msg = str(exc).splitlines()[0] if str(exc) else ""
    return msg[:120] if "line" in msg or "row" in msg else "parser error"


def _check_structure(
    path: Path, text: str, *, sep: str, quotechar: str, skip_rows: int,
    comment: str | None, skipinitialspace: bool = False,
) -> None:
    """Reject ragged rows and bad quoting with the offending line number.

    pandas silently pads short rows with NaN; a short row almost always means a
    broken export, so we count fields per line ourselves. Unquoted text is
    checked with numpy (fast); quoted text with the csv module (strict).
    """
    if len(sep) != 1:
        return  # regex separators: leave the check to pandas
    if quotechar not in text and comment is None:
        _check_unquoted(path, text, sep, skip_rows)
        return
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quotechar=quotechar,
                        strict=True, skipinitialspace=skipinitialspace)
    expected = None
    try:
        for rec in reader:
            if reader.line_num <= skip_rows:
                continue
            if not rec or (len(rec) == 1 and rec[0].strip() == ""):
                continue
            if comment and rec[0].lstrip().startswith(comment):
                continue
            if expected is None:
                expected = len(rec)
            elif len(rec) != expected:
                raise InputError(
                    f"{path}: line {reader.line_num} has {len(rec)} fields; expected {expected} "
                    "like the header (ragged row)"
                )
    except csv.Error as exc:
        raise InputError(
            f"{path}: bad quoting near line {reader.line_num} ({_csv_reason(exc)}); expected "
            f"fields quoted with {quotechar!r} and embedded quotes doubled"
        ) from None
    if expected is None:
        raise InputError(f"{path}: no header or data lines; expected a header row and data rows")


def _csv_reason(exc: csv.Error) -> str:
    msg = str(exc)
    return "unterminated quoted field" if "EOF" in msg or "newline" in msg else "stray quote"


def _check_unquoted(path: Path, text: str, sep: str, skip_rows: int) -> None:
    raw = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    nl = np.flatnonzero(raw == 10)
    ends = np.append(nl, len(raw))
    starts = np.concatenate(([0], nl + 1))
    seps = np.flatnonzero(raw == ord(sep))
    counts = np.searchsorted(seps, ends) - np.searchsorted(seps, starts)
    lengths = ends - starts
    # blank lines ("" or "\r") are skipped by pandas; so are we.
    first = raw[np.clip(starts, 0, len(raw) - 1)] if len(raw) else np.zeros(len(starts), np.uint8)
    blank = (lengths == 0) | ((lengths == 1) & (first == 13))
    line_no = np.arange(1, len(starts) + 1)
    keep = ~blank & (line_no > skip_rows)
    if not keep.any():
        raise InputError(f"{path}: no header or data lines; expected a header row and data rows")
    counts, line_no = counts[keep], line_no[keep]
    bad = np.flatnonzero(counts != counts[0])
    if bad.size:
        i = int(bad[0])
        raise InputError(
            f"{path}: line {int(line_no[i])} has {int(counts[i]) + 1} fields; expected "
            f"{int(counts[0]) + 1} like the header (ragged row)"
        )


def iter_parquet_batches(
    path: Path, batch_rows: int, *, row_id_column: str = "row_id", columns: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    """Yield DataFrames of at most `batch_rows` rows, with ids continuing across batches.

    Why: validation of files larger than memory streams record batches; ids must
    match what `read_table` would assign to the whole file.
    """
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found; expected a Parquet file")
    if batch_rows < 1:
        raise InputError(f"batch_rows={batch_rows}: expected a positive number of rows")
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        raise InputError(
            f"{path}: not a readable Parquet file ({type(exc).__name__}); expected a valid Parquet file"
        ) from None
    if columns is not None and row_id_column in pf.schema_arrow.names and row_id_column not in columns:
        columns = [row_id_column, *columns]
    offset = 0
    for batch in pf.iter_batches(batch_size=batch_rows, columns=columns):
        df = batch.to_pandas()
        n = len(df)
        yield ensure_row_ids(df, row_id_column, source=str(path), start=offset)
        offset += n
