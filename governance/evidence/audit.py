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
(:mod:`governance.evidence.witness`), and :func:`verify_workspace` / :func:`verify_file`
compare the log with the auditor's copy of it and with a key the auditor trusts.

Events carry counts, ids and hashes only — never data values, tokens or keys.
:func:`check_details` enforces the shape: a flat dict whose values are numbers,
booleans, None, lists of ints, or strings of at most 128 characters.

Concurrency: appends serialize on the database write lock. On SQLite the append
starts the transaction with ``BEGIN IMMEDIATE`` (or is already inside one that
holds the write lock), so reading the head and inserting the next event cannot
interleave with another process; ``seq`` is the primary key as a backstop.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key
from sqlalchemy import JSON, Float, Integer, String, Text, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from governance.storage.atomic_write import atomic_path
from governance.errors import InputError, IntegrityFailure
from governance.storage.store import Base
from governance.evidence.witness import WitnessHead, WitnessSink, append_after_commit, read_witness

if TYPE_CHECKING:  # pragma: no cover
    from governance.workspace import Workspace

GENESIS_HASH = "0" * 64
DECISIONS = ("allow", "deny", "info", "error")
EXPORT_FORMAT = "privgov-audit-export/1"
_CHECKPOINT_DOMAIN = b"privgov-audit-checkpoint/1\n"
_MAX_DETAIL_STR = 128
_MAX_DETAIL_KEYS = 64
_PG_LOCK_KEY = 0x70726976  # "priv": advisory lock id for PostgreSQL appends


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


@dataclass
class VerifyReport:
    ok: bool
    problems: list[str]
    events: int
    checkpoints: int
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    notes: list[str] = field(default_factory=list)
    witnessed_seq: int | None = None  # highest head the witness vouches for (None: no witness checked)


# --------------------------------------------------------------------------- hashing


EVENT_FIELDS = ("seq", "ts", "principal", "action", "resource", "version", "purpose",
                "decision", "reason", "epsilon", "details", "prev_hash")


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def event_hash(fields: dict[str, Any]) -> str:
    """sha256 over the canonical JSON of every event field except ``hash``."""
    return hashlib.sha256(canonical_json({k: fields.get(k) for k in EVENT_FIELDS})).hexdigest()


def _event_dict(ev: AuditEvent) -> dict[str, Any]:
    return {k: getattr(ev, k) for k in EVENT_FIELDS} | {"hash": ev.hash}


def _checkpoint_message(seq: int, head_hash: str, ts: str) -> bytes:
    return _CHECKPOINT_DOMAIN + canonical_json({"seq": seq, "head_hash": head_hash, "ts": ts})


def public_key_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key: Ed25519PublicKey | bytes) -> str:
    raw = key if isinstance(key, bytes) else public_key_bytes(key)
    return hashlib.sha256(raw).hexdigest()[:16]


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

    def record(self, session: Session, *, principal: str, action: str, decision: str = "info",
               resource: str | None = None, version: int | None = None, purpose: str | None = None,
               reason: str | None = None, epsilon: float | None = None, details: dict | None = None) -> int:
        """Append one event; returns its seq. Commits with the caller's session."""
        if decision not in DECISIONS:
            raise InputError(f"audit decision {decision!r}: expected one of {', '.join(DECISIONS)}")
        if epsilon is not None and not math.isfinite(float(epsilon)):
            raise InputError("audit epsilon: expected a finite number")
        clean = check_details(details)
        self._lock_for_append(session)
        seq, prev = self._head(session)
        fields: dict[str, Any] = {
            "seq": seq + 1, "ts": _now_iso(), "principal": principal, "action": action,
            "resource": resource, "version": None if version is None else int(version), "purpose": purpose,
            "decision": decision, "reason": reason, "epsilon": None if epsilon is None else float(epsilon),
            "details": clean, "prev_hash": prev,
        }
        session.add(AuditEvent(**fields, hash=event_hash(fields)))
        session.flush()
        if self.signing_key is not None and self.checkpoint_every and fields["seq"] % self.checkpoint_every == 0:
            self.checkpoint(session)
        return int(fields["seq"])

    def checkpoint(self, session: Session) -> None:
        """Sign the current head (seq, hash, time) with the audit key; no-op on an empty log."""
        if self.signing_key is None:
            raise InputError("audit checkpoint: no signing key (open the workspace keyring)")
        self._lock_for_append(session)
        seq, head = self._head(session)
        if seq == 0:
            return
        ts = _now_iso()
        sig = self.signing_key.sign(_checkpoint_message(seq, head, ts)).hex()
        kid = key_id(self.signing_key.public_key())
        session.add(AuditCheckpoint(seq=seq, head_hash=head, ts=ts, key_id=kid, signature=sig))
        session.flush()
        if self.witness is not None:  # only once the caller's transaction commits
            append_after_commit(session, self.witness, WitnessHead(seq, head, ts, kid, sig))

    # -- verification --------------------------------------------------------

    def verify(self, session: Session) -> VerifyReport:
        """Recompute the whole chain and check every checkpoint; names each problem by seq."""
        events, cps = _load(session)
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


