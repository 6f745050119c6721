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

from governance.evidence.audit import AuditLog
from governance.evidence.chain import event_hash, public_key_bytes
from governance.evidence.verify import verify_file
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
    code = ("import json, sys; from governance.evidence.verify import verify_file; "
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
    # the checkpoints verify under the header's key, so they are named as signed by a foreign key
    assert any(p.startswith("foreign key: checkpoint seq 10 is signed by key") for p in wrong["problems"])


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


def _append_many(db_url: str, worker: int, n: int, schema: str | None = None) -> None:
    eng = make_engine(db_url, schema=schema)
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


def test_concurrent_appends_on_postgresql_keep_one_chain(pg_server, key):
    """The same on a shared server: appends serialise on the advisory lock, not a file lock."""
    eng = pg_server.fresh_schema_engine()
    Base.metadata.create_all(eng)
    with eng.connect() as conn:
        schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
    url = eng.url.render_as_string(hide_password=False)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(url, w, 10, schema)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    with Session(eng) as s:
        report = AuditLog(None, key).verify(s)
    assert report.ok, report.problems
    assert report.events == 30 and report.head_seq == 30


# --------------------------------------------------------------------------- witness and trusted key (workspaces)

from governance.evidence.chain import key_id  # noqa: E402
from governance.evidence.verify import parse_trusted_key, verify_workspace  # noqa: E402
from governance.workspace import Workspace  # noqa: E402


def _grow(ws, n: int, every: int) -> None:
    """``n`` audited actions, each in its own transaction as commands do; a checkpoint every ``every``."""
    for i in range(1, n + 1):
        with ws.session() as s:
            ws.audit.record(s, principal="demo", action="ingest", resource="clinic-visits", details={"i": i})
            if i % every == 0:
                ws.audit.checkpoint(s)


@pytest.fixture()
def audited(tmp_path):
    """A workspace with 12 events (checkpoints at seq 5 and 10) and what the auditor keeps
    outside it: a copy of the witness and the public key taken at set-up."""
    from tests.conftest import new_workspace

    ws, _ = new_workspace(tmp_path / "ws", {"admin": ("admin", ["admin"])}, bindings={})
    _grow(ws, N_EVENTS, 5)
    auditor = tmp_path / "auditor"
    auditor.mkdir()
    copy = auditor / "witness.jsonl"
    copy.write_bytes(ws.audit_witness_path.read_bytes())
    (auditor / "trusted.pub").write_bytes((ws.root / "keys" / "signing.pub").read_bytes())
    return ws, copy, parse_trusted_key(str(auditor / "trusted.pub"))


def _forge(ws, signing_key: Ed25519PrivateKey, n: int = N_EVENTS, every: int = 5) -> None:
    """The attacker's rewrite: wipe events and checkpoints, append a clean-looking history
    and sign checkpoints at the same seqs, without touching the witness."""
    sql(ws.engine, "DELETE FROM audit_checkpoints", "DELETE FROM audit_events")
    forger = AuditLog(None, signing_key, checkpoint_every=None)
    with Session(ws.engine) as s, s.begin():
        for i in range(1, n + 1):
            forger.record(s, principal="demo", action="ingest", resource="clinic-visits", details={"i": -i})
            if i % every == 0:
                forger.checkpoint(s)


def test_witness_holds_every_committed_checkpoint(audited):
    ws, witness, trusted = audited
    heads = [json.loads(line) for line in witness.read_text().splitlines()]
    assert [h["seq"] for h in heads] == [5, 10]
    assert {h["key_id"] for h in heads} == {key_id(trusted)}
    report = verify_workspace(ws, trusted, witness)
    assert report.ok, report.problems
    assert report.witnessed_seq == 10 and any("after seq 10" in n for n in report.notes)


def test_plain_verify_says_it_only_proves_internal_consistency(audited):
    ws, _, _ = audited
    report = verify_workspace(Workspace.open(ws.root))
    assert report.ok and any("only internal consistency" in n for n in report.notes)


def test_deleted_checkpoints_and_truncated_log_need_the_witness(audited):
    """Limitation without a witness: drop every checkpoint row and the tail, and the database
    alone is consistent. The witness names the truncation."""
    ws, witness, trusted = audited
    sql(ws.engine, "DELETE FROM audit_checkpoints", "DELETE FROM audit_events WHERE seq > 7")
    assert verify_workspace(ws, trusted).ok  # documented: undetectable from the database alone
    report = verify_workspace(ws, trusted, witness)
    assert report.problems[0] == "truncation: the witness holds a signed head at seq 10 but the log ends at seq 7"
    assert_named(report, "truncation: checkpoint seq 5 is in the witness (line 1) but was deleted")
    assert not any(p.startswith("rewriting") for p in report.problems)


def test_deleted_checkpoint_row_alone_is_named(audited):
    ws, witness, trusted = audited
    sql(ws.engine, "DELETE FROM audit_checkpoints WHERE seq = 10")
    assert verify_workspace(ws, trusted).ok
    report = verify_workspace(ws, trusted, witness)
    assert report.problems == ["truncation: checkpoint seq 10 is in the witness (line 2) but was deleted from the log"]


def test_log_rewritten_and_resigned_with_the_stolen_key_is_caught_by_the_witness(audited):
    ws, witness, trusted = audited
    _forge(ws, ws.keyring.signing_key())
    assert verify_workspace(ws, trusted).ok  # the right key signed it: only the witness can tell
    report = verify_workspace(ws, trusted, witness)
    assert_named(report, "rewriting: event seq 5 does not match the head the witness holds (line 1)",
                 "rewriting: event seq 10 does not match")
    assert not any(p.startswith(("truncation", "foreign key", "witness")) for p in report.problems)


def test_shorter_rewrite_is_truncation_and_rewriting(audited):
    ws, witness, trusted = audited
    _forge(ws, ws.keyring.signing_key(), n=8)
    assert_named(verify_workspace(ws, trusted, witness), "truncation: the witness holds a signed head at seq 10",
                 "rewriting: event seq 5")


def test_log_resigned_with_an_attacker_key_is_a_foreign_key(audited):
    """The attacker rewrites, re-signs with their own key and replaces keys/signing.pub: the
    workspace alone verifies; the trusted key names the foreign key."""
    from cryptography.hazmat.primitives import serialization

    ws, witness, trusted = audited
    mallory = Ed25519PrivateKey.generate()
    _forge(ws, mallory)
    (ws.root / "keys" / "signing.pub").write_bytes(mallory.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    assert verify_workspace(ws).ok  # no trusted key: nothing to tell the keys apart
    report = verify_workspace(ws, trusted)
    bad = key_id(mallory.public_key())
    assert report.problems[0] == (f"foreign key: {ws.root / 'keys' / 'signing.pub'} holds key {bad}, "
                                  f"not the trusted key {key_id(trusted)}")
    assert_named(report, f"foreign key: checkpoint seq 5 is signed by key {bad}, not the trusted key",
                 f"foreign key: checkpoint seq 10 is signed by key {bad}")
    # without a trusted key the witness is checked under the replaced key: its lines then fail
    assert_named(verify_workspace(ws, None, witness), "witness: line 1 (seq 5) has a bad signature under key "
                 f"{bad} (the line names key {key_id(trusted)})")


def test_attacker_key_with_signing_pub_left_alone_is_a_foreign_key(audited):
    ws, _, trusted = audited
    _forge(ws, Ed25519PrivateKey.generate())
    assert_named(verify_workspace(ws), "checkpoint seq 5: bad signature")
    assert_named(verify_workspace(ws, trusted), "foreign key: checkpoint seq 5 names key")


def test_forged_witness_line_is_named_and_not_trusted(audited):
    ws, witness, trusted = audited
    lines = witness.read_text().splitlines()
    forged = json.loads(lines[1])
    forged["seq"] = 40  # would claim truncation if it were believed
    witness.write_text(lines[0] + "\n" + json.dumps(forged) + "\n")
    report = verify_workspace(ws, trusted, witness)
    assert report.problems == [f"witness: line 2 (seq 40) has a bad signature under key {key_id(trusted)}"]


@pytest.mark.parametrize("provider", ["file", "env"])
def test_verify_needs_no_kek(tmp_path, monkeypatch, provider):
    import base64
    import os

    monkeypatch.setenv("PRIVGOV_KEK", base64.b64encode(os.urandom(32)).decode())
    ws = Workspace.create(tmp_path / "ws", key_provider=provider)
    _grow(ws, 6, 3)
    trusted = parse_trusted_key(str(ws.root / "keys" / "signing.pub"))
    monkeypatch.delenv("PRIVGOV_KEK")
    (ws.root / "keys" / "kek.key").unlink(missing_ok=True)
    reopened = Workspace.open(ws.root)
    with pytest.raises(InputError):  # the KEK really is gone ...
        reopened.keyring.signing_key()
    report = verify_workspace(reopened, trusted, ws.audit_witness_path)  # ... and verify does not need it
    assert report.ok and report.witnessed_seq == 6, report.problems
    sql(ws.engine, "UPDATE audit_events SET reason='x' WHERE seq = 2")
    assert_named(verify_workspace(reopened, trusted), "event seq 2: edited")


def test_init_witness_location_is_configurable(tmp_path):
    elsewhere = tmp_path / "auditor-owned"
    elsewhere.mkdir()
    ws = Workspace.create(tmp_path / "ws", audit_witness=elsewhere / "heads.jsonl")
    assert json.loads((ws.root / "workspace.json").read_text())["audit_witness"] == str(elsewhere / "heads.jsonl")
    _grow(ws, 2, 2)
    assert Workspace.open(ws.root).audit_witness_path == elsewhere / "heads.jsonl"
    assert len((elsewhere / "heads.jsonl").read_text().splitlines()) == 1
    assert not (ws.root / "audit-witness.jsonl").exists()


# --------------------------------------------------------------------------- trusted keys and exports


def test_trusted_key_as_hex_string_hex_file_or_pem_file(tmp_path, key):
    from cryptography.hazmat.primitives import serialization

    raw = public_key_bytes(key.public_key())
    (tmp_path / "k.hex").write_text(raw.hex() + "\n")
    (tmp_path / "k.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    assert parse_trusted_key(raw.hex()) == parse_trusted_key(str(tmp_path / "k.hex")) == raw
    assert parse_trusted_key(str(tmp_path / "k.pem")) == raw


def test_bad_trusted_key_is_input_error(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    with pytest.raises(InputError, match="64 hex characters or a file"):
        parse_trusted_key("abc123")
    (tmp_path / "junk.pub").write_text("not a key\n")
    with pytest.raises(InputError, match="junk.pub: expected an Ed25519 public key"):
        parse_trusted_key(str(tmp_path / "junk.pub"))
    (tmp_path / "ec.pem").write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(InputError, match="ec.pem: holds a .*not an Ed25519"):
        parse_trusted_key(str(tmp_path / "ec.pem"))


def test_export_checked_against_witness(audited, tmp_path):
    ws, witness, trusted = audited
    path = tmp_path / "export.jsonl"
    with ws.session() as s:
        ws.audit.export(s, None, path)
    report = verify_file(path, trusted, witness)
    assert report.ok and report.witnessed_seq == 10, report.problems
    lines = path.read_text().splitlines()  # drop the tail and the checkpoint at 10 from the file
    kept = [ln for ln in lines if json.loads(ln).get("seq", 0) <= 7 or json.loads(ln)["type"] == "header"]
    path.write_text("\n".join(kept) + "\n")
    assert verify_file(path, trusted).ok
    assert_named(verify_file(path, trusted, witness), "truncation: the witness holds a signed head at seq 10 "
                 "but the log ends at seq 7")


def test_forged_export_with_attacker_header_key_is_a_foreign_key(audited, engine, tmp_path):
    """The attacker builds a clean-looking extract signed with their key and puts their key in
    the header: it verifies on its own; the trusted key and the witness both refuse it."""
    ws, witness, trusted = audited
    mallory = Ed25519PrivateKey.generate()
    forger = AuditLog(None, mallory, checkpoint_every=5)
    with Session(engine) as s, s.begin():
        for i in range(N_EVENTS):
            forger.record(s, principal="demo", action="ingest", details={"i": i})
    forged = tmp_path / "forged.jsonl"
    with Session(engine) as s:
        forger.export(s, None, forged)
    assert verify_file(forged).ok
    report = verify_file(forged, trusted)
    bad = key_id(mallory.public_key())
    assert report.problems[0] == (f"foreign key: the export header's public key {bad} does not match the "
                                  f"trusted key {key_id(trusted)}")
    assert_named(report, f"foreign key: checkpoint seq 5 is signed by key {bad}")
    assert_named(verify_file(forged, trusted, witness), "rewriting: event seq 5", "rewriting: event seq 10")


# --------------------------------------------------------------------------- CLI


def _privgov(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real command in a fresh process with no KEK in its environment."""
    return subprocess.run([sys.executable, "-m", "governance.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "GX_ANALYTICS_ENABLED": "False"})


def test_cli_verify_exit_codes(audited, tmp_path):
    ws, witness, trusted = audited
    (ws.root / "keys" / "kek.key").unlink()
    w = str(ws.root)
    ok = _privgov("audit", "verify", "-w", w, "--trusted-key", trusted.hex(), "--witness", str(witness), cwd=tmp_path)
    assert ok.returncode == 0 and "audit log OK: 12 events, 2 signed checkpoints" in ok.stdout, ok.stderr
    plain = _privgov("audit", "verify", "-w", w, cwd=tmp_path)
    assert plain.returncode == 0 and "only internal consistency" in plain.stdout
    sql(ws.engine, "DELETE FROM audit_checkpoints", "DELETE FROM audit_events WHERE seq > 7")
    bad = _privgov("audit", "verify", "-w", w, "--trusted-key", trusted.hex(), "--witness", str(witness), cwd=tmp_path)
    assert bad.returncode == 4
    assert bad.stderr.splitlines() == ["error: audit log verification failed: truncation: the witness holds a signed "
                                       "head at seq 10 but the log ends at seq 7 (and 1 more)"]
    junk = _privgov("audit", "verify", "-w", w, "--trusted-key", "nope", cwd=tmp_path)
    assert junk.returncode == 2 and junk.stderr.startswith("error: --trusted-key 'nope'")


def test_cli_init_takes_the_witness_path(capsys, tmp_path):
    from governance.cli import main

    target = tmp_path / "heads.jsonl"
    assert main(["init", "-w", str(tmp_path / "ws"), "--audit-witness", str(target)]) == 0
    capsys.readouterr()
    assert [json.loads(line)["seq"] for line in target.read_text().splitlines()] == [1]
    assert main(["audit", "verify", "-w", str(tmp_path / "ws"), "--witness", str(target)]) == 0
    assert "no --trusted-key" in capsys.readouterr().out


def test_token_shaped_text_never_reaches_the_log(engine) -> None:
    """Whatever path an event comes by, a token pasted into a name, purpose or reason is withheld."""
    from governance.evidence.audit import AuditEvent, AuditLog

    log = AuditLog(None)
    token = "pgv_" + "a" * 16 + "_" + "b" * 64
    from sqlalchemy.orm import Session

    with Session(engine) as s, s.begin():
        log.record(s, principal=token, action="export", resource=f"x{token}", purpose=token, reason=f"r {token}")
    with Session(engine) as s:
        ev = s.query(AuditEvent).one()
        assert not any(token in (v or "") for v in (ev.principal, ev.resource, ev.purpose, ev.reason))
        assert "withheld" in ev.resource


def test_overlong_caller_fields_are_cut_not_lost(engine, key):
    """A caller-chosen 1,000-character purpose (or principal, resource, action) is still
    recorded: cut to the column with a marker, never a refused write (PostgreSQL enforces
    VARCHAR widths) that would leave a denial unrecorded."""
    audit = AuditLog(lambda: Session(engine), key)
    with Session(engine) as s, s.begin():
        seq = audit.record(s, principal="p" * 1000, action="a" * 1000, decision="deny",
                           resource="r" * 1000, purpose="x" * 1000)
    got = row(engine, seq)
    assert len(got["purpose"]) == 200 and got["purpose"].endswith("(cut, 1000 chars)")
    assert len(got["principal"]) == 200 and len(got["action"]) == 100 and len(got["resource"]) == 500
    assert verify(engine, audit).ok
