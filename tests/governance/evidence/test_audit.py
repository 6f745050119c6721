"""Audit log: chain, checkpoints, the tamper matrix, exports, concurrency."""
from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from sqlalchemy.orm import Session

from governance.evidence.audit import AuditLog, event_hash, public_key_bytes, verify_file
from governance.errors import InputError, IntegrityFailure
from governance.storage.store import Base, make_engine

ROOT = Path(__file__).resolve().parents[3]
N_EVENTS = 12


@pytest.fixture()
def key():
    return Ed25519PrivateKey.generate()


@pytest.fixture()
def log(engine, key):
    """12 events, checkpoints signed at seq 5 and 10."""
    audit = AuditLog(lambda: Session(engine), key, checkpoint_every=5)
    with Session(engine) as s, s.begin():
        for i in range(N_EVENTS):
            audit.record(s, principal="demo", action="train" if i % 2 else "ingest",
                         decision="allow" if i % 3 else "deny", resource="clinic-visits", version=1,
                         purpose="readmission-model", reason=f"grant {i}", epsilon=0.5 if i % 2 else None,
                         details={"rows": 100 + i, "row_ids": [1, 2, 3], "content_hash": "ab" * 32})
    return audit


def verify(engine, audit):
    with Session(engine) as s:
        return audit.verify(s)


def sql(engine, *stmts, **params):
    with engine.begin() as c:
        for st in stmts:
            c.execute(text(st), params)


def row(engine, seq):
    with engine.connect() as c:
        r = c.execute(text("SELECT * FROM audit_events WHERE seq=:s"), {"s": seq}).mappings().one()
    d = dict(r)
    d["details"] = json.loads(d["details"]) if isinstance(d["details"], str) else d["details"]
    return d


def rehash(engine, seq, prev_hash=None):
    d = row(engine, seq)
    if prev_hash is not None:
        d["prev_hash"] = prev_hash
    h = event_hash(d)
    sql(engine, "UPDATE audit_events SET hash=:h, prev_hash=:p WHERE seq=:s", h=h, p=d["prev_hash"], s=seq)
    return h


def assert_named(report, *fragments):
    assert not report.ok
    joined = " | ".join(report.problems)
    for frag in fragments:
        assert frag in joined, f"{frag!r} not in {joined}"


def test_clean_log_verifies(engine, log):
    r = verify(engine, log)
    assert r.ok, r.problems
    assert (r.events, r.checkpoints, r.head_seq) == (N_EVENTS, 2, N_EVENTS)


def test_events_are_hash_chained(engine, log):
    first, second = row(engine, 1), row(engine, 2)
    assert first["prev_hash"] == "0" * 64
    assert second["prev_hash"] == first["hash"] == event_hash(first)


def test_edited_event_is_named(engine, log):
    sql(engine, "UPDATE audit_events SET reason='nothing to see' WHERE seq=3")
    assert_named(verify(engine, log), "event seq 3: edited")


def test_edited_epsilon_is_named(engine, log):
    sql(engine, "UPDATE audit_events SET epsilon=0.01 WHERE seq=4")
    assert_named(verify(engine, log), "event seq 4: edited")


def test_edited_and_rehashed_event_breaks_the_link(engine, log):
    sql(engine, "UPDATE audit_events SET decision='info' WHERE seq=3")
    rehash(engine, 3)
    assert_named(verify(engine, log), "event seq 4: chain broken", "seq 3")


def test_deleted_event_is_named(engine, log):
    sql(engine, "DELETE FROM audit_events WHERE seq=3")
    assert_named(verify(engine, log), "event seq 3: deleted")


def test_deleted_first_event_is_named(engine, log):
    sql(engine, "DELETE FROM audit_events WHERE seq=1")
    assert_named(verify(engine, log), "event seq 1: deleted")


def test_inserted_event_is_named(engine, log):
    # Make room at seq 3 (two steps: seq is the primary key), then forge a well-formed event there.
    sql(engine, "UPDATE audit_events SET seq = -(seq + 1) WHERE seq >= 3", "UPDATE audit_events SET seq = -seq WHERE seq < 0")
    forged = dict(row(engine, 2))
    forged.update(seq=3, prev_hash=forged["hash"], reason="forged", details={"rows": 1})
    forged["hash"] = event_hash(forged)
    forged["details"] = json.dumps(forged["details"])
    sql(engine, "INSERT INTO audit_events (seq, ts, principal, action, resource, version, purpose, decision, reason,"
                " epsilon, details, prev_hash, hash) VALUES (:seq, :ts, :principal, :action, :resource, :version,"
                " :purpose, :decision, :reason, :epsilon, :details, :prev_hash, :hash)", **forged)
    assert_named(verify(engine, log), "event seq 3: inserted")


