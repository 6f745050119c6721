"""Erasure that erases: copies of the workspace taken before and after `dataset erase`.

B is the whole workspace directory copied before the erasure (a backup), C the
whole directory copied after it. The original is deleted once C exists, so
nothing below can reach key files through it. Also here (the task's one new
test file): every file a workspace creates is private.
"""
from __future__ import annotations

import base64
import io
import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pandas as pd
import pytest
from cryptography.exceptions import InvalidTag

from governance.storage import catalog
from governance.cli import main
from governance.storage.crypto import DecryptionError, decrypt_stream
from governance.errors import InputError, IntegrityFailure
from governance.storage.keyring import KeyDestroyed, _unwrap
from governance.storage.objectstore import BlobRef
from governance.workspace import Workspace


def _frame(seed: int, n: int = 200) -> pd.DataFrame:
    return pd.DataFrame({"row_id": range(n), "patient": [f"p{seed}-{i}" for i in range(n)],
                         "age": [(seed * 7 + i) % 90 for i in range(n)]})


def _candidate_keks(keys_dir: Path) -> list[bytes]:
    """Every file in keys/ that could be a KEK (32 raw or base64 bytes): what an attacker would try."""
    out = []
    for f in keys_dir.iterdir():
        raw = f.read_bytes()
        for key in (raw, _try_b64(raw)):
            if key is not None and len(key) == 32:
                out.append(key)
    return out


def _try_b64(raw: bytes) -> bytes | None:
    try:
        return base64.b64decode(raw.strip(), validate=True)
    except ValueError:
        return None


def _data_key_rows(db: Path) -> list[tuple[int, str, bytes | None]]:
    with sqlite3.connect(db) as con:
        return list(con.execute("SELECT id, kek_id, wrapped FROM data_keys"))


def _decrypts(blob: bytes, key: bytes, associated: bytes) -> bool:
    try:
        decrypt_stream(io.BytesIO(blob), io.BytesIO(), lambda _kid, _w: key, associated=associated)
    except DecryptionError:
        return False
    return True


def _unwrapped_keys(rows, keks: list[bytes]) -> list[tuple[int, bytes]]:
    """Every (row id, data key) any candidate KEK unwraps, under any plausible KEK id."""
    found = []
    for row_id, kek_id, wrapped in rows:
        if wrapped is None:
            continue
        for kek in keks:
            for kid in {kek_id, *(f"kek-{n}" for n in range(1, 6))}:
                try:
                    found.append((row_id, _unwrap(kek, kid, f"data-key:{row_id}", wrapped)))
                except InvalidTag:
                    pass
    return found


def _db_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.glob("privgov.db*")))


@pytest.fixture
def erased(workspace, tmp_path, capsys):
    """Versions v1 (to erase), q (its quarantine child), v2; copies B (before) and C (after)."""
    ws, tokens = workspace
    frames = {"v1": _frame(1), "q": _frame(5, 20), "v2": _frame(2)}
    with ws.session() as s:
        ds = catalog.get_or_create_dataset(s, "people", privacy_unit=None, row_id_column="row_id", tags=[])
        v1 = catalog.write_version(ws, s, ds, frames["v1"])
        q = catalog.write_version(ws, s, ds, frames["q"], kind="quarantine", parent_id=v1.id)
        v2 = catalog.write_version(ws, s, ds, frames["v2"])
        ws.audit.record(s, principal="admin", action="ingest", decision="info", resource="people")
        ws.audit.checkpoint(s)
    rows = {"v1": v1, "q": q, "v2": v2}
    ws.engine.dispose()
    b, c = tmp_path / "B", tmp_path / "C"
    shutil.copytree(ws.root, b)
    code = main(["dataset", "erase", "people", "--version", str(v1.version), "-w", str(ws.root),
                 "--token", tokens["admin"]])
    out = capsys.readouterr().out
    assert code == 0, out
    shutil.copytree(ws.root, c)
    shutil.rmtree(ws.root)  # from here on only the copies exist
    return {"B": b, "C": c, "rows": rows, "frames": frames, "out": out}


