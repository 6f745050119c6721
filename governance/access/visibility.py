"""What an authenticated caller may see of the catalog and the evidence (the HTTP service's reads).

Why a rule of its own: the CLI's `dataset list`, `budget show`, `audit export`
and `report` take no token, because whoever can open the workspace directory
already holds everything in it. Over HTTP the token is the only credential, so
these reads need a rule, decided here and audited like every other decision:

* a dataset is **visible** to a caller whose roles include `admin` or `auditor`
  (they read every dataset's name in the report and the audit log anyway), or
  when the dataset's bound policy, asked through the pure `decide()`, allows the
  caller at least one action for at least one purpose of a grant naming one of
  their roles (so an explicit deny, an expired grant or a tag rule hides it);
* an unknown, an unbound and an invisible dataset are refused with the same
  words (`denied_message`), so names cannot be probed;
* the audit log and the report are evidence for `admin` and `auditor` only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from governance.access.authorize import (
    DatasetRef, Identity, dataset_ref, denied_message, load_bound_policy, record_decision,
)
from privacy.errors import AccessDenied

if TYPE_CHECKING:  # pragma: no cover
    from policies.schema import Policy
    from governance.workspace import Workspace

EVIDENCE_ROLES = ("admin", "auditor")


def reads_everything(identity: Identity) -> bool:
    return any(r in EVIDENCE_ROLES for r in identity.roles)


def require_role(ws: "Workspace", identity: Identity, action: str, roles: tuple[str, ...] = EVIDENCE_ROLES,
                 resource: str | None = None) -> Identity:
    """`identity` holds one of `roles`, or AccessDenied; allow and deny are audited."""
    if not any(r in roles for r in identity.roles):
        record_decision(ws, principal=identity.name, action=action, decision="deny", resource=resource,
                        reason=f"principal lacks role {' or '.join(roles)}")
        raise AccessDenied(f"`{action}` needs the {' or '.join(roles)} role; `{identity.name}` has "
                           f"{sorted(identity.roles)}")
    record_decision(ws, principal=identity.name, action=action, decision="allow", resource=resource)
    return identity


def _may_see(identity: Identity, ref: DatasetRef, policy: "Policy | None") -> bool:
    from governance.storage.store import utcnow
    from policies.engine import Request, decide

    if reads_everything(identity):
        return True
    if policy is None:
        return False
    now = utcnow()
    for grant in policy.grants:
        if not set(grant.roles) & set(identity.roles):
            continue
        for action in grant.actions:
            for purpose in grant.purposes:
                request = Request(principal=identity.name, roles=list(identity.roles), action=action,
                                  dataset=ref.name, tags=list(ref.tags), purpose=purpose, now=now)
                if decide(request, policy).allowed:
                    return True
    return False


@dataclass(frozen=True)
class VisibleDataset:
    ref: DatasetRef
    latest: Any  # the latest data version row, or None


def visible_datasets(ws: "Workspace", identity: Identity) -> list[VisibleDataset]:
    """The datasets `identity` may see, by name; the listing is audited (how many, not which)."""
    from governance.storage import catalog
    from governance.storage.store import Dataset

    found: list[VisibleDataset] = []
    with ws.session() as s:
        for ds in s.query(Dataset).order_by(Dataset.name):
            ref = dataset_ref(ds)
            if _may_see(identity, ref, load_bound_policy(s, ref.policy_hash)):
                versions = catalog.versions_of(s, ds, kind="data")
                found.append(VisibleDataset(ref, versions[-1] if versions else None))
    record_decision(ws, principal=identity.name, action="list_datasets", decision="info",
                    details={"shown": len(found)})
    return found


def require_visible(ws: "Workspace", identity: Identity, name: str, action: str) -> DatasetRef:
    """The dataset, when `identity` may see it; else the one denial for unknown and forbidden alike."""
    from governance.storage.store import Dataset

    with ws.session() as s:
        ds = s.query(Dataset).filter(Dataset.name == name).one_or_none()
        ref = dataset_ref(ds) if ds is not None else None
        visible = ref is not None and _may_see(identity, ref, load_bound_policy(s, ref.policy_hash))
    if ref is None or not visible:
        reason = "no such dataset" if ref is None else "no grant of the bound policy lets the principal see it"
        record_decision(ws, principal=identity.name, action=action, decision="deny", resource=name, reason=reason)
        raise AccessDenied(denied_message(identity.name, action, name, None))
    record_decision(ws, principal=identity.name, action=action, decision="allow", resource=name)
    return ref
