"""The one authorization path: authenticate, find the dataset's bound policy, decide, audit.

Why one path: the CLI, the governed run and model operations (and later the
HTTP service) used to carry three copies of this logic, and each copy had its
own gap (denials lost in rolled-back sessions, a pipeline choosing its own
policy, dataset names revealed before authentication). Here the order is fixed:

1. authenticate the token - a failure is audited as ``unauthenticated`` (with
   the name the caller claimed) and nothing else is looked at;
2. look up the dataset and the policy an admin bound to it (``privgov policy
   bind``) - the only policy that ever applies to it;
3. decide, and audit the decision (allow or deny) in its own committed
   transaction, under the authenticated identity.

An unknown dataset, a dataset without a bound policy and a forbidden action
give the same error, so a token holder cannot probe which datasets exist.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from governance.evidence.recorder import UNAUTHENTICATED, record_event
from privacy.errors import AccessDenied, IntegrityFailure

if TYPE_CHECKING:  # pragma: no cover
    from policies.engine import Decision
    from policies.schema import Policy
    from governance.workspace import Workspace


@dataclass(frozen=True)
class Identity:
    """Who the token belongs to: the only name decisions and audit events use."""

    name: str
    roles: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


@dataclass(frozen=True)
class DatasetRef:
    """The catalog facts a decision and a run need, read once."""

    id: int
    name: str
    lineage_id: str
    privacy_unit: str | None
    row_id_column: str
    tags: tuple[str, ...]
    policy_hash: str | None

    @property
    def unit(self) -> str:
        return self.privacy_unit or "row"


@dataclass(frozen=True)
class Authorization:
    """An allow decision: who, what, why, under which bound policy, with which obligations."""

    identity: Identity
    action: str
    purpose: str | None
    dataset: DatasetRef
    policy: "Policy"
    decision: "Decision"

    @property
    def obligations(self) -> Any:
        return self.decision.obligations


def shown(text: str | None, limit: int = 200) -> str:
    """A caller-supplied string as it may appear in a one-line error: control characters
    escaped (a newline in a purpose must not forge a second `error:` line for the
    pipeline that parses stderr) and long values cut."""
    s = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return s if len(s) <= limit else s[:limit] + "…"


def denied_message(who: str, action: str, dataset: str, purpose: str | None) -> str:
    """The same words for an unknown dataset, an unbound one and a forbidden action."""
    return (f"`{who}` may not `{action}` `{shown(dataset)}` for purpose `{shown(purpose)}`: denied (no such dataset, "
            "no policy bound to it, or no grant; the reason is recorded in the audit log)")


def dataset_ref(ds: Any) -> DatasetRef:
    return DatasetRef(id=int(ds.id), name=ds.name, lineage_id=ds.lineage_id, privacy_unit=ds.privacy_unit,
                      row_id_column=ds.row_id_column, tags=tuple(ds.tags or ()), policy_hash=ds.policy_hash)


# Token-shaped text is withheld by the audit log itself (every field, every path):
# `record_decision` is kept as the name decisions are recorded under.
record_decision = record_event


def claimed_name(claimed: str | None) -> str | None:
    """The name a caller claimed, as the audit log may hold it.

    Why: the log refuses detail strings that look like API tokens, so a pipeline
    declaring `principal: pgv_...` (a token pasted into the wrong field) made
    recording the denial itself fail - the one denial the log then missed."""
    from governance.evidence.audit import WITHHELD, withhold_tokens

    if not claimed:
        return None
    if claimed.startswith("pgv_"):
        return WITHHELD
    return withhold_tokens(claimed)[:128]


def authenticate(ws: "Workspace", token: str | None, *, action: str, resource: str | None = None,
                 purpose: str | None = None, claimed: str | None = None) -> Identity:
    """The token's principal. A missing or bad token is audited (committed) before it is raised."""
    from governance.access.identity import authenticate as check_token

    try:
        if not token:
            raise AccessDenied(f"`{action}` needs an API token: pass --token or set PRIVGOV_TOKEN")
        with ws.session() as s:
            p = check_token(s, token)
            return Identity(name=p.name, roles=tuple(p.roles or ()))
    except AccessDenied as exc:
        record_decision(ws, principal=UNAUTHENTICATED, action=action, decision="deny", resource=resource,
                        purpose=purpose, reason=str(exc)[:500], details={"claimed_principal": claimed_name(claimed)})
        raise


