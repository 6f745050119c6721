"""Verify an audit log against trust anchors the auditor holds: a key and a witness.

Why separate from the log: verifying needs no KEK and no write access, and an
export is verified on any machine. The chain alone proves only internal
consistency (whoever can write the database can delete checkpoints, truncate the
log, or rewrite and re-sign it); a ``trusted_key`` the auditor kept and the
auditor's ``witness`` copy of the signed heads rule that out. Every problem is
named by kind (``foreign key``, ``witness``, ``rewriting``, ``truncation``, and the
chain's own from :func:`~governance.evidence.chain.verify_chain`).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from governance.errors import InputError
from governance.evidence.audit import EXPORT_FORMAT, load_chain
from governance.evidence.chain import (
    GENESIS_HASH,
    VerifyReport,
    key_id,
    public_key_bytes,
    signed_by,
    verify_chain,
)
from governance.evidence.witness import WitnessHead, read_witness
from governance.storage.keyring import public_signing_key

if TYPE_CHECKING:  # pragma: no cover
    from governance.workspace import Workspace

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
        if not signed_by(key, h.seq, h.head_hash, h.ts, h.signature):
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


def verify_workspace(ws: Workspace, trusted_key: bytes | None = None,
                     witness: Path | None = None) -> VerifyReport:
    """Verify a workspace's log with its public key only (``keys/signing.pub``; no KEK is
    touched), against a ``trusted_key`` and the auditor's ``witness`` copy when given.

    ``ws`` is an open workspace (``Workspace.open`` touches no key either): evidence
    reads what the workspace composes and never opens one itself."""
    problems: list[str] = []
    local = public_signing_key(ws.root)
    key, claimed = local, None
    if trusted_key is not None:
        key, claimed = _ed25519(trusted_key, "--trusted-key"), local
        if public_key_bytes(local) != trusted_key:
            problems.append(f"foreign key: {ws.root / 'keys' / 'signing.pub'} holds key {key_id(local)}, "
                            f"not the trusted key {key_id(trusted_key)}")
    with ws.session() as s:
        events, cps = load_chain(s)
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