def _load(session: Session) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """All events (by seq) and checkpoints (by id) as plain dicts."""
    events = [_event_dict(e) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
    cps = [{"seq": c.seq, "head_hash": c.head_hash, "ts": c.ts, "signature": c.signature, "key_id": c.key_id}
           for c in session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id))]
    return events, cps


# --------------------------------------------------------------------------- shared checker


def _original_seq(ev: dict[str, Any], window: int = 16) -> int | None:
    """If only ``seq`` was changed, the seq under which the hash still matches."""
    seq = ev["seq"]
    for delta in range(1, window + 1):
        for cand in (seq - delta, seq + delta):
            if cand > 0 and event_hash({**ev, "seq": cand}) == ev["hash"]:
                return cand
    return None


def _find_moved(events: list[dict[str, Any]], i: int, target: str, window: int = 8) -> tuple[int, int] | None:
    """Near index ``i``, the event that hashes to ``target`` under another seq: where a
    moved (renumbered and re-hashed) event used to be, as (index, old seq)."""
    for j in range(max(0, i - window), min(len(events), i + window + 1)):
        ev = events[j]
        for delta in range(-window, window + 1):
            cand = ev["seq"] + delta
            if delta and cand > 0 and event_hash({**ev, "seq": cand}) == target:
                return j, cand
    return None


def _signed_by(key: Ed25519PublicKey, seq: int, head_hash: str, ts: str, signature: str) -> bool:
    try:
        key.verify(bytes.fromhex(signature), _checkpoint_message(seq, head_hash, ts))
    except (InvalidSignature, ValueError):
        return False
    return True


def _signature_problem(cp: dict[str, Any], key: Ed25519PublicKey, claimed: Ed25519PublicKey | None) -> str | None:
    """None if ``key`` signed the checkpoint; otherwise why not. ``claimed`` (given only when
    ``key`` is a trusted key) is the key the log itself names: a checkpoint it signed is a
    foreign-key problem, not mere corruption."""
    seq = int(cp["seq"])
    if _signed_by(key, seq, cp["head_hash"], cp["ts"], cp["signature"]):
        return None
    trusted = key_id(key)
    if claimed is not None:
        if _signed_by(claimed, seq, cp["head_hash"], cp["ts"], cp["signature"]):
            return (f"foreign key: checkpoint seq {seq} is signed by key {key_id(claimed)}, "
                    f"not the trusted key {trusted}")
        if cp.get("key_id") and cp["key_id"] != trusted:
            return (f"foreign key: checkpoint seq {seq} names key {cp['key_id']}, not the trusted key {trusted}, "
                    "and does not verify under it")
    return f"checkpoint seq {seq}: bad signature"