def test_after_copy_cannot_decrypt_erased_version_by_any_route(erased) -> None:
    b, c, v1 = erased["B"], erased["C"], erased["rows"]["v1"]
    assoc = catalog.associated_data("people", v1.version, "data")
    blob_b = (b / "objects" / v1.blob_hash[:2] / v1.blob_hash[2:]).read_bytes()
    # the route works on the copy taken before: proves the checks below can see a key if one is there
    assert any(_decrypts(blob_b, key, assoc)
               for rid, key in _unwrapped_keys(_data_key_rows(b / "privgov.db"), _candidate_keks(b / "keys"))
               if rid == v1.data_key_id)

    ws_c = Workspace.open(c)
    with ws_c.session() as s:
        ds = catalog.find_dataset(s, "people")
        with pytest.raises(InputError, match="erased"):
            catalog.read_version(ws_c, s, ds, catalog.get_version(s, ds, v1.version))
        ref = BlobRef(blob_hash=v1.blob_hash, data_key_id=v1.data_key_id, content_hash=v1.content_hash, size=0)
        with pytest.raises(KeyDestroyed):
            ws_c.objects.get_bytes(s, ref, associated=assoc)
    ws_c.engine.dispose()
    assert not (c / "objects" / v1.blob_hash[:2] / v1.blob_hash[2:]).exists()
    rows_c = _data_key_rows(c / "privgov.db")
    assert [w for rid, _k, w in rows_c if rid == v1.data_key_id] == [None]
    for _rid, key in _unwrapped_keys(rows_c, _candidate_keks(c / "keys")):
        assert not _decrypts(blob_b, key, assoc)


def test_after_copy_database_files_hold_no_old_wrapped_key(erased) -> None:
    b, c, v1 = erased["B"], erased["C"], erased["rows"]["v1"]
    before = _db_bytes(b)  # raw bytes first: opening B with sqlite3 may checkpoint it
    wrapped = dict((rid, w) for rid, _k, w in _data_key_rows(b / "privgov.db"))
    old = wrapped[v1.data_key_id]
    assert old and old in before
    after = _db_bytes(c)
    assert old not in after
    assert not (c / "privgov.db-wal").exists() or (c / "privgov.db-wal").stat().st_size == 0  # checkpointed
    assert not any(w in after for w in wrapped.values() if w)  # rotation left no old wrapping behind


def test_workspace_connections_zero_deleted_bytes(tmp_path) -> None:
    from sqlalchemy import text

    from governance.storage.store import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA secure_delete")).scalar() == 1
    engine.dispose()


def test_before_database_with_after_keys_cannot_decrypt(erased, tmp_path) -> None:
    b, c, v1 = erased["B"], erased["C"], erased["rows"]["v1"]
    assert not (c / "keys" / "kek.key").exists()  # kek-1's file was destroyed
    mixed = tmp_path / "D"
    shutil.copytree(b, mixed)
    shutil.rmtree(mixed / "keys")
    shutil.copytree(c / "keys", mixed / "keys")
    assoc = catalog.associated_data("people", v1.version, "data")
    blob_b = (b / "objects" / v1.blob_hash[:2] / v1.blob_hash[2:]).read_bytes()
    for _rid, key in _unwrapped_keys(_data_key_rows(mixed / "privgov.db"), _candidate_keks(c / "keys")):
        assert not _decrypts(blob_b, key, assoc)
    ws_d = Workspace.open(mixed)
    with ws_d.session() as s:
        ds = catalog.find_dataset(s, "people")
        with pytest.raises(IntegrityFailure, match="kek-1"):
            catalog.read_version(ws_d, s, ds, catalog.get_version(s, ds, v1.version))
    ws_d.engine.dispose()


