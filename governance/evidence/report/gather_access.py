"""Report sections about people and policies: the Art. 30 record of processing and the access review.

Why the bound policy only: the policy bound to a dataset is the only one that decides
access to it, so its text (by hash) is the only record of processing that can describe
what happens to that dataset. A dataset without a bound policy, or a policy without a
field Art. 30 requires, is flagged in words, never shown as an empty cell.

Tokens are shown by their public id only (the part before the secret); the secret is
never stored in a readable form and never shown.
"""
from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import dataclass, field

from sqlalchemy import func
from sqlalchemy.orm import Session

from governance.evidence.audit import AuditEvent
from governance.evidence.report.gather_data import datasets_in
from governance.evidence.report.scope import Scope
from governance.storage.principals import ApiToken, Principal
from governance.storage.store import PolicyRecord, utcnow
from policies.processing import REQUIRED_FIELDS, missing_fields
from policies.schema import Policy, parse_policy
from privacy.errors import InputError


@dataclass(frozen=True)
class ProcessingEntry:
    """One dataset's record of processing, from the policy bound to it."""

    dataset: str
    policy: str | None
    policy_hash: str | None
    fields: list[tuple[str, str]]  # (field, value in words) for the fields that are declared
    missing: list[str]
    problem: str | None = None  # no policy bound, or its text no longer parses


@dataclass(frozen=True)
class TokenRow:
    principal: str
    token_id: str
    created: dt.datetime
    last_used: dt.datetime | None
    expires: dt.datetime | None
    revoked: dt.datetime | None
    state: str


@dataclass(frozen=True)
class PrincipalRow:
    name: str
    kind: str
    roles: str
    created: dt.datetime
    revoked: dt.datetime | None
    last_allow: str | None
    last_deny: str | None
    tokens: int


@dataclass(frozen=True)
class GrantRow:
    dataset: str
    grant: str
    roles: str
    holders: str
    actions: str
    purposes: str
    expires: str


@dataclass
class AccessReview:
    principals: list[PrincipalRow] = field(default_factory=list)
    tokens: list[TokenRow] = field(default_factory=list)
    grants: list[GrantRow] = field(default_factory=list)


def bound_policy(session: Session, policy_hash: str | None) -> tuple[PolicyRecord | None, Policy | None, str | None]:
    """(record, parsed policy, problem) for a dataset's bound policy hash."""
    if not policy_hash:
        return None, None, "no policy is bound to this dataset (deny by default: nothing may read it)"
    rec = session.query(PolicyRecord).filter(PolicyRecord.content_hash == policy_hash).one_or_none()
    if rec is None:
        return None, None, f"the bound policy {policy_hash[:12]} is not in the store (integrity problem)"
    try:
        return rec, parse_policy(rec.text, source=f"policy {rec.name}"), None
    except InputError as exc:
        return rec, None, f"the bound policy no longer loads: {exc}"


def _words(value: object) -> str:
    return "; ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def processing_records(session: Session, scope: Scope) -> list[ProcessingEntry]:
    out = []
    for ds in datasets_in(session, scope):
        rec, policy, problem = bound_policy(session, ds.policy_hash)
        record = policy.processing if policy is not None else None
        missing = missing_fields(record) if policy is not None else list(REQUIRED_FIELDS)
        fields: list[tuple[str, str]] = []
        if record is not None:
            for name in (*REQUIRED_FIELDS, "transfers"):
                if name not in missing and getattr(record, name) not in (None, [], ""):
                    fields.append((name, _words(getattr(record, name))))
        out.append(ProcessingEntry(dataset=ds.name, policy=rec.name if rec else None,
                                   policy_hash=ds.policy_hash, fields=fields, missing=missing, problem=problem))
    return out


def _token_state(t: ApiToken, now: dt.datetime) -> str:
    if t.revoked_at is not None:
        return "revoked"
    if t.expires_at is not None and t.expires_at <= now:
        return "expired"
    return "active"


def access_review(session: Session, scope: Scope) -> AccessReview:
    """Principals, their tokens (id only) and last decisions, and the grants of each bound policy."""
    now = utcnow()
    last: dict[tuple[str, str], str] = {}
    q = session.query(AuditEvent.principal, AuditEvent.decision, func.max(AuditEvent.ts)).filter(
        AuditEvent.decision.in_(["allow", "deny"]))
    if scope.dataset:
        q = q.filter(AuditEvent.resource == scope.dataset)
    for principal, decision, ts in q.group_by(AuditEvent.principal, AuditEvent.decision):
        last[(principal, decision)] = str(ts)[:19]
    principals = session.query(Principal).order_by(Principal.name).all()
    by_id = {p.id: p for p in principals}
    review = AccessReview()
    tokens = session.query(ApiToken).order_by(ApiToken.created_at).all()
    count: dict[int, int] = {}
    for t in tokens:
        count[t.principal_id] = count.get(t.principal_id, 0) + 1
        owner = by_id.get(t.principal_id)
        review.tokens.append(TokenRow(principal=owner.name if owner else f"#{t.principal_id}", token_id=t.token_id,
                                      created=t.created_at, last_used=t.last_used_at, expires=t.expires_at,
                                      revoked=t.revoked_at, state=_token_state(t, now)))
    for p in principals:
        review.principals.append(PrincipalRow(name=p.name, kind=p.kind, roles=", ".join(p.roles or []),
                                              created=p.created_at, revoked=p.revoked_at,
                                              last_allow=last.get((p.name, "allow")),
                                              last_deny=last.get((p.name, "deny")), tokens=count.get(p.id, 0)))
    for ds in datasets_in(session, scope):
        _, policy, _ = bound_policy(session, ds.policy_hash)
        if policy is None:
            continue
        for g in policy.grants:
            if not (any(fnmatch.fnmatchcase(ds.name, pat) for pat in g.datasets) or set(g.tags) & set(ds.tags or [])):
                continue  # the grant names other datasets; it does not apply here
            holders = [p.name for p in principals if p.revoked_at is None and set(g.roles) & set(p.roles or [])]
            review.grants.append(GrantRow(dataset=ds.name, grant=g.id, roles=", ".join(g.roles),
                                          holders=", ".join(holders) or "nobody", actions=", ".join(g.actions),
                                          purposes=", ".join(g.purposes),
                                          expires=str(g.expires)[:10] if g.expires else "never"))
    return review
