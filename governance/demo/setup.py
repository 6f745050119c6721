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
import shlex
from dataclasses import dataclass
from pathlib import Path

from governance.access.authorize import Identity
from governance.run.spec import PipelineSpec
from governance.workspace import Workspace

TOKEN_FILE = "demo.token"
EXAMPLES = Path(__file__).resolve().parent / "examples"  # package data: works from an installed wheel
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


def example_pipeline(name: str) -> Path:
    """The pipeline of a packaged example (`governance/demo/examples/<name>/pipeline.yaml`).

    Why packaged: `privgov demo` must work from an installed wheel, where there is
    no repository checkout with an `examples/` folder beside the working directory.
    """
    from privacy.errors import InputError

    path = EXAMPLES / name / "pipeline.yaml"
    if not path.is_file():
        known = sorted(p.name for p in EXAMPLES.iterdir() if (p / "pipeline.yaml").is_file())
        raise InputError(f"example `{name}`: no such packaged example (expected one of {', '.join(known)})")
    return path


def next_steps(root: Path, spec: PipelineSpec, run_uid: str | None) -> list[str]:
    """What to type after the demo: how to get a token, then three commands to try.

    Why printed: the demo's own token lives in a file, and without it the next
    command that reads data is refused; a newcomer should not have to guess.
    """
    from governance.workspace import resolve_root

    ws_opt = "" if root == resolve_root(None) else f" --workspace {shlex.quote(str(root))}"
    token_file = shlex.quote(str(root / TOKEN_FILE))
    dataset = shlex.quote(spec.dataset)
    lines = [
        "Next steps:",
        f"  Get a token: the demo principal `{spec.principal}`'s token (valid 1 day) is in {root / TOKEN_FILE}:",
        f"    export PRIVGOV_TOKEN=$(cat {token_file})",
        f"  (an expired one: `privgov token issue {spec.principal}{ws_opt} --token ADMIN_TOKEN`, with the admin "
        "token printed when the workspace was created)",
        "  Then try (each also takes --json):",
        f"    privgov budget show {dataset}{ws_opt}",
        (f"    privgov audit-model {run_uid} --skip-canary{ws_opt}   # uses the token; spends no budget"
         if run_uid is not None else f"    privgov dataset show {dataset}{ws_opt}"),
        f"    privgov audit verify{ws_opt}",
    ]
    return lines
