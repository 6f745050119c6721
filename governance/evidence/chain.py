"""The audit chain's canonical form and the checker that recomputes it.

Why one module for both sides: the writer (:class:`~governance.evidence.audit.AuditLog`)
and every verifier (the log itself, :mod:`governance.evidence.verify` on a workspace
or on an export file on another machine) must hash an event and sign a head byte
for byte the same way. Keeping the canonical JSON, the event hash, the checkpoint
message and :func:`verify_chain` together means they cannot drift apart.

:func:`verify_chain` is pure: plain dicts in (events sorted by seq, checkpoints),
a :class:`VerifyReport` out, each problem named by seq.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

GENESIS_HASH = "0" * 64
_CHECKPOINT_DOMAIN = b"privgov-audit-checkpoint/1\n"


@dataclass
class VerifyReport:
    """The outcome of verifying an audit log: `ok` only when the chain, signatures and any
    trusted key and witness all agree; every problem is one line naming its kind."""

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


def checkpoint_message(seq: int, head_hash: str, ts: str) -> bytes:
    """The bytes a checkpoint signature covers (domain-separated from any other signature)."""
    return _CHECKPOINT_DOMAIN + canonical_json({"seq": seq, "head_hash": head_hash, "ts": ts})


def public_key_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key: Ed25519PublicKey | bytes) -> str:
    raw = key if isinstance(key, bytes) else public_key_bytes(key)
    return hashlib.sha256(raw).hexdigest()[:16]


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


def signed_by(key: Ed25519PublicKey, seq: int, head_hash: str, ts: str, signature: str) -> bool:
    """Whether ``key`` signed the head (seq, head_hash, ts); a malformed signature is simply False."""
    try:
        key.verify(bytes.fromhex(signature), checkpoint_message(seq, head_hash, ts))
    except (InvalidSignature, ValueError):
        return False
    return True


def _signature_problem(cp: dict[str, Any], key: Ed25519PublicKey, claimed: Ed25519PublicKey | None) -> str | None:
    """None if ``key`` signed the checkpoint; otherwise why not. ``claimed`` (given only when
    ``key`` is a trusted key) is the key the log itself names: a checkpoint it signed is a
    foreign-key problem, not mere corruption."""
    seq = int(cp["seq"])
    if signed_by(key, seq, cp["head_hash"], cp["ts"], cp["signature"]):
        return None
    trusted = key_id(key)
    if claimed is not None:
        if signed_by(claimed, seq, cp["head_hash"], cp["ts"], cp["signature"]):
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
