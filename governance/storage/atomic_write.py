"""Write a file all at once or not at all: the one home for atomic writes.

Why: exports, reports, suites and predictions are read by other tools
(pipelines pick them up by name). A crash or a bad row half-way must never
leave a truncated file under the final name, nor a stray temp file beside it.
Key material (:func:`write_private`) is also fsynced, file and directory, and
created 0600 from the first byte, whatever the umask.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing pandas here would slow every command that writes a file
    import pandas as pd


@contextmanager
def atomic_path(out: Path) -> Iterator[Path]:
    """A temp path beside `out`: renamed over `out` if the block succeeds, removed if it fails."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(out: Path, text: str) -> None:
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_frame(df: "pd.DataFrame", out: Path) -> None:
    """Parquet when the name ends in .parquet, CSV otherwise; no index column."""
    with atomic_path(out) as tmp:
        if Path(out).suffix.lower() == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)


def write_private(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` atomically to ``path`` with mode 0600 (temp file, fsync, rename)."""
    if exclusive:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return
    tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink inside ``directory`` durable (fsync the directory itself)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
