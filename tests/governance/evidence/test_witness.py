"""Audit witness: append-only file sink, reading it back, and appending only after commit."""
from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from governance.evidence.audit import AuditCheckpoint, AuditLog
from governance.errors import InputError, WorkspaceError
from governance.evidence.witness import FileWitness, WitnessHead, read_witness, resolve_witness_path


def head(seq: int) -> WitnessHead:
    return WitnessHead(seq=seq, head_hash=f"{seq:02d}" * 32, ts="2026-12-01T00:00:00.000000Z",
                       key_id="ab" * 8, signature="cd" * 64)


@pytest.fixture()
def witness(tmp_path) -> FileWitness:
    return FileWitness(tmp_path / "witness.jsonl")


@pytest.fixture()
def audit(witness) -> AuditLog:
    return AuditLog(None, Ed25519PrivateKey.generate(), checkpoint_every=None, witness=witness)


def lines(w: FileWitness) -> list[WitnessHead]:
    return [h for _, h in read_witness(w.path)] if w.path.exists() else []


def checkpoint_rows(engine) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(AuditCheckpoint))


def test_file_witness_appends_after_existing_lines_with_mode_0600(witness):
    witness.append(head(5))
    assert stat.S_IMODE(witness.path.stat().st_mode) == 0o600
    witness.append(head(10))
    assert read_witness(witness.path) == [(1, head(5)), (2, head(10))]
    record = json.loads(witness.path.read_text().splitlines()[0])
    assert record["format"] == "privgov-audit-witness/1" and record["seq"] == 5


def test_unwritable_witness_is_a_workspace_error_naming_the_file(tmp_path):
    sink = FileWitness(tmp_path / "no-such-dir" / "witness.jsonl")
    with pytest.raises(WorkspaceError, match="no-such-dir.*seq 7"):
        sink.append(head(7))


def test_malformed_witness_line_names_file_and_line(witness):
    witness.append(head(5))
    with open(witness.path, "a") as fh:
        fh.write('{"format": "privgov-audit-witness/1", "seq": "x"}\n')
    with pytest.raises(InputError, match=r"witness.jsonl:2: not a witness line"):
        read_witness(witness.path)


def test_missing_witness_file_is_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_witness(tmp_path / "gone.jsonl")


def test_witness_path_from_workspace_config(tmp_path):
    assert resolve_witness_path(tmp_path, {}) == tmp_path / "audit-witness.jsonl"
    assert resolve_witness_path(tmp_path, {"audit_witness": "w/heads.jsonl"}) == tmp_path / "w" / "heads.jsonl"
    assert resolve_witness_path(tmp_path, {"audit_witness": "/srv/audit/heads.jsonl"}) == Path("/srv/audit/heads.jsonl")


# --------------------------------------------------------------------------- only after commit


def test_committed_checkpoint_reaches_the_witness_with_its_signature(engine, audit, witness):
    with Session(engine) as s, s.begin():
        audit.record(s, principal="demo", action="ingest")
        audit.checkpoint(s)
        assert lines(witness) == []  # not before the commit
    [h] = lines(witness)
    with Session(engine) as s:
        row = s.scalars(select(AuditCheckpoint)).one()
    assert (h.seq, h.head_hash, h.ts, h.key_id, h.signature) == (row.seq, row.head_hash, row.ts, row.key_id,
                                                                  row.signature)


def test_rolled_back_checkpoint_leaves_no_witness_line(engine, audit, witness):
    with Session(engine) as s:
        audit.record(s, principal="demo", action="ingest")
        audit.checkpoint(s)
        s.rollback()
        # the same session goes on to commit other work: the rolled-back head must not follow it
        audit.record(s, principal="demo", action="ingest")
        s.commit()
    assert checkpoint_rows(engine) == 0 and lines(witness) == []


def test_session_closed_without_commit_leaves_no_witness_line(engine, audit, witness):
    s = Session(engine)
    audit.record(s, principal="demo", action="ingest")
    audit.checkpoint(s)
    s.close()
    assert checkpoint_rows(engine) == 0 and lines(witness) == []


def test_exception_inside_the_transaction_leaves_no_witness_line(engine, audit, witness):
    with pytest.raises(RuntimeError), Session(engine) as s, s.begin():
        audit.record(s, principal="demo", action="ingest")
        audit.checkpoint(s)
        raise RuntimeError("the work the event describes failed")
    assert checkpoint_rows(engine) == 0 and lines(witness) == []


def test_savepoints(engine, audit, witness):
    """A head written in a rolled-back savepoint is dropped; one in a released savepoint
    waits for the outer commit, and is dropped if the outer transaction rolls back."""
    with Session(engine) as s:
        audit.record(s, principal="demo", action="ingest")
        sp = s.begin_nested()
        audit.checkpoint(s)
        sp.rollback()
        sp = s.begin_nested()
        audit.record(s, principal="demo", action="train")
        audit.checkpoint(s)
        sp.commit()
        assert lines(witness) == []
        s.commit()
    assert [h.seq for h in lines(witness)] == [2] and checkpoint_rows(engine) == 1
    with Session(engine) as s:
        audit.record(s, principal="demo", action="train")  # opens the outer transaction (BEGIN IMMEDIATE)
        sp = s.begin_nested()
        audit.checkpoint(s)
        sp.commit()
        s.rollback()
    assert [h.seq for h in lines(witness)] == [2] and checkpoint_rows(engine) == 1