def test_reordered_events_are_named(engine, log):
    sql(engine, "UPDATE audit_events SET seq = -1 WHERE seq = 3", "UPDATE audit_events SET seq = 3 WHERE seq = 4",
        "UPDATE audit_events SET seq = 4 WHERE seq = -1")
    assert_named(verify(engine, log), "event seq 3: reordered", "event seq 4: reordered")


def test_reordered_and_rehashed_events_are_named(engine, log):
    sql(engine, "UPDATE audit_events SET seq = -1 WHERE seq = 3", "UPDATE audit_events SET seq = 3 WHERE seq = 4",
        "UPDATE audit_events SET seq = 4 WHERE seq = -1")
    rehash(engine, 3)
    rehash(engine, 4)
    report = verify(engine, log)
    assert_named(report, "event seq 3: reordered")
    assert not any("edited" in p or "renumbered" in p for p in report.problems)


def test_truncation_past_checkpoint_is_named(engine, log):
    sql(engine, "DELETE FROM audit_events WHERE seq > 7")
    assert_named(verify(engine, log), "log truncated", "seq 10", "seq 7")


def test_wiping_every_event_is_detected(engine, log):
    sql(engine, "DELETE FROM audit_events")
    assert_named(verify(engine, log), "log truncated")


def test_bad_checkpoint_signature_is_named(engine, log):
    with engine.connect() as c:
        sig = c.execute(text("SELECT signature FROM audit_checkpoints WHERE seq=10")).scalar_one()
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    sql(engine, "UPDATE audit_checkpoints SET signature=:sig WHERE seq=10", sig=flipped)
    assert_named(verify(engine, log), "checkpoint seq 10: bad signature")


def test_forged_checkpoint_head_fails_signature(engine, log):
    sql(engine, "UPDATE audit_checkpoints SET head_hash=:h WHERE seq=5", h="f" * 64)
    assert_named(verify(engine, log), "checkpoint seq 5: bad signature")


def test_rewritten_history_is_caught_by_checkpoints(engine, log):
    """An attacker who re-chains everything after an edit still cannot re-sign."""
    sql(engine, "UPDATE audit_events SET reason='rewritten' WHERE seq=3")
    prev = rehash(engine, 3)
    for seq in range(4, N_EVENTS + 1):
        prev = rehash(engine, seq, prev_hash=prev)
    assert_named(verify(engine, log), "checkpoint seq 5: signed head does not match event seq 5",
                 "checkpoint seq 10")


def test_wrong_public_key_fails(engine, log):
    other = AuditLog(None, None, Ed25519PrivateKey.generate().public_key())
    assert_named(verify(engine, other), "checkpoint seq 5: bad signature", "checkpoint seq 10: bad signature")


def test_verify_or_raise(engine, log):
    sql(engine, "DELETE FROM audit_events WHERE seq=2")
    with Session(engine) as s, pytest.raises(IntegrityFailure, match="seq 2"):
        log.verify_or_raise(s)


def test_checkpoint_on_demand_and_empty_log(engine, key):
    audit = AuditLog(None, key, checkpoint_every=None)
    with Session(engine) as s, s.begin():
        audit.checkpoint(s)  # empty log: nothing to sign
        audit.record(s, principal="demo", action="ingest")
        audit.checkpoint(s)
    r = verify(engine, audit)
    assert r.ok and r.checkpoints == 1


@pytest.mark.parametrize("details, fragment", [
    ({"email": "x" * 200}, "longer than 128"),
    ({"values": ["alice@example.com"]}, "lists may hold ints"),
    ({"nested": {"a": 1}}, "dict not allowed"),
    ({"token": "pgv_0123456789abcdef_" + "0" * 64}, "token"),
    ({"ratio": float("nan")}, "finite"),
    (["rows", 3], "flat dict"),
])
def test_details_that_could_carry_values_are_refused(engine, key, details, fragment):
    audit = AuditLog(None, key)
    with Session(engine) as s, pytest.raises(InputError, match=fragment):
        audit.record(s, principal="demo", action="ingest", details=details)


def test_bad_decision_is_refused(engine, key):
    with Session(engine) as s, pytest.raises(InputError, match="decision"):
        AuditLog(None, key).record(s, principal="demo", action="x", decision="maybe")


def test_event_rolls_back_with_the_callers_transaction(engine, key):
    audit = AuditLog(None, key)
    with Session(engine) as s:
        audit.record(s, principal="demo", action="ingest")
        s.rollback()
    with Session(engine) as s, s.begin():
        assert audit.record(s, principal="demo", action="ingest") == 1


