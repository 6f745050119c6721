"""Periodic access review: who can do what, on which dataset, and when they last did.

Why: reviewers certify grants; a grant nobody has used in months is a candidate
for removal. Rows are computed from the policy bound to each dataset, the
principals' roles, and the audit log's last `allow` per (principal, action, dataset).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from sqlalchemy import func
from sqlalchemy.orm import Session

from governance.evidence.audit import AuditEvent
from governance.access.identity import list_principals
from governance.storage.store import Dataset, PolicyRecord
from governance.storage.store import utcnow
from policies.engine import Request, decide
from policies.schema import parse_policy


def review(session: Session) -> Iterator[tuple[str, str, str, str, str, str, str | None, dt.datetime | None]]:
    """(dataset, principal, roles, action, purposes, grant id, expires, last used) rows."""
    last_used = {
        (p, a, r): ts
        for p, a, r, ts in session.query(
            AuditEvent.principal, AuditEvent.action, AuditEvent.resource, func.max(AuditEvent.ts)
        )
        .filter(AuditEvent.decision == "allow")
        .group_by(AuditEvent.principal, AuditEvent.action, AuditEvent.resource)
    }
    principals = [p for p in list_principals(session) if p.revoked_at is None]
    now = utcnow()
    for ds in session.query(Dataset).order_by(Dataset.name):
        rec = session.query(PolicyRecord).filter(PolicyRecord.content_hash == ds.policy_hash).one_or_none()
        if rec is None:
            continue
        policy = parse_policy(rec.text, source=f"policy {rec.name}")
        for grant in policy.grants:
            for p in principals:
                if not set(grant.roles) & set(p.roles or []):
                    continue
                for action in grant.actions:
                    # Ask the engine itself, so the review shows exactly what `decide` would allow
                    # (explicit denies and expiry included).
                    allowed = [
                        purpose for purpose in grant.purposes
                        if decide(Request(principal=p.name, roles=list(p.roles or []), action=str(action),
                                          dataset=ds.name, tags=list(ds.tags or []), purpose=purpose, now=now),
                                  policy).allowed
                    ]
                    if allowed:
                        yield (ds.name, p.name, ",".join(p.roles or []), str(action), ",".join(allowed), grant.id,
                               str(grant.expires)[:10] if grant.expires else None,
                               last_used.get((p.name, str(action), ds.name)))