def policy_digest(text: str) -> str:
    """The content hash a policy text is stored and bound under (sha256 of its UTF-8 bytes)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _ParsedPolicies:
    """Parsed bound policies by content hash (sha256 of the text), least recently used out.

    Why: parsing and validating the policy YAML took most of a decision's time
    (tens of ms). The cache is keyed by the content hash, and the dataset's
    binding (which hash applies) is read from the database on every decision, so
    a rebind takes effect for the very next decision in every process. A text
    is parsed only after its stored bytes are checked against that hash: the
    cache can never hold something other than what the hash names."""

    def __init__(self, max_entries: int = 64) -> None:
        self._max = max_entries
        self._entries: "OrderedDict[str, Policy]" = OrderedDict()
        self._lock = threading.Lock()

    def get(self, policy_hash: str) -> "Policy | None":
        with self._lock:
            policy = self._entries.get(policy_hash)
            if policy is not None:
                self._entries.move_to_end(policy_hash)
            return policy

    def put(self, policy_hash: str, policy: "Policy") -> None:
        with self._lock:
            self._entries[policy_hash] = policy
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


PARSED_POLICIES = _ParsedPolicies()


def load_bound_policy(session: Any, policy_hash: str | None) -> "Policy | None":
    """The policy text an admin bound, parsed; None when nothing (readable) is bound.

    Raises IntegrityFailure when the stored text no longer hashes to the bound
    hash (edited in the database behind the binding). The returned policy is
    shared (cached): treat it as immutable, as the engine does."""
    from governance.storage.store import PolicyRecord
    from policies.schema import parse_policy

    if not policy_hash:
        return None
    cached = PARSED_POLICIES.get(policy_hash)
    if cached is not None:
        return cached
    rec = session.query(PolicyRecord).filter(PolicyRecord.content_hash == policy_hash).one_or_none()
    if rec is None:
        return None
    if policy_digest(rec.text) != policy_hash:
        raise IntegrityFailure(f"bound policy {shown(rec.name, 100)} ({policy_hash[:12]}): the stored text does not "
                               "match its hash (edited in the database after it was bound); rebind the policy file")
    policy = parse_policy(rec.text, source=f"bound policy {rec.name} ({policy_hash[:12]})")
    PARSED_POLICIES.put(policy_hash, policy)
    return policy


def decide_for(ws: "Workspace", identity: Identity, action: str, dataset: str, purpose: str | None, *,
               version: int | None = None, details: dict[str, Any] | None = None,
               shown_action: str | None = None) -> Authorization:
    """Decide for an already authenticated identity; audit the decision; raise on deny.

    `shown_action` is the word the denial message uses when the decided action
    depends on what is stored (an export of a quarantine version is decided as
    `read_quarantine`): naming the decided action would tell a caller without
    any grant that the dataset exists and what kind that version is."""
    from governance.storage.store import Dataset, utcnow
    from policies.engine import Request, decide

    with ws.session() as s:
        ds = s.query(Dataset).filter(Dataset.name == dataset).one_or_none()
        ref = dataset_ref(ds) if ds is not None else None
        try:
            policy = load_bound_policy(s, ref.policy_hash) if ref is not None else None
        except IntegrityFailure:  # audited as a deny, then raised (exit 4)
            record_decision(ws, principal=identity.name, action=action, decision="deny", resource=dataset,
                            version=version, purpose=purpose, reason="bound policy text does not match its hash",
                            details=details)
            raise
    if ref is None or policy is None:
        reason = "no such dataset" if ref is None else "no policy bound to the dataset (deny by default)"
        record_decision(ws, principal=identity.name, action=action, decision="deny", resource=dataset,
                        version=version, purpose=purpose, reason=reason, details=details)
        raise AccessDenied(denied_message(identity.name, shown_action or action, dataset, purpose))
    decision = decide(Request(principal=identity.name, roles=list(identity.roles), action=action, dataset=dataset,
                              tags=list(ref.tags), purpose=purpose, now=utcnow()), policy)
    record_decision(ws, principal=identity.name, action=action, decision="allow" if decision.allowed else "deny",
                    resource=dataset, version=version, purpose=purpose, reason=decision.reason,
                    details={**(details or {}), "policy_hash": (ref.policy_hash or "")[:16]})
    if not decision.allowed:
        raise AccessDenied(denied_message(identity.name, shown_action or action, dataset, purpose))
    return Authorization(identity=identity, action=action, purpose=purpose, dataset=ref, policy=policy,
                         decision=decision)


def authorize(ws: "Workspace", token: str | None, action: str, dataset: str, purpose: str | None, *,
              version: int | None = None, claimed: str | None = None,
              details: dict[str, Any] | None = None) -> Authorization:
    """Authenticate, then decide under the dataset's bound policy; every outcome is audited."""
    identity = authenticate(ws, token, action=action, resource=dataset, purpose=purpose, claimed=claimed)
    return decide_for(ws, identity, action, dataset, purpose, version=version, details=details)


def require_admin(ws: "Workspace", token: str | None, action: str, resource: str | None = None) -> Identity:
    """Admin operations need a token whose principal holds the `admin` role; audited either way."""
    identity = authenticate(ws, token, action=action, resource=resource)
    if not identity.is_admin:
        record_decision(ws, principal=identity.name, action=action, decision="deny", resource=resource,
                        reason="principal lacks role admin")
        raise AccessDenied(f"`{action}` needs the admin role; `{identity.name}` has {sorted(identity.roles)}")
    record_decision(ws, principal=identity.name, action=action, decision="allow", resource=resource)
    return identity


def require_token(ws: "Workspace", token: str | None, action: str, resource: str | None = None) -> Identity:
    """Keyed operations on files outside the store (e.g. `pii apply`): any authenticated principal, audited."""
    identity = authenticate(ws, token, action=action, resource=resource)
    record_decision(ws, principal=identity.name, action=action, decision="allow", resource=resource)
    return identity