def verify_chain(events: list[dict[str, Any]], checkpoints: list[dict[str, Any]],
                 key: Ed25519PublicKey | None, *, anchor_seq: int, anchor_hash: str,
                 claimed_key: Ed25519PublicKey | None = None) -> VerifyReport:
    """Check a run of events (sorted by seq) starting after ``anchor_seq``.

    Problems are named by seq: edited (content ≠ hash), deleted (seq gap),
    inserted (the next event links past it), reordered (an event links to a
    later one), broken link, truncated (log ends before a checkpoint), and
    checkpoints with a bad signature or a head that no longer matches. When
    ``key`` is a trusted key, ``claimed_key`` is the one the log names (its
    signing.pub or export header), used to name foreign-key signatures."""
    problems: list[str] = []
    notes: list[str] = []
    by_hash = {ev["hash"]: i for i, ev in enumerate(events)}
    reordered: set[int] = set()
    searches = 0  # bound the work spent naming moved events in a badly damaged log
    expected_seq = anchor_seq + 1
    prev_hash = anchor_hash
    for i, ev in enumerate(events):
        seq = ev["seq"]
        if event_hash(ev) != ev["hash"]:
            searches += 1
            was = _original_seq(ev) if searches < 64 else None
            if was is not None:
                problems.append(f"event seq {seq}: renumbered (its hash matches seq {was}; "
                                f"events were moved, inserted or deleted)")
            else:
                problems.append(f"event seq {seq}: edited (content does not match its hash)")
        if seq > expected_seq:
            gap = f"seq {expected_seq}" if seq == expected_seq + 1 else f"seq {expected_seq}..{seq - 1}"
            problems.append(f"event {gap}: deleted (missing before seq {seq})")
        elif seq < expected_seq:
            problems.append(f"event seq {seq}: out of sequence (expected seq {expected_seq})")
        if ev["prev_hash"] != prev_hash and seq <= expected_seq:
            searches += 1
            linked = by_hash.get(ev["prev_hash"])
            if linked is not None and linked > i:
                reordered.add(i)
                problems.append(f"event seq {seq}: reordered (links to seq {events[linked]['seq']}, which comes later)")
            elif i - 1 in reordered:
                reordered.add(i)
                problems.append(f"event seq {seq}: reordered (the chain around seq {events[i - 1]['seq']} "
                                f"is out of order)")
            elif i >= 2 and ev["prev_hash"] == events[i - 2]["hash"]:
                problems.append(f"event seq {events[i - 1]['seq']}: inserted (seq {seq} links past it to "
                                f"seq {events[i - 2]['seq']})")
            elif i == 1 and ev["prev_hash"] == anchor_hash:
                problems.append(f"event seq {events[0]['seq']}: inserted (seq {seq} links past it to the start)")
            elif linked is not None and linked < i:
                problems.append(f"event seq {seq}: reordered (links to seq {events[linked]['seq']}, "
                                f"not to seq {events[i - 1]['seq'] if i else anchor_seq})")
            elif searches < 64 and (moved := _find_moved(events, i, ev["prev_hash"])) is not None:
                reordered.add(i)
                j, was = moved
                problems.append(f"event seq {seq}: reordered (links to the event now at seq {events[j]['seq']}, "
                                f"which was seq {was})")
            else:
                before = f"seq {events[i - 1]['seq']}" if i else f"the anchor (seq {anchor_seq})"
                problems.append(f"event seq {seq}: chain broken (prev_hash does not match {before}; "
                                f"that event was altered or replaced)")
        prev_hash = ev["hash"]
        expected_seq = seq + 1

    head_seq = events[-1]["seq"] if events else anchor_seq
    by_seq = {ev["seq"]: ev for ev in events}
    last_cp = 0
    for cp in checkpoints:
        seq = int(cp["seq"])
        last_cp = max(last_cp, seq)
        if key is None:
            notes.append(f"checkpoint seq {seq}: signature not checked (no public key)")
        elif (bad := _signature_problem(cp, key, claimed_key)) is not None:
            problems.append(bad)
            continue
        if seq == anchor_seq:
            if cp["head_hash"] != anchor_hash:
                problems.append(f"checkpoint seq {seq}: anchor hash does not match the signed head")
        elif seq > head_seq:
            continue  # reported once below as truncation
        elif seq in by_seq:
            if by_seq[seq]["hash"] != cp["head_hash"]:
                where = by_hash.get(cp["head_hash"])
                moved = f"; the signed head is now at seq {events[where]['seq']}" if where is not None else ""
                problems.append(f"checkpoint seq {seq}: signed head does not match event seq {seq} "
                                f"(history rewritten at or before seq {seq}{moved})")
        elif seq > anchor_seq:
            problems.append(f"checkpoint seq {seq}: event seq {seq} is missing")
    if last_cp > head_seq:
        problems.append(f"log truncated: a signed checkpoint covers seq {last_cp} but the log ends at seq {head_seq}")
    return VerifyReport(ok=not problems, problems=problems, events=len(events), checkpoints=len(checkpoints),
                        head_seq=head_seq, head_hash=events[-1]["hash"] if events else anchor_hash, notes=notes)


# --------------------------------------------------------------------------- trust anchors: key and witness

_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")
_CONSISTENCY_ONLY = ("only internal consistency was checked: whoever can write the database can delete "
                     "checkpoints and truncate the log, or rewrite and re-sign it; pass --witness (the "
                     "auditor's copy) and --trusted-key to rule that out")


