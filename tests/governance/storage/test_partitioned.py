"""Partitioned versions: an attacker with write access to the object store edits the file set.

Dropped, duplicated, reordered, truncated or swapped partitions (including one
from another version under the same key) and a substituted manifest must all be
refused on read with IntegrityFailure; nothing here needs Spark.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from governance.errors import IntegrityFailure
from governance.storage import partitioned as P
from governance.storage.key_providers import PassphraseProvider
from governance.storage.keyring import DataKey, Keyring
from governance.storage.objectstore import ObjectStore
from governance.storage.store import Base

MARKER = "Zyxwvut-Patient-4711-Secret"


def _parts(frame: pd.DataFrame, n: int) -> list[tuple[bytes, int]]:
    out = []
    for chunk in [frame.iloc[i::n] for i in range(n)]:
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(chunk.reset_index(drop=True), preserve_index=False), buf)
        out.append((buf.getvalue(), len(chunk)))
    return out


def _frame(n: int = 30, tag: str = "a") -> pd.DataFrame:
    return pd.DataFrame({"row_id": range(n), "name": [f"{MARKER}-{tag}-{i}" for i in range(n)],
                         "age": [i % 90 for i in range(n)]})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("ws")
    engine = create_engine(f"sqlite:///{root / 'privgov.db'}")
    Base.metadata.create_all(engine, tables=[DataKey.__table__])
    ring = Keyring.create(root, PassphraseProvider("pw", n=2**10))
    with Session(engine) as s:
        key_id, key = ring.new_data_key(s)
        s.commit()
    yield ObjectStore(root, ring), key_id, key


def _write(store, version: int, frame: pd.DataFrame, n: int = 3):
    objects, key_id, key = store
    b = P.Binding("clinic", version, "data", key_id)
    sealed = [P.seal_partition(b, key, i, data, rows) for i, (data, rows) in enumerate(_parts(frame, n))]
    address, content_hash, entries = P.store_partitions(objects, b, key, iter(sealed))
    return b, address, content_hash, entries


def _rewrite_manifest(store, b: P.Binding, entries: list[P.Entry]) -> tuple[str, str]:
    """What an attacker *cannot* do without the data key; used to show the per-file checks stand alone."""
    objects, _, key = store
    blob, content_hash = P.seal_manifest(b, key, entries)
    return objects.put_sealed(blob), content_hash


def test_round_trip_and_no_plaintext_on_disk(store) -> None:
    objects, _, key = store
    frame = _frame()
    b, address, content_hash, entries = _write(store, 1, frame)
    back = P.read_frame(objects, b, key, address, content_hash).sort_values("row_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(back, pd.read_parquet(_buf(frame)), check_dtype=True)
    assert [e.index for e in entries] == [0, 1, 2]
    for f in objects.dir.rglob("*"):
        if f.is_file():
            assert MARKER.encode() not in f.read_bytes()


def _buf(frame: pd.DataFrame) -> io.BytesIO:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    buf.seek(0)
    return buf


def test_manifest_of_another_version_is_refused(store) -> None:
    objects, _, key = store
    b1, a1, h1, _ = _write(store, 11, _frame(tag="v11"))
    _, a2, h2, _ = _write(store, 12, _frame(tag="v12"))
    with pytest.raises(IntegrityFailure):  # the version row of 11 pointed at 12's manifest
        P.read_table(objects, b1, key, a2, h2)
    with pytest.raises(IntegrityFailure):  # ... even with 12's content hash
        P.read_table(objects, b1, key, a2, h1)


def test_missing_or_edited_partition_file(store) -> None:
    objects, _, key = store
    b, address, content_hash, entries = _write(store, 21, _frame())
    path = objects.path_for(entries[1].sha256)
    raw = path.read_bytes()
    path.write_bytes(raw[:-5])  # truncated in place
    with pytest.raises(IntegrityFailure):
        P.read_table(objects, b, key, address, content_hash)
    path.unlink()  # gone
    with pytest.raises(IntegrityFailure, match="missing"):
        P.read_table(objects, b, key, address, content_hash)
    path.write_bytes(raw)
    assert P.read_table(objects, b, key, address, content_hash).num_rows == 30


OPS = st.sampled_from(["drop", "duplicate", "reorder", "swap_other_version", "truncate_list", "wrong_rows"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(op=OPS, which=st.integers(0, 3))
def test_forged_manifest_file_sets_are_refused(store, op: str, which: int) -> None:
    """Even an attacker who could re-seal the manifest (a key holder) cannot move files between slots:
    every partition is bound to its index and version; the unforged manifest catches the rest."""
    objects, _, key = store
    version = 100 + int.from_bytes(os.urandom(3), "big")
    b, address, content_hash, entries = _write(store, version, _frame(40), n=4)
    _, _, _, others = _write(store, version + 1, _frame(40, tag="other"), n=4)
    i = which % len(entries)
    forged = list(entries)
    if op == "drop":
        del forged[i]
    elif op == "duplicate":
        forged.insert(i, forged[i])
    elif op == "reorder":
        j = (i + 1) % len(forged)
        forged[i], forged[j] = forged[j], forged[i]
    elif op == "swap_other_version":
        forged[i] = others[i]
    elif op == "truncate_list":
        forged = forged[:i]
    elif op == "wrong_rows":
        forged[i] = P.Entry(forged[i].index, forged[i].rows + 1, forged[i].sha256, forged[i].content_sha256)
    # renumber so the list itself looks well-formed: the per-file binding must still refuse
    forged = [P.Entry(k, e.rows, e.sha256, e.content_sha256) for k, e in enumerate(forged)]
    new_address, new_hash = _rewrite_manifest(store, b, forged)
    with pytest.raises(IntegrityFailure):
        P.read_table(objects, b, key, new_address, content_hash)  # the version row's recorded hash
    if op not in ("drop", "truncate_list"):  # a re-sealed manifest with a matching hash: the files still refuse
        with pytest.raises(IntegrityFailure):
            P.read_table(objects, b, key, new_address, new_hash)


def test_manifest_indexes_must_be_dense(store) -> None:
    objects, _, key = store
    b, _, _, entries = _write(store, 31, _frame())
    gap = [entries[0], P.Entry(2, entries[2].rows, entries[2].sha256, entries[2].content_sha256)]
    address, content_hash = _rewrite_manifest(store, b, gap)
    with pytest.raises(IntegrityFailure, match="numbered"):
        P.read_table(objects, b, key, address, content_hash)


def test_failed_write_leaves_no_file(store, tmp_path: Path) -> None:
    objects, key_id, key = store
    before = {p for p in objects.dir.rglob("*") if p.is_file()}
    b = P.Binding("clinic", 41, "data", key_id)

    def broken():
        for i, (data, rows) in enumerate(_parts(_frame(), 3)):
            if i == 2:
                raise RuntimeError("executor lost")
            yield P.seal_partition(b, key, i, data, rows)

    with pytest.raises(RuntimeError):
        P.store_partitions(objects, b, key, broken())
    assert {p for p in objects.dir.rglob("*") if p.is_file()} == before