# --------------------------------------------------------------------------- exports


def _verify_in_fresh_process(path: Path, trusted: bytes | None, cwd: Path) -> dict:
    code = ("import json, sys; from governance.evidence.audit import verify_file; "
            "k = bytes.fromhex(sys.argv[2]) if sys.argv[2] else None; "
            "r = verify_file(sys.argv[1], k); print(json.dumps({'ok': r.ok, 'problems': r.problems, 'events': r.events}))")
    out = subprocess.run([sys.executable, "-c", code, str(path), trusted.hex() if trusted else ""], cwd=cwd,
                         capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return json.loads(out.stdout)


def test_export_verifies_in_a_fresh_process_elsewhere(engine, log, key, tmp_path):
    path = tmp_path / "audit.jsonl"
    with Session(engine) as s:
        assert log.export(s, None, path) == N_EVENTS
    elsewhere = tmp_path / "other-machine"
    elsewhere.mkdir()
    copy = elsewhere / "audit.jsonl"
    copy.write_bytes(path.read_bytes())
    result = _verify_in_fresh_process(copy, public_key_bytes(key.public_key()), elsewhere)
    assert result == {"ok": True, "problems": [], "events": N_EVENTS}
    wrong = _verify_in_fresh_process(copy, public_key_bytes(Ed25519PrivateKey.generate().public_key()), elsewhere)
    assert not wrong["ok"]
    assert any("does not match the trusted key" in p for p in wrong["problems"])
    assert any("bad signature" in p for p in wrong["problems"])


def test_partial_export_is_anchored(engine, log, key, tmp_path):
    with Session(engine) as s:
        cutoff = dt.datetime.fromisoformat(s.execute(text("SELECT ts FROM audit_events WHERE seq=8")).scalar_one()
                                           .replace("Z", "+00:00"))
        n = log.export(s, cutoff, tmp_path / "part.jsonl")
    lines = (tmp_path / "part.jsonl").read_text().splitlines()
    header = json.loads(lines[0])
    assert n == N_EVENTS - 7 and header["anchor_seq"] == 7 and header["anchor_hash"] == row(engine, 7)["hash"]
    report = verify_file(tmp_path / "part.jsonl", public_key_bytes(key.public_key()))
    assert report.ok, report.problems
    assert report.checkpoints == 1  # seq 10 covers the extract; seq 5 predates it


def test_tampered_export_names_the_event(engine, log, key, tmp_path):
    path = tmp_path / "audit.jsonl"
    with Session(engine) as s:
        log.export(s, None, path)
    lines = path.read_text().splitlines()
    ev = json.loads(lines[4])
    assert ev["seq"] == 4
    ev["principal"] = "someone-else"
    lines[4] = json.dumps(ev)
    path.write_text("\n".join(lines) + "\n")
    report = verify_file(path, public_key_bytes(key.public_key()))
    assert not report.ok and any("event seq 4: edited" in p for p in report.problems)
    del lines[4]
    path.write_text("\n".join(lines) + "\n")
    assert any("event seq 4: deleted" in p for p in verify_file(path).problems)


def test_export_without_trusted_key_says_so(engine, log, tmp_path):
    with Session(engine) as s:
        log.export(s, None, tmp_path / "a.jsonl")
    report = verify_file(tmp_path / "a.jsonl")
    assert report.ok and any("no trusted key" in n for n in report.notes)


def test_export_with_bad_header_is_input_error(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"type": "event"}\n')
    with pytest.raises(InputError, match="header"):
        verify_file(tmp_path / "x.jsonl")


# --------------------------------------------------------------------------- concurrency


def _append_many(db_url: str, worker: int, n: int) -> None:
    eng = make_engine(db_url)
    audit = AuditLog(None, Ed25519PrivateKey.generate(), checkpoint_every=None)
    for i in range(n):
        with Session(eng) as s, s.begin():
            # A read before the append, as real callers do: must not break serialization.
            s.execute(text("SELECT COUNT(*) FROM audit_events")).scalar_one()
            audit.record(s, principal=f"worker-{worker}", action="ingest", details={"i": i})
    eng.dispose()


def test_concurrent_appends_from_several_processes_keep_one_chain(tmp_path, key):
    url = "sqlite:///" + str(tmp_path / "t.db")
    eng = make_engine(url)
    Base.metadata.create_all(eng)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(url, w, 15)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    audit = AuditLog(None, key)
    with Session(eng) as s:
        report = audit.verify(s)
    assert report.ok, report.problems
    assert report.events == 45 and report.head_seq == 45
