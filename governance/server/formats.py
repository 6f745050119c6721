"""A released frame as the bytes of a download (CSV or Parquet), in chunks, in memory.

Why in memory: the workspace promises that no plaintext reaches a disk; the
frame is already decrypted in memory for the release, so its serialization stays
there too. Why chunks: the response streams, so a large CSV is sent as it is
encoded, not held twice.
"""
from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}
CSV_ROWS = 10_000
PARQUET_CHUNK = 1 << 20


def frame_chunks(df: "pd.DataFrame", fmt: str) -> Iterator[bytes]:
    """The bytes of `df` as `fmt` (`csv` with a header row, or `parquet`), in pieces; no index column."""
    if fmt == "parquet":
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        data = buf.getvalue()
        for start in range(0, len(data), PARQUET_CHUNK):
            yield data[start:start + PARQUET_CHUNK]
        return
    for start in range(0, max(len(df), 1), CSV_ROWS):
        yield df.iloc[start:start + CSV_ROWS].to_csv(index=False, header=start == 0).encode("utf-8")
