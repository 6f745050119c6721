"""Audit witness: signed checkpoint heads copied outside the database.

Why: the hash chain and signed checkpoints live in the same database an
attacker with write access can edit. Such an attacker can delete checkpoint
rows and truncate the log, or (holding the signing key) rewrite everything and
re-sign it, and the database alone still looks consistent. A witness keeps
every signed head (seq, head hash, time, key id, signature) somewhere the
attacker cannot rewrite — an append-only JSON-lines file the auditor owns
today, a transparency log or WORM bucket later (any :class:`WitnessSink`).
Verifying against it shows truncation and rewriting before the last witnessed
head.

A head reaches the witness only after the database transaction that wrote the
checkpoint commits (:func:`append_after_commit`): a rolled-back checkpoint
never exists in the database, so a witness line for it would be a false alarm.
If the append itself fails the caller gets an error; the committed checkpoint
is then simply unwitnessed, which weakens coverage but never raises a false
alarm.

This module knows nothing about how heads are signed or compared with a log;
:mod:`governance.evidence.audit` does that.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from governance.errors import InputError, WorkspaceError

WITNESS_FORMAT = "privgov-audit-witness/1"
DEFAULT_WITNESS_NAME = "audit-witness.jsonl"
_PENDING = "privgov.witness.pending"  # session.info key: [[owner transaction, sink, head], ...]
_HOOKED = "privgov.witness.hooked"


@dataclass(frozen=True)
class WitnessHead:
    """One signed checkpoint head, exactly as the checkpoint row holds it."""

    seq: int
    head_hash: str
    ts: str
    key_id: str
    signature: str


class WitnessSink(Protocol):
    """Somewhere heads are appended and never rewritten (a file now; a remote log later)."""

    def append(self, head: WitnessHead) -> None: ...


class FileWitness:
    """Append-only JSON-lines file: one head per line, opened with O_APPEND, fsynced, mode 0600.

    O_APPEND makes each single ``write`` land at the current end even with several
    writers, so concurrent processes never overwrite each other's lines."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def append(self, head: WitnessHead) -> None:
        line = json.dumps({"format": WITNESS_FORMAT, **asdict(head)}, sort_keys=True, separators=(",", ":"))
        created = not self.path.exists()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, (line + "\n").encode("ascii"))
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:  # make the new directory entry durable too
                dfd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
        except OSError as exc:
            raise WorkspaceError(f"audit witness {self.path}: cannot append checkpoint seq {head.seq} "
                                 f"({exc.strerror}); it is committed but unwitnessed — fix the path "
                                 "(workspace.json `audit_witness`) so the next checkpoint is witnessed") from None


def read_witness(path: Path | str) -> list[tuple[int, WitnessHead]]:
    """Every head in a witness file with its line number; a malformed line is an InputError."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"{p}: witness file does not exist (pass the auditor's copy with --witness)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read witness file ({exc})") from None
    heads: list[tuple[int, WitnessHead]] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec: dict[str, Any] = json.loads(line)
            if rec.get("format") != WITNESS_FORMAT:
                raise ValueError(f"expected format {WITNESS_FORMAT}")
            head = WitnessHead(seq=int(rec["seq"]), head_hash=str(rec["head_hash"]), ts=str(rec["ts"]),
                               key_id=str(rec["key_id"]), signature=str(rec["signature"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{p}:{n}: not a witness line ({exc})") from None
        heads.append((n, head))
    return heads


def resolve_witness_path(root: Path, config: dict[str, Any]) -> Path:
    """Workspace config ``audit_witness`` (relative paths are under the workspace), default
    ``<workspace>/audit-witness.jsonl``."""
    return Path(root) / Path(str(config.get("audit_witness") or DEFAULT_WITNESS_NAME)).expanduser()


# --------------------------------------------------------------------------- after commit


def append_after_commit(session: Session, sink: WitnessSink, head: WitnessHead) -> None:
    """Queue ``head`` for ``sink``; it is appended when the session's outermost transaction
    commits and dropped if the transaction (or the savepoint it was written in) rolls back
    or the session closes without committing."""
    if not session.info.get(_HOOKED):
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_transaction_end", _after_transaction_end)
        session.info[_HOOKED] = True
    owner = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append([owner, sink, head])


def _after_commit(session: Session) -> None:
    pending = session.info.get(_PENDING) or []
    nested = session.get_nested_transaction()
    if nested is not None:  # a savepoint was released: its heads now belong to the enclosing transaction
        for entry in pending:
            if entry[0] is nested:
                entry[0] = nested.parent
        return
    session.info[_PENDING] = []
    for _, sink, head in sorted(pending, key=lambda e: e[2].seq):
        sink.append(head)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    """Anything still owned by an ending transaction was not committed: drop it."""
    pending = session.info.get(_PENDING)
    if pending:
        session.info[_PENDING] = [e for e in pending if e[0] is not transaction]
