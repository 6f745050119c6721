"""Tamper-evident audit log: a hash chain of events plus signed checkpoints.

Why: an auditor must be able to trust that the log of who did what to which
data was not quietly edited afterwards. Each event stores the hash of the one
before it (``prev_hash``) and its own ``hash`` = sha256 over a canonical JSON of
all its fields; any edit, deletion, insertion or reordering breaks the chain.
Someone with write access to the database could rebuild the whole chain, so
every so often the head (seq, hash) is signed with the workspace's Ed25519 key
(a *checkpoint*): rewriting history before a checkpoint, or truncating the log
back past it, then fails the signature or the head comparison.

Limits (by construction, documented rather than hidden): events appended after
the last checkpoint can be dropped or forged by someone holding the database
but not the signing key; a later checkpoint covers them. The database alone
cannot show that checkpoint rows were deleted together with the events they
cover, nor a log rewritten and re-signed by someone who stole the signing key:
every signed head is therefore also appended to a witness outside the database
(:mod:`governance.evidence.witness`), and :mod:`governance.evidence.verify`
compares the log with the auditor's copy of it and with a key the auditor trusts.
How an event is hashed and a head signed lives in :mod:`governance.evidence.chain`.

Events carry counts, ids and hashes only — never data values, tokens or keys.
:func:`check_details` enforces the shape: a flat dict whose values are numbers,
booleans, None, lists of ints, or strings of at most 128 characters.

Concurrency: appends serialize on the database write lock. On SQLite the append
starts the transaction with ``BEGIN IMMEDIATE`` (or is already inside one that
holds the write lock), so reading the head and inserting the next event cannot
interleave with another process; ``seq`` is the primary key as a backstop.
Events that must be committed on their own (every decision) go through
:meth:`AuditLog.record_committed`: threads of one process deciding at once share
one transaction (group commit) instead of queueing for the lock one by one, and
each returns only after its event is committed.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path
from typing import Any, Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import JSON, Float, Integer, String, Text, insert, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from governance.errors import InputError, IntegrityFailure
from governance.evidence.chain import (
    EVENT_FIELDS,
    GENESIS_HASH,
    VerifyReport,
    canonical_json,
    checkpoint_message,
    event_hash,
    key_id,
    public_key_bytes,
    verify_chain,
)
from governance.evidence.group_commit import GroupCommit
from governance.evidence.witness import WitnessHead, WitnessSink, append_after_commit
from governance.storage.atomic_write import atomic_path
from governance.storage.store import Base

DECISIONS = ("allow", "deny", "info", "error")
EXPORT_FORMAT = "privgov-audit-export/1"
_MAX_DETAIL_STR = 128
_MAX_DETAIL_KEYS = 64
_PG_LOCK_KEY = 0x70726976  # "priv": advisory lock id for PostgreSQL appends


_TOKENISH = re.compile(r"pgv_[0-9A-Za-z_]*")
WITHHELD = "(withheld: looks like an API token)"


def fit_column(text: str | None, width: int) -> str | None:
    """`text` cut to a column's width, saying that it was cut and how long it was.

    Why: PostgreSQL refuses a value longer than its VARCHAR (SQLite does not), so a
    caller-chosen 1,000-character purpose made the audit write itself fail - the
    refusal it should record went unrecorded. Cutting here, where every event
    passes, keeps one rule for the CLI, the API and the server."""
    if text is None or len(text) <= width:
        return text
    marker = f"...(cut, {len(text)} chars)"
    return text[: width - len(marker)] + marker


def withhold_tokens(text: str | None) -> str | None:
    """`text` with anything shaped like an API token withheld.

    Why here: a token pasted into the wrong argument (`privgov dataset export
    pgv_...` with --token forgotten) arrives as a dataset name, purpose or
    reason; the log - readable without a token - must never hold one, whatever
    path the event came by."""
    return None if text is None else _TOKENISH.sub(WITHHELD, str(text))


class AuditEvent(Base):
    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[str] = mapped_column(String(40))  # ISO 8601 UTC, kept as text so the hash is stable
    principal: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    resource: Mapped[str | None] = mapped_column(String(500), nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    purpose: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decision: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    epsilon: Mapped[float | None] = mapped_column(Float, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditCheckpoint(Base):
    __tablename__ = "audit_checkpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, index=True)
    head_hash: Mapped[str] = mapped_column(String(64))
    ts: Mapped[str] = mapped_column(String(40))
    key_id: Mapped[str] = mapped_column(String(16))  # sha256(public key)[:16], to spot key mix-ups
    signature: Mapped[str] = mapped_column(String(128))  # hex Ed25519 signature


def _event_dict(ev: AuditEvent) -> dict[str, Any]:
    return {k: getattr(ev, k) for k in EVENT_FIELDS} | {"hash": ev.hash}


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_details(details: dict | None) -> dict[str, Any]:
    """Refuse details that could carry data values. Callers pass ids/counts/hashes only."""
    if details is None:
        return {}
    if not isinstance(details, dict):
        raise InputError(f"audit details: expected a flat dict of ids/counts, got {type(details).__name__}")
    if len(details) > _MAX_DETAIL_KEYS:
        raise InputError(f"audit details: at most {_MAX_DETAIL_KEYS} keys, got {len(details)}")
    out: dict[str, Any] = {}
    for key, value in details.items():
        if not isinstance(key, str) or not 0 < len(key) <= 64:
            raise InputError(f"audit details: key {key!r} must be a string of 1-64 characters")
        if value is None or isinstance(value, bool) or isinstance(value, int):
            pass
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise InputError(f"audit details {key!r}: float must be finite")
        elif isinstance(value, str):
            if len(value) > _MAX_DETAIL_STR:
                raise InputError(f"audit details {key!r}: string longer than {_MAX_DETAIL_STR} characters "
                                 "(pass ids, counts or hashes, never values)")
            if value.startswith("pgv_"):
                raise InputError(f"audit details {key!r}: looks like an API token; never log tokens")
        elif isinstance(value, (list, tuple)):
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                raise InputError(f"audit details {key!r}: lists may hold ints (row ids) only")
            value = list(value)
        else:
            raise InputError(f"audit details {key!r}: {type(value).__name__} not allowed "
                             "(numbers, booleans, short strings, lists of ints)")
        out[key] = value
    return out


# --------------------------------------------------------------------------- the log


class AuditLog:
    """Append events, sign checkpoints, verify and export the chain.

    ``session_factory`` (optional) is kept for callers that want the log to open
    its own sessions; every method here takes the caller's session so the event
    commits or rolls back with the work it describes."""

    def __init__(self, session_factory: Callable[[], Session] | None = None,
                 signing_key: Ed25519PrivateKey | None = None,
                 verify_key: Ed25519PublicKey | None = None, *, checkpoint_every: int | None = 100,
                 witness: WitnessSink | None = None) -> None:
        self.session_factory = session_factory
        self.witness = witness
        self.signing_key = signing_key
        self.verify_key = verify_key or (signing_key.public_key() if signing_key is not None else None)
        self.checkpoint_every = checkpoint_every
        self._group: GroupCommit[dict[str, Any], int] = GroupCommit(self._append_committed)

    # -- appends -------------------------------------------------------------

    @staticmethod
    def _lock_for_append(session: Session) -> None:
        """Take the database write lock before reading the head (see module doc)."""
        conn = session.connection()
        dialect = conn.dialect.name
        if dialect == "sqlite":
            raw = conn.connection.driver_connection
            if not raw.in_transaction:  # pysqlite has not begun one yet: take the lock now
                conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})

    @staticmethod
    def _head(session: Session) -> tuple[int, str]:
        row = session.execute(select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).first()
        return (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))

    @staticmethod
    def prepare(*, principal: str, action: str, decision: str = "info", resource: str | None = None,
                version: int | None = None, purpose: str | None = None, reason: str | None = None,
                epsilon: float | None = None, details: dict | None = None) -> dict[str, Any]:
        """An event's fields, checked, without its place in the chain (seq, ts, prev_hash).

        Why apart from the append: a caller whose event is written by another
        thread's transaction (group commit) must get its InputError itself, before
        the event joins a batch."""
        if decision not in DECISIONS:
            raise InputError(f"audit decision {decision!r}: expected one of {', '.join(DECISIONS)}")
        if epsilon is not None and not math.isfinite(float(epsilon)):
            raise InputError("audit epsilon: expected a finite number")
        clean = check_details(details)
        # Events never hold secrets: a token pasted into a name, purpose or reason is withheld here,
        # whatever path the event came by (the log is readable without a token).
        principal, resource, purpose, reason = (withhold_tokens(x) for x in (principal, resource, purpose, reason))
        principal, action = fit_column(principal, 200) or "", fit_column(action, 100) or ""
        resource, purpose = fit_column(resource, 500), fit_column(purpose, 200)
        return {"principal": principal, "action": action, "resource": resource,
                "version": None if version is None else int(version), "purpose": purpose, "decision": decision,
                "reason": reason, "epsilon": None if epsilon is None else float(epsilon), "details": clean}

    def append(self, session: Session, prepared: list[dict[str, Any]]) -> list[int]:
        """Chain prepared events after the head, in order, in the caller's transaction; their seqs.

        The head is read once under the write lock and the chain continued in
        memory; a checkpoint is signed at every multiple of ``checkpoint_every``
        exactly as when each event is appended alone."""
        self._lock_for_append(session)
        seq, prev = self._head(session)
        seqs: list[int] = []
        rows: list[dict[str, Any]] = []
        for event in prepared:
            seq += 1
            fields: dict[str, Any] = {**event, "seq": seq, "ts": _now_iso(), "prev_hash": prev}
            prev = fields["hash"] = event_hash(fields)
            rows.append(fields)
            seqs.append(seq)
            if self.signing_key is not None and self.checkpoint_every and seq % self.checkpoint_every == 0:
                self._insert(session, rows)  # the checkpoint signs this event as the head
                rows = []
                self.checkpoint(session)
        self._insert(session, rows)
        return seqs

    @staticmethod
    def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
        """One executemany for a batch (the ORM's per-object bookkeeping was most of an append's CPU)."""
        if rows:
            session.flush()  # anything the caller added first keeps its order
            session.execute(insert(AuditEvent), rows)

    def record(self, session: Session, *, principal: str, action: str, decision: str = "info",
               resource: str | None = None, version: int | None = None, purpose: str | None = None,
               reason: str | None = None, epsilon: float | None = None, details: dict | None = None) -> int:
        """Append one event; returns its seq. Commits with the caller's session."""
        event = self.prepare(principal=principal, action=action, decision=decision, resource=resource,
                             version=version, purpose=purpose, reason=reason, epsilon=epsilon, details=details)
        return self.append(session, [event])[0]

    def record_committed(self, **fields: Any) -> int:
        """Append one event in a transaction of its own and return its seq once that has committed.

        Concurrent callers in this process share transactions (group commit, see
        :mod:`governance.evidence.group_commit`); none returns before its own
        event is committed, and an event that cannot be written fails only its caller."""
        event = self.prepare(**fields)
        return self._group.submit(event)

    def _append_committed(self, prepared: list[dict[str, Any]]) -> list[int]:
        if self.session_factory is None:
            raise InputError("audit: no session factory to write committed events with")
        with self.session_factory() as session, session.begin():
            return self.append(session, prepared)

    def checkpoint(self, session: Session) -> None:
        """Sign the current head (seq, hash, time) with the audit key; no-op on an empty log."""
        if self.signing_key is None:
            raise InputError("audit checkpoint: no signing key (open the workspace keyring)")
        self._lock_for_append(session)
        seq, head = self._head(session)
        if seq == 0:
            return
        ts = _now_iso()
        sig = self.signing_key.sign(checkpoint_message(seq, head, ts)).hex()
        kid = key_id(self.signing_key.public_key())
        session.add(AuditCheckpoint(seq=seq, head_hash=head, ts=ts, key_id=kid, signature=sig))
        session.flush()
        if self.witness is not None:  # only once the caller's transaction commits
            append_after_commit(session, self.witness, WitnessHead(seq, head, ts, kid, sig))

    # -- verification --------------------------------------------------------

    def verify(self, session: Session) -> VerifyReport:
        """Recompute the whole chain and check every checkpoint; names each problem by seq."""
        events, cps = load_chain(session)
        return verify_chain(events, cps, self.verify_key, anchor_seq=0, anchor_hash=GENESIS_HASH)

    def verify_or_raise(self, session: Session) -> VerifyReport:
        report = self.verify(session)
        if not report.ok:
            more = f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
            raise IntegrityFailure(f"audit log: {report.problems[0]}{more}")
        return report

    # -- export --------------------------------------------------------------

    def export(self, session: Session, since: dt.datetime | None, path: Path | str) -> int:
        """Write a JSONL extract: header (public key, anchor), events, checkpoints.
        Returns the number of events written. ``since`` selects events by time."""
        if self.verify_key is None:
            raise InputError("audit export: no verify key to put in the header")
        exported_at = _now_iso()  # before reading: witnessed heads signed later are not expected in the file
        query = select(AuditEvent).order_by(AuditEvent.seq)
        if since is not None:
            if since.tzinfo is None:
                since = since.replace(tzinfo=dt.timezone.utc)
            cutoff = since.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            query = query.where(AuditEvent.ts >= cutoff)
        events = [_event_dict(e) for e in session.scalars(query)]
        first_seq = events[0]["seq"] if events else self._head(session)[0] + 1
        anchor_seq, anchor_hash = first_seq - 1, GENESIS_HASH
        if anchor_seq > 0:
            prev = session.get(AuditEvent, anchor_seq)
            anchor_hash = prev.hash if prev is not None else (events[0]["prev_hash"] if events else GENESIS_HASH)
        cps = [{"seq": c.seq, "head_hash": c.head_hash, "ts": c.ts, "signature": c.signature}
               for c in session.scalars(select(AuditCheckpoint).where(AuditCheckpoint.seq >= anchor_seq)
                                        .order_by(AuditCheckpoint.id))]
        header = {"type": "header", "format": EXPORT_FORMAT, "exported_at": exported_at,
                  "since": None if since is None else since.isoformat(),
                  "public_key": public_key_bytes(self.verify_key).hex(), "key_id": key_id(self.verify_key),
                  "anchor_seq": anchor_seq, "anchor_hash": anchor_hash}
        with atomic_path(Path(path)) as tmp, open(tmp, "wb") as fh:
            fh.write(canonical_json(header) + b"\n")
            for ev in events:
                fh.write(canonical_json({"type": "event", **ev}) + b"\n")
            for cp in cps:
                fh.write(canonical_json({"type": "checkpoint", **cp}) + b"\n")
        return len(events)


def load_chain(session: Session) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """All events (by seq) and checkpoints (by id) as the plain dicts the checker reads."""
    events = [_event_dict(e) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
    cps = [{"seq": c.seq, "head_hash": c.head_hash, "ts": c.ts, "signature": c.signature, "key_id": c.key_id}
           for c in session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id))]
    return events, cps
