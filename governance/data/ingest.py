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

from governance.data.coerce import apply_types
from governance.data.csv_options import CsvOptions, csv_options as check_csv_options
from governance.errors import InputError

PARQUET_MAGIC = b"PAR1"
_CSV_SUFFIXES = {".csv", ".txt", ".data", ".test", ".tsv", ".tab", ".psv"}
_PARQUET_SUFFIXES = {".parquet", ".pq", ".parq"}
_SNIFF_BYTES = 8192


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
    `csv_options={"skipinitialspace": True}`, `na_values=["?"]`). `csv_options` is a
    :class:`~governance.data.csv_options.CsvOptions` or the same as a mapping (the pipeline's
    `source.csv` block). Every CSV column is read as text and typed by
    :func:`~governance.data.coerce.apply_types`, so identifiers keep their leading zeros.
    Existing ids are kept (must be non-null and unique); otherwise ids are
    0..n-1 in file order, int64, inserted as the first column.
    """
    path = Path(path)
    opts = _merge_options(path, csv_options, na_values=na_values, names=names, skip_rows=skip_rows)
    kind = (fmt or detect_format(path, source_head(path))).lower()
    if kind == "parquet":
        df = _read_parquet(path)
    elif kind in ("csv", "tsv"):
        if (kind == "tsv" or path.suffix.lower() in (".tsv", ".tab")) and opts.sep is None and opts.delimiter is None:
            opts = opts.model_copy(update={"delimiter": "\t"})
        df = _read_csv(path, opts)
    else:
        raise InputError(f"{path}: unknown format {fmt!r}; expected 'csv' or 'parquet'")
    if len(df) == 0:
        raise InputError(f"{path}: no data rows (header only?); expected at least one row")
    return ensure_row_ids(df, row_id_column, source=str(path))


def source_head(path: Path) -> bytes:
    """The first bytes of a source file, after the checks every reader makes (exists, a file, not empty)."""
    if not path.exists():
        raise InputError(f"{path}: file not found; expected a CSV or Parquet file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; expected a CSV or Parquet file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty (0 bytes); expected a header row and data rows")
    with open(path, "rb") as fh:
        return fh.read(_SNIFF_BYTES)


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


def read_table_bytes(data: bytes, source: str, *, fmt: str, row_id_column: str = "row_id") -> pd.DataFrame:
    """An uploaded CSV or Parquet body, read with the same checks and typing as `read_table`.

    Why not a temp file: uploaded rows may be personal data, and nothing
    sensitive is written in plaintext outside memory."""
    label = Path(source)
    if not data:
        raise InputError(f"{source}: empty body; expected a header row and data rows")
    if fmt == "parquet":
        import pyarrow as pa

        df = _read_parquet(pa.BufferReader(data), label)
    elif fmt == "csv":
        df = _read_csv(label, _merge_options(label, None, na_values=None, names=None, skip_rows=0), data)
    else:
        raise InputError(f"{source}: unknown format {fmt!r}; expected 'csv' or 'parquet'")
    if len(df) == 0:
        raise InputError(f"{source}: no data rows (header only?); expected at least one row")
    return ensure_row_ids(df, row_id_column, source=source)


def _read_parquet(path: Any, label: Path | None = None) -> pd.DataFrame:
    import pyarrow.parquet as pq

    path_shown = label if label is not None else path
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types; the message names the file
        raise InputError(
            f"{path_shown}: not a readable Parquet file ({type(exc).__name__}); expected a valid Parquet file"
        ) from None
    return table.to_pandas()


def _merge_options(path: Path, raw: "CsvOptions | dict | None", *, na_values: list[str] | None,
                   names: list[str] | None, skip_rows: int) -> CsvOptions:
    """One validated options model from `csv_options` and the older keyword arguments."""
    if isinstance(raw, CsvOptions):
        opts = raw
    else:
        merged = dict(raw or {})
        if names is not None:
            merged.setdefault("names", list(names))
        if skip_rows:
            merged.setdefault("skip_rows", skip_rows)
        if na_values is not None:
            merged["na_values"] = [*na_values, *(merged.get("na_values") or [])]
        return check_csv_options(merged, str(path))
    if na_values is not None or names is not None or skip_rows:
        raise InputError(f"{path}: give the CSV options once, in csv_options")
    return opts


def _decode(path: Path, data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{path}: byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}) is not "
            f"valid {encoding}; expected {encoding} text (re-encode the file or set option encoding, "
            "e.g. --encoding latin-1)"
        ) from None


def _read_csv(path: Path, o: CsvOptions, data: bytes | None = None) -> pd.DataFrame:
    """Read every column as text, check the shape against the options, then type safely.

    `data`: the bytes already in memory (an upload); `path` then only names them in errors."""
    text = _decode(path, path.read_bytes() if data is None else data, o.encoding)
    if text.startswith("\ufeff"):
        text = text[1:]
    sep = o.separator
    fields = _check_structure(path, text, sep=sep, quotechar=o.quotechar, skip_rows=o.skip_rows,
                              comment=o.comment, skipinitialspace=o.skipinitialspace)
    if o.names is not None and len(o.names) != fields:
        raise InputError(
            f"{path}: option names gives {len(o.names)} column name(s) but the rows have {fields} "
            f"field(s) (delimiter {sep!r}); expected one name per field"
        )
    kwargs: dict[str, Any] = dict(sep=sep, quotechar=o.quotechar, skipinitialspace=o.skipinitialspace,
                                  comment=o.comment, dtype=str, header=0 if o.has_header else None)
    if o.names is not None:
        kwargs["names"] = list(o.names)
    if o.na_values is not None:
        kwargs["na_values"] = list(o.na_values)
    try:
        df = pd.read_csv(io.StringIO(text), skiprows=o.skip_rows or None, engine="c", **kwargs)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: no columns found; expected a header row and data rows") from None
    except Exception as exc:  # ParserError, ValueError, OverflowError...: never leak cell text
        raise InputError(
            f"{path}: could not parse as CSV ({type(exc).__name__}: {_safe(exc)}); "
            "expected rectangular delimited text"
        ) from None
    if len(df.columns) == 1 and o.names is None:
        header = str(df.columns[0])
        for cand, label in ((",", "','"), (";", "';'"), ("\t", "tab"), ("|", "'|'")):
            if cand != sep and cand in header:
                raise InputError(
                    f"{path}: found one column whose header contains {label}; the file looks "
                    f"{label}-delimited, expected {sep!r} (set option delimiter, e.g. --delimiter {cand!r})"
                )
    first_data_line = o.skip_rows + (2 if o.has_header else 1)
    return apply_types(df, o.dtype, source=str(path), first_data_line=first_data_line)


def _safe(exc: Exception) -> str:
    """Keep only the part of a parser message that carries positions, not data."""
    msg = str(exc).splitlines()[0] if str(exc) else ""
    return msg[:120] if "line" in msg or "row" in msg else "parser error"


def _check_structure(
    path: Path, text: str, *, sep: str, quotechar: str, skip_rows: int,
    comment: str | None, skipinitialspace: bool = False,
) -> int:
    """Reject ragged rows and bad quoting with the offending line number.

    pandas silently pads short rows with NaN; a short row almost always means a
    broken export, so we count fields per line ourselves. Unquoted text is
    checked with numpy (fast); quoted text with the csv module (strict).
    """
    if quotechar not in text and comment is None and ord(sep) < 128:
        return _check_unquoted(path, text, sep, skip_rows)
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
    return expected


def _csv_reason(exc: csv.Error) -> str:
    msg = str(exc)
    return "unterminated quoted field" if "EOF" in msg or "newline" in msg else "stray quote"


def _check_unquoted(path: Path, text: str, sep: str, skip_rows: int) -> int:
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
    return int(counts[0]) + 1


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
        pf = pq.ParquetFile(path, pre_buffer=False)  # pre-buffering keeps every row group read: memory grows with the file
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
