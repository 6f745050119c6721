"""Exact distinct counts and duplicate finding over more 64-bit keys than memory should hold.

Why: a streamed run must count the distinct privacy units of the version it stores, find the
duplicated values of a uniqueness expectation and check that a file's own row ids are unique -
exactly, whatever the file size. One key per row held in memory grows with the file (8-16 bytes a
row, three times that while arrays are merged), which is what made a streamed run's peak memory
grow with its input. Here keys are kept in memory up to a fixed number (`memory_keys`), then
partitioned by their top bits into files on disk; at the end each partition is sorted on its own,
so memory holds one partition (about rows / 256 keys) instead of all of them.

What reaches the disk: 64-bit keys and, where duplicates must be named, row ids (never values).
Keys of values come from pandas' SipHash with a random hash key made per instance and never
stored, so a spill file cannot be matched against guessed values (an unkeyed hash of an SSN
column could be brute-forced). Integer row ids are used as their own keys (exact, no collisions).
The files live in a fresh private directory (mode 0700, under `directory` or the system temp
directory) that is removed by :meth:`close`, on any exit of a ``with`` block and, failing
both, when the object is collected.

A 64-bit hash collision could make two distinct values look like one: a distinct count one too
low or two rows reported as duplicates (probability about n^2 / 2^65, below 3e-6 at 10^7 keys);
a real duplicate is never missed.
"""
from __future__ import annotations

import secrets
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PARTITIONS = 256
MEMORY_KEYS = 1 << 20  # 8 MiB of keys (+ 8 MiB of ids) before anything is written to disk
_MIX = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads sequential ids over the partitions


class KeySpill:
    """Collect uint64 keys (optionally with int64 row ids); then :meth:`distinct` or :meth:`duplicated_ids`."""

    def __init__(self, *, with_ids: bool = False, directory: Path | str | None = None,
                 memory_keys: int | None = None) -> None:
        self.with_ids = with_ids
        self.memory_keys = max(1, int(MEMORY_KEYS if memory_keys is None else memory_keys))
        self._parent = Path(directory) if directory is not None else None
        self._dir: Path | None = None
        self._keys: list[np.ndarray] = []
        self._ids: list[np.ndarray] = []
        self._held = 0
        self.count = 0
        # pandas' hash_key is 16 characters; random per instance, never written anywhere
        self._hash_key = secrets.token_hex(8)
        self._finalizer: Any = None

    # ---- input
    def hash(self, values: pd.Series | pd.DataFrame) -> np.ndarray:
        """Keyed 64-bit hashes of the rows of ``values`` (nulls included as they are: drop them first)."""
        return pd.util.hash_pandas_object(values, index=False, hash_key=self._hash_key).to_numpy(dtype=np.uint64)

    def add(self, keys: np.ndarray, ids: np.ndarray | None = None) -> None:
        """Add keys (and their row ids when ``with_ids``); spills to disk past ``memory_keys``."""
        keys = np.ascontiguousarray(keys).view(np.uint64) if keys.dtype != np.uint64 else keys
        if self.with_ids:
            if ids is None or len(ids) != len(keys):
                raise ValueError("KeySpill(with_ids=True).add needs one row id per key")
            self._ids.append(np.asarray(ids, dtype=np.int64))
        self._keys.append(keys)
        self._held += len(keys)
        self.count += len(keys)
        if self._held > self.memory_keys:
            self._flush()

    @property
    def spilled(self) -> bool:
        """Whether any key went to disk (tests use it to show the disk path runs)."""
        return self._dir is not None

    def _partition_of(self, keys: np.ndarray) -> np.ndarray:
        return ((keys * _MIX) >> np.uint64(56)).astype(np.intp)

    def _flush(self) -> None:
        if not self._held:
            return
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="privgov-keys-", dir=self._parent))  # 0700
            self._finalizer = weakref.finalize(self, shutil.rmtree, str(self._dir), True)
        keys = np.concatenate(self._keys)
        ids = np.concatenate(self._ids) if self.with_ids else None
        self._keys, self._ids, self._held = [], [], 0
        part = self._partition_of(keys)
        order = np.argsort(part, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(part, minlength=PARTITIONS))])
        keys = keys[order]
        ids = ids[order] if ids is not None else None
        for p in range(PARTITIONS):
            lo, hi = int(bounds[p]), int(bounds[p + 1])
            if lo == hi:
                continue
            with open(self._dir / f"{p:03d}.k", "ab") as fh:
                keys[lo:hi].tofile(fh)
            if ids is not None:
                with open(self._dir / f"{p:03d}.i", "ab") as fh:
                    ids[lo:hi].tofile(fh)

    def _partitions(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Every key (with ids) grouped so that equal keys share a group: one partition at a time."""
        if self._dir is None:
            keys = np.concatenate(self._keys) if self._keys else np.empty(0, dtype=np.uint64)
            ids = (np.concatenate(self._ids) if self._ids else np.empty(0, dtype=np.int64)) if self.with_ids else None
            yield keys, ids
            return
        self._flush()
        for p in range(PARTITIONS):
            kf = self._dir / f"{p:03d}.k"
            if not kf.exists():
                continue
            keys = np.fromfile(kf, dtype=np.uint64)
            ids = np.fromfile(self._dir / f"{p:03d}.i", dtype=np.int64) if self.with_ids else None
            yield keys, ids

    # ---- answers
    def distinct(self) -> int:
        """How many distinct keys were added."""
        return sum(int(len(np.unique(keys))) for keys, _ in self._partitions())

    def duplicated_ids(self) -> np.ndarray:
        """Sorted row ids of every key that occurs more than once (all its occurrences)."""
        if not self.with_ids:
            raise ValueError("KeySpill(with_ids=False) holds no row ids")
        found = [duplicated(keys, ids) for keys, ids in self._partitions() if ids is not None]
        return np.sort(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)

    def repeat_ids(self, keep: str = "first") -> np.ndarray:
        """Sorted ids of every occurrence but one of each key: all but the smallest id (``keep="first"``)
        or all but the largest (``"last"``) - what ``DataFrame.duplicated(keep=...)`` marks, with ids as
        row order."""
        if not self.with_ids:
            raise ValueError("KeySpill(with_ids=False) holds no row ids")
        found = []
        for keys, ids in self._partitions():
            assert ids is not None
            if len(keys) < 2:
                continue
            order = np.lexsort((ids if keep == "first" else -ids, keys))
            ks = keys[order]
            found.append(ids[order[1:][ks[1:] == ks[:-1]]])
        return np.sort(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)

    # ---- lifetime
    def close(self) -> None:
        """Remove the spill directory (idempotent)."""
        self._keys, self._ids, self._held = [], [], 0
        if self._finalizer is not None:
            self._finalizer()
        self._dir = None

    def __enter__(self) -> "KeySpill":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def duplicated(keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The ids whose key occurs more than once among ``keys`` (every occurrence, in key order)."""
    if len(keys) < 2:
        return ids[:0]
    order = np.argsort(keys, kind="stable")
    ks = keys[order]
    same = ks[1:] == ks[:-1]
    dup = np.zeros(len(ks), dtype=bool)
    dup[1:] |= same
    dup[:-1] |= same
    return ids[order[dup]]
