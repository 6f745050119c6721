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
    """Write ``data`` to ``path`` with mode 0600: through a temp file renamed over ``path``,
    or, with ``exclusive``, into a new file that must not exist yet. Fsynced either way."""
    if exclusive:
        _write_synced(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), data)
        return
    with atomic_path(path) as tmp:
        _write_synced(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), data)
    fsync_dir(path.parent)


def _write_synced(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink inside ``directory`` durable (fsync the directory itself)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