def test_after_copy_still_reads_the_rest_and_audit_verifies(erased) -> None:
    from tests.governance.run.test_runner import cli

    c, rows, frames = erased["C"], erased["rows"], erased["frames"]
    ws_c = Workspace.open(c)
    with ws_c.session() as s:
        ds = catalog.find_dataset(s, "people")
        got = catalog.read_version(ws_c, s, ds, catalog.get_version(s, ds, rows["v2"].version))
        pd.testing.assert_frame_equal(got, frames["v2"])
        # the derived quarantine version is flagged, not shredded: still readable
        q = catalog.read_version(ws_c, s, ds, catalog.get_version(s, ds, rows["q"].version))
        pd.testing.assert_frame_equal(q, frames["q"])
    ws_c.engine.dispose()
    assert ws_c.keyring.kek_ids == ["kek-2"]
    res = cli("audit", "verify", "-w", str(c))
    assert res.returncode == 0, res.stderr
    out = erased["out"]
    assert "KEK rotated to kek-2" in out and "['kek-1']" in out
    for honest in ("source file", "budget", "backups", "exported"):
        assert honest in out


def test_passphrase_erasure_drops_salt_and_says_what_it_cannot_destroy(tmp_path, monkeypatch) -> None:
    from governance.storage.store import DatasetVersion

    monkeypatch.setenv("PRIVGOV_PASSPHRASE", "pw for erasure")
    ws = Workspace.create(tmp_path / "ws", key_provider="passphrase", passphrase="pw for erasure")
    with ws.session() as s:
        ds = catalog.get_or_create_dataset(s, "people", privacy_unit=None, row_id_column="row_id", tags=[])
        catalog.write_version(ws, s, ds, _frame(1))
    with ws.session() as s:
        ds = catalog.find_dataset(s, "people")
        rep = catalog.erase_version(ws, s, ds, 1)
    catalog.finalize_erasure(ws, rep)
    assert rep.rotated_to == "kek-2" and rep.retired_keks == ["kek-1"] and rep.blobs_deleted == 1
    assert rep.database_compacted
    assert any("cannot destroy a passphrase" in n for n in rep.not_covered)
    import json

    assert list(json.loads((ws.root / "keys" / "keyring.json").read_text())["keks"]) == ["kek-2"]
    with ws.session() as s:
        assert s.query(DatasetVersion).one().erased_at is not None


def test_every_workspace_file_is_private_after_a_run_and_an_erasure(tmp_path, capsys) -> None:
    """Belongs with governance/workspace.py; here because this task adds only this test file."""
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline
    from tests.conftest import new_workspace
    from tests.governance.run.test_runner import small_spec

    old = os.umask(0o022)  # the usual umask: private modes must not depend on it
    try:
        ws, tokens = new_workspace(tmp_path / "fresh", {"admin": ("admin", ["admin"]),
                                                       "demo": ("demo-ml-engineer", ["ml-engineer", "data-engineer"])})
        summary = run_pipeline(ws, load_pipeline(small_spec(tmp_path)), tokens["demo"])
        assert summary.status == "succeeded"
        assert main(["dataset", "erase", "clinic-visits", "--version", str(summary.version), "-w", str(ws.root),
                     "--token", tokens["admin"]]) == 0
    finally:
        os.umask(old)
    seen = {p.name for p in ws.root.rglob("*")}
    assert {"privgov.db", "workspace.json", "run.lock", "objects", "keys", "kek.key.kek-2"} <= seen
    assert stat.S_IMODE(ws.root.stat().st_mode) == 0o700
    for p in ws.root.rglob("*"):
        mode = stat.S_IMODE(p.lstat().st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), f"{p} has mode {mode:04o}"
    # -wal/-shm exist while a connection is open: SQLite gives them the database's mode
    con = sqlite3.connect(ws.root / "privgov.db")
    try:
        con.execute("SELECT count(*) FROM data_keys").fetchone()
        for side in ("privgov.db-wal", "privgov.db-shm"):
            assert stat.S_IMODE((ws.root / side).stat().st_mode) == 0o600
    finally:
        con.close()
