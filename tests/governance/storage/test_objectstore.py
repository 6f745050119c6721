"""Object store: round trips, no plaintext on disk, atomic writes, erased keys."""
from __future__ import annotations

import hashlib
import io
import os
import stat
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from governance.storage.crypto import DecryptionError, read_header
from governance.errors import IntegrityFailure
from governance.storage.key_providers import PassphraseProvider
from governance.storage.keyring import DataKey, Keyring, KeyDestroyed
from governance.storage.objectstore import BlobRef, ObjectStore
from governance.storage.store import Base

AD = b"privgov:dataset=clinic;version=1;kind=data"
MARKER = "Zyxwvut-Patient-4711-Secret"


@pytest.fixture()
def tmpdir_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every temp-file API at a directory we can scan afterwards."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


@pytest.fixture()
def env(tmp_path: Path, tmpdir_env: Path):
    root = tmp_path / "ws"
    root.mkdir()
    engine = create_engine(f"sqlite:///{root / 'privgov.db'}")
    Base.metadata.create_all(engine, tables=[DataKey.__table__])
    ring = Keyring.create(root, PassphraseProvider("pw", n=2**10))
    with Session(engine) as s:
        yield root, ObjectStore(root, ring), s


def _files(*dirs: Path) -> list[Path]:
    return [p for d in dirs for p in d.rglob("*") if p.is_file()]


def test_bytes_round_trip_and_addressing(env) -> None:
    root, store, s = env
    data = os.urandom(200_000)
    ref = store.put_bytes(s, data, associated=AD)
    path = root / "objects" / ref.blob_hash[:2] / ref.blob_hash[2:]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ref.blob_hash
    assert ref.content_hash == hashlib.sha256(data).hexdigest() and ref.size == len(data)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_header(io.BytesIO(path.read_bytes())).key_id == f"dk-{ref.data_key_id}"
    assert store.get_bytes(s, ref, associated=AD) == data
    assert store.put_bytes(s, io.BytesIO(b""), associated=AD).size == 0
    other = store.put_bytes(s, data, associated=AD)
    assert other.blob_hash != ref.blob_hash and other.data_key_id != ref.data_key_id


def test_frame_round_trip(env) -> None:
    _, store, s = env
    df = pd.DataFrame({"id": [1, 2, 3], "name": ["a", None, "c"], "x": [0.5, 1.5, float("nan")],
                       "when": pd.to_datetime(["2024-01-01", "2024-02-01", None])})
    ref = store.put_frame(s, df, associated=AD)
    pd.testing.assert_frame_equal(store.get_frame(s, ref, associated=AD), df)
    buf = io.BytesIO()
    df.to_parquet(buf, engine="pyarrow", index=True)
    assert ref.content_hash == hashlib.sha256(buf.getvalue()).hexdigest()


def test_known_value_never_reaches_disk(env, tmpdir_env: Path) -> None:
    root, store, s = env
    df = pd.DataFrame({"name": [MARKER] * 50 + ["other"], "n": range(51)})
    refs = [store.put_frame(s, df, associated=AD), store.put_bytes(s, MARKER.encode() * 1000, associated=AD)]
    s.commit()
    assert store.get_frame(s, refs[0], associated=AD)["name"].iloc[0] == MARKER
    files = _files(root, tmpdir_env)
    assert any(p.parent.parent.name == "objects" for p in files)
    needles = [MARKER.encode(), MARKER.encode("utf-16-le"), MARKER[:12].encode()]
    for p in files:
        raw = p.read_bytes()
        for needle in needles:
            assert needle not in raw, f"{needle!r} found in {p}"


def test_failed_write_leaves_nothing_behind(env, tmpdir_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, store, s = env
    store.put_bytes(s, b"an earlier blob", associated=AD)

    class Exploding(io.RawIOBase):
        """Yields some data, then fails mid-stream (a broken upstream reader)."""

        def __init__(self) -> None:
            self.sent = 0

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            if self.sent > 300_000:
                raise OSError("upstream went away")
            self.sent += n
            return os.urandom(n)

    watched = (root / "objects", root / "keys", tmpdir_env)  # the DB has its own journal
    before = set(_files(*watched))
    assert before
    with pytest.raises(OSError, match="upstream"):
        store.put_bytes(s, Exploding(), associated=AD)
    assert set(_files(*watched)) == before

    def failing_replace(src, dst):
        raise OSError("disk full at rename")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="rename"):
        store.put_bytes(s, os.urandom(100_000), associated=AD)
    assert set(_files(*watched)) == before


def test_wrong_associated_data_and_tampered_blob(env) -> None:
    root, store, s = env
    ref = store.put_bytes(s, b"payload" * 100, associated=AD)
    with pytest.raises(DecryptionError, match="wrong associated data"):
        store.get_bytes(s, ref, associated=b"privgov:dataset=clinic;version=2;kind=data")
    path = store.path_for(ref.blob_hash)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    os.chmod(path, 0o600)
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityFailure, match="does not match its address"):
        store.get_bytes(s, ref, associated=AD)
    path.unlink()
    with pytest.raises(IntegrityFailure, match="missing"):
        store.get_bytes(s, ref, associated=AD)


def test_blob_swapped_to_another_key_is_refused(env) -> None:
    _, store, s = env
    a = store.put_bytes(s, b"a" * 100, associated=AD)
    b = store.put_bytes(s, b"b" * 100, associated=AD)
    swapped = BlobRef(blob_hash=b.blob_hash, data_key_id=a.data_key_id, content_hash=a.content_hash, size=100)
    with pytest.raises(DecryptionError, match="names key"):
        store.get_bytes(s, swapped, associated=AD)
    wrong_content = BlobRef(blob_hash=a.blob_hash, data_key_id=a.data_key_id,
                            content_hash=b.content_hash, size=100)
    with pytest.raises(IntegrityFailure, match="content hash"):
        store.get_bytes(s, wrong_content, associated=AD)


def test_destroyed_key_gives_erased_error_while_others_still_read(env) -> None:
    _, store, s = env
    gone = store.put_frame(s, pd.DataFrame({"v": [1]}), associated=AD)
    kept = store.put_frame(s, pd.DataFrame({"v": [2]}), associated=AD)
    store.keyring.destroy_data_key(s, gone.data_key_id)
    with pytest.raises(KeyDestroyed, match="erased"):
        store.get_frame(s, gone, associated=AD)
    assert store.get_frame(s, kept, associated=AD)["v"].tolist() == [2]


def test_rotation_does_not_touch_blobs(env) -> None:
    root, store, s = env
    ref = store.put_bytes(s, b"x" * 5000, associated=AD)
    before = store.path_for(ref.blob_hash).read_bytes()
    store.keyring.rotate(s)
    store.keyring.retire("kek-1", s)
    assert store.path_for(ref.blob_hash).read_bytes() == before
    assert store.get_bytes(s, ref, associated=AD) == b"x" * 5000


def test_delete_removes_only_that_blob_and_reports_it(env) -> None:
    _, store, s = env
    gone = store.put_bytes(s, b"a" * 100, associated=AD)
    kept = store.put_bytes(s, b"b" * 100, associated=AD)
    assert store.delete(gone) is True
    assert not store.path_for(gone.blob_hash).exists()
    assert store.delete(gone) is False  # idempotent: a second erasure pass finds nothing
    with pytest.raises(IntegrityFailure, match="missing"):
        store.get_bytes(s, gone, associated=AD)
    assert store.get_bytes(s, kept, associated=AD) == b"b" * 100
