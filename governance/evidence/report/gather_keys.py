"""Report section on keys: KEKs (id, age, active), data keys per KEK, rotations and shredded keys.

Why: encryption at rest is only as good as the key lifecycle; an auditor checks that
old KEKs were rotated out, and that every erasure really destroyed a data key (crypto-
shredding), and what that key protected. Only ids, times and counts are shown: no key
material, wrapped or not.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from governance.evidence.audit import AuditEvent
from governance.evidence.report.scope import Scope
from governance.storage.keyring import DataKey
from governance.storage.store import Dataset, DatasetVersion, Run, utcnow

if TYPE_CHECKING:  # pragma: no cover
    from governance.storage.keyring import Keyring

_KEY_ACTIONS = ("keys_rotate", "keys_retire", "erase")


@dataclass(frozen=True)
class KekRow:
    kek_id: str
    created: str
    age_days: int | None
    active: bool
    live_data_keys: int


@dataclass(frozen=True)
class ShreddedRow:
    data_key_id: int
    kek_id: str
    created: dt.datetime
    destroyed: dt.datetime
    protected: str


@dataclass(frozen=True)
class KeyEvent:
    seq: int
    time: str
    principal: str
    action: str
    resource: str | None
    reason: str | None


@dataclass
class KeyStatus:
    keks: list[KekRow] = field(default_factory=list)
    retired_keks: list[str] = field(default_factory=list)  # KEK ids data keys still name, no longer in the keyring
    live_data_keys: int = 0
    shredded: list[ShreddedRow] = field(default_factory=list)
    events: list[KeyEvent] = field(default_factory=list)


def _age(created: str | None, now: dt.datetime) -> int | None:
    try:
        when = dt.datetime.fromisoformat(str(created))
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return max(0, (now - when).days)


def _protected(session: Session, key_id: int) -> str:
    """What a data key encrypted: dataset versions and models, by name (it is destroyed now)."""
    what = [f"{name} v{ver} ({kind})" for name, ver, kind in
            session.query(Dataset.name, DatasetVersion.version, DatasetVersion.kind)
            .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
            .filter(DatasetVersion.data_key_id == key_id)]
    what += [f"model of run {uid}" for (uid,) in session.query(Run.run_uid).filter(Run.model_data_key_id == key_id)]
    return ", ".join(what) or "temporary object (checkpoint or export)"


def _kek_created(keyring: "Keyring") -> dict[str, str]:
    """Creation time per KEK id from the keyring's public metadata file (ids, times, checks; no key material)."""
    try:
        keks = json.loads(keyring.path.read_text(encoding="utf-8")).get("keks") or {}
    except (OSError, ValueError):
        return {}
    return {str(k): str(v.get("created_at", "")) for k, v in keks.items() if isinstance(v, dict)}


def key_status(session: Session, keyring: "Keyring", scope: Scope) -> KeyStatus:
    now = utcnow()
    status = KeyStatus()
    live: dict[str, int] = {}
    for row in session.query(DataKey).order_by(DataKey.id):
        if row.wrapped is not None:
            live[row.kek_id] = live.get(row.kek_id, 0) + 1
            status.live_data_keys += 1
        elif row.destroyed_at is not None and scope.is_after(row.destroyed_at):
            status.shredded.append(ShreddedRow(data_key_id=row.id, kek_id=row.kek_id, created=row.created_at,
                                               destroyed=row.destroyed_at, protected=_protected(session, row.id)))
    created_at = _kek_created(keyring)
    for kek_id in keyring.kek_ids:
        created = created_at.get(kek_id)
        status.keks.append(KekRow(kek_id=kek_id, created=(created or "")[:19], age_days=_age(created, now),
                                  active=kek_id == keyring.active_kek_id, live_data_keys=live.get(kek_id, 0)))
    status.retired_keks = sorted({k for (k,) in session.query(DataKey.kek_id).distinct()} - set(keyring.kek_ids))
    for e in session.query(AuditEvent).filter(AuditEvent.action.in_(_KEY_ACTIONS)).order_by(AuditEvent.seq):
        if scope.is_after(e.ts) and (e.action != "erase" or scope.has_dataset(e.resource)):
            status.events.append(KeyEvent(seq=e.seq, time=str(e.ts)[:19], principal=e.principal, action=e.action,
                                          resource=e.resource, reason=e.reason))
    return status
