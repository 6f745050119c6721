"""Setting up the quick-start workspace that `privgov demo` (and `make demo`) runs in.

Why only on creation: enrolling principals, issuing tokens and binding a
policy are admin acts. `privgov demo` performs them itself only for a
workspace it has just created (the person running it is then the admin);
on an existing workspace it behaves like any other command and needs a token.
The demo principal's token is kept in `<workspace>/demo.token` (0600, one day)
so that `make demo` can be repeated; it grants only the demo principal's roles.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from governance.access.authorize import Identity
from governance.run.spec import PipelineSpec
from governance.workspace import Workspace

TOKEN_FILE = "demo.token"
DEMO_ROLES = ["ml-engineer", "data-engineer"]


@dataclass(frozen=True)
class DemoWorkspace:
    ws: Workspace
    token: str
    created: bool
    admin_token: str | None  # shown once, only when the workspace was created here


def prepare(root: Path, spec: PipelineSpec, token: str | None) -> DemoWorkspace:
    """Open (or create and set up) the workspace the demo pipeline runs in."""
    if (root / "workspace.json").exists():
        ws = Workspace.open(root)
        saved = root / TOKEN_FILE
        if not token and saved.is_file():
            token = saved.read_text(encoding="ascii").strip()
        if not token:  # audited like every other attempt without a token
            from governance.access.authorize import authenticate

            authenticate(ws, None, action="demo", resource=spec.dataset, claimed=spec.principal)
        return DemoWorkspace(ws=ws, token=token, created=False, admin_token=None)
    return _create(root, spec)


def _create(root: Path, spec: PipelineSpec) -> DemoWorkspace:
    from governance.access.binding import bind_policy
    from governance.access.identity import add_principal, issue_token

    ws = Workspace.create(root)
    with ws.lock():
        with ws.session() as s:
            add_principal(s, "admin", kind="person", roles=["admin"])
            admin_token = issue_token(s, "admin", ttl_days=90)
            add_principal(s, spec.principal, kind="service", roles=DEMO_ROLES)
            token = issue_token(s, spec.principal, ttl_days=1)
            ws.audit.record(s, principal="local-admin", action="init", decision="info",
                            details={"admin": "admin", "demo_principal": spec.principal[:128]})
        if spec.policy is not None:
            bind_policy(ws, Identity("admin", ("admin",)), spec.dataset, spec.resolve(spec.policy),
                        tags=list(spec.tags), privacy_unit=spec.privacy_unit)
    path = root / TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(token + "\n")
    return DemoWorkspace(ws=ws, token=token, created=True, admin_token=admin_token)