def parse_trusted_key(value: str) -> bytes:
    """A trusted Ed25519 public key as 32 raw bytes, from 64 hex characters or from a file
    holding hex or PEM (a copy of ``keys/signing.pub`` taken when the workspace was set up)."""
    text_value = value.strip()
    if _HEX_KEY.fullmatch(text_value):
        return bytes.fromhex(text_value)
    path = Path(value).expanduser()
    if not path.is_file():
        raise InputError(f"--trusted-key {value!r}: expected 64 hex characters or a file holding an "
                         "Ed25519 public key (hex or PEM)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read trusted key ({exc.strerror})") from None
    body = data.decode("ascii", "replace").strip()
    if _HEX_KEY.fullmatch(body):
        return bytes.fromhex(body)
    if body.startswith("-----BEGIN"):
        try:
            key = load_pem_public_key(data)
        except ValueError:
            raise InputError(f"{path}: not a readable PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise InputError(f"{path}: holds a {type(key).__name__}, not an Ed25519 public key")
        return public_key_bytes(key)
    raise InputError(f"{path}: expected an Ed25519 public key as 64 hex characters or PEM")


def _ed25519(raw: bytes, where: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise InputError(f"{where}: public key is not a 32-byte Ed25519 key") from None


def check_witness(heads: list[tuple[int, WitnessHead]], events: list[dict[str, Any]],
                  checkpoints: list[dict[str, Any]], key: Ed25519PublicKey, *, anchor_seq: int,
                  anchor_hash: str, as_of: str | None = None) -> tuple[list[str], list[str], int]:
    """Compare a log (or an extract after ``anchor_seq``) with witnessed heads.

    Returns (problems, notes, highest witnessed seq). Each problem starts with its
    name: ``witness:`` a line ``key`` did not sign (ignored otherwise: an unsigned
    line proves nothing), ``rewriting:`` the event at a witnessed seq has another
    hash, ``truncation:`` the log ends before a witnessed head or a witnessed
    checkpoint row is gone. Heads from before an extract's anchor or after its
    export time (``as_of``) cannot be compared and are only counted in a note."""
    problems: list[str] = []
    notes: list[str] = []
    kid = key_id(key)
    by_seq = {int(ev["seq"]): ev["hash"] for ev in events}
    head_seq = max(by_seq) if by_seq else anchor_seq
    stored = {(int(c["seq"]), c["head_hash"]) for c in checkpoints}
    beyond: list[int] = []
    last, before, after = 0, 0, 0
    for line, h in heads:
        if not _signed_by(key, h.seq, h.head_hash, h.ts, h.signature):
            named = "" if h.key_id == kid else f" (the line names key {h.key_id})"
            problems.append(f"witness: line {line} (seq {h.seq}) has a bad signature under key {kid}{named}")
            continue
        if as_of is not None and h.ts > as_of:
            after += 1
            continue
        if h.seq < anchor_seq:
            before += 1
            continue
        last = max(last, h.seq)
        expected = anchor_hash if h.seq == anchor_seq else by_seq.get(h.seq)
        if h.seq > head_seq:
            beyond.append(h.seq)
        elif expected is None:
            problems.append(f"rewriting: event seq {h.seq} is missing but the witness holds a signed head "
                            f"there (line {line})")
        elif expected != h.head_hash:
            problems.append(f"rewriting: event seq {h.seq} does not match the head the witness holds (line "
                            f"{line}); history was rewritten at or before seq {h.seq}")
        elif (h.seq, h.head_hash) not in stored:
            problems.append(f"truncation: checkpoint seq {h.seq} is in the witness (line {line}) but was "
                            "deleted from the log")
    if beyond:
        problems.insert(0, f"truncation: the witness holds a signed head at seq {max(beyond)} but the log "
                           f"ends at seq {head_seq}")
    if before:
        notes.append(f"{before} witnessed heads predate this extract and were not compared")
    if after:
        notes.append(f"{after} witnessed heads are newer than this extract and were not compared")
    if last and last < head_seq:
        notes.append(f"events after seq {last} (the last witnessed head) are not witnessed yet")
    return problems, notes, last


def _conclude(report: VerifyReport, problems: list[str], notes: list[str], *, key: Ed25519PublicKey,
              trusted: bool, witness: Path | None, events: list[dict[str, Any]], cps: list[dict[str, Any]],
              anchor_seq: int, anchor_hash: str, as_of: str | None = None) -> VerifyReport:
    """Add trust-anchor problems and notes to a chain report: key problems first, then the
    chain's own, then the witness's."""
    after: list[str] = []
    if witness is not None:
        w_problems, w_notes, last = check_witness(read_witness(witness), events, cps, key, anchor_seq=anchor_seq,
                                                  anchor_hash=anchor_hash, as_of=as_of)
        after, report.witnessed_seq = w_problems, last
        notes = notes + w_notes
    if witness is None and not trusted:
        notes = notes + [_CONSISTENCY_ONLY]
    elif witness is None:
        notes = notes + ["no --witness: checkpoints deleted with the events they cover, or a log rewritten "
                         "by someone holding the signing key, would go unnoticed"]
    elif not trusted:
        notes = notes + ["no --trusted-key: the witness and checkpoints were checked against the log's own key"]
    report.problems = problems + report.problems + after
    report.notes = notes + report.notes
    report.ok = not report.problems
    return report


def verify_workspace(ws_or_root: Workspace | Path | str, trusted_key: bytes | None = None,
                     witness: Path | None = None) -> VerifyReport:
    """Verify a workspace's log with its public key only (``keys/signing.pub``; no KEK is
    touched), against a ``trusted_key`` and the auditor's ``witness`` copy when given.

    ``ws_or_root`` is an open :class:`~governance.workspace.Workspace` or its directory."""
    from governance.storage.keyring import public_signing_key
    from governance.workspace import Workspace

    ws = ws_or_root if isinstance(ws_or_root, Workspace) else Workspace.open(Path(ws_or_root))
    problems: list[str] = []
    local = public_signing_key(ws.root)
    key, claimed = local, None
    if trusted_key is not None:
        key, claimed = _ed25519(trusted_key, "--trusted-key"), local
        if public_key_bytes(local) != trusted_key:
            problems.append(f"foreign key: {ws.root / 'keys' / 'signing.pub'} holds key {key_id(local)}, "
                            f"not the trusted key {key_id(trusted_key)}")
    with ws.session() as s:
        events, cps = _load(s)
    report = verify_chain(events, cps, key, anchor_seq=0, anchor_hash=GENESIS_HASH, claimed_key=claimed)
    return _conclude(report, problems, [], key=key, trusted=trusted_key is not None, witness=witness,
                     events=events, cps=cps, anchor_seq=0, anchor_hash=GENESIS_HASH)


def verify_file(path: Path | str, trusted_public_key: bytes | None = None,
                witness: Path | None = None) -> VerifyReport:
    """Verify an export on any machine. Without ``trusted_public_key`` the key in the
    header is used and a note says so (a forger could have replaced it); ``witness``
    heads up to the export time are compared with the extract."""
    p = Path(path)
    try:
        lines = p.read_bytes().splitlines()
    except OSError as exc:
        raise InputError(f"{p}: cannot read audit export ({exc.strerror})") from None
    try:
        records = [json.loads(line) for line in lines if line.strip()]
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}:{exc.lineno}: not JSON lines ({exc.msg})") from None
    if not records or records[0].get("type") != "header" or records[0].get("format") != EXPORT_FORMAT:
        raise InputError(f"{p}: expected a {EXPORT_FORMAT} header on line 1")
    header = records[0]
    problems: list[str] = []
    notes: list[str] = []
    try:
        header_raw = bytes.fromhex(header["public_key"])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{p}: header public_key is not hex") from None
    header_key = _ed25519(header_raw, str(p))
    key, claimed = header_key, None
    if trusted_public_key is not None:
        key, claimed = _ed25519(trusted_public_key, "trusted key"), header_key
        if header_raw != trusted_public_key:
            problems.append(f"foreign key: the export header's public key {key_id(header_raw)} does not match "
                            f"the trusted key {key_id(trusted_public_key)}")
    else:
        notes.append("checkpoints checked against the key in the file header (no trusted key given)")
    events, cps = [], []
    for i, rec in enumerate(records[1:], start=2):
        kind = rec.pop("type", None)
        if kind == "event":
            events.append(rec)
        elif kind == "checkpoint":
            cps.append(rec)
        else:
            problems.append(f"line {i}: unknown record type {kind!r}")
    order = [ev["seq"] for ev in events]
    if order != sorted(order):
        problems.append("events are not in seq order in the file")
    anchor_seq, anchor_hash = int(header["anchor_seq"]), str(header["anchor_hash"])
    report = verify_chain(events, cps, key, anchor_seq=anchor_seq, anchor_hash=anchor_hash, claimed_key=claimed)
    if anchor_seq > 0 and not any(int(c["seq"]) >= anchor_seq for c in cps):
        notes.append("no signed checkpoint covers this extract; events after the last checkpoint are unattested")
    return _conclude(report, problems, notes, key=key, trusted=trusted_public_key is not None, witness=witness,
                     events=events, cps=cps, anchor_seq=anchor_seq, anchor_hash=anchor_hash,
                     as_of=str(header.get("exported_at") or "") or None)
