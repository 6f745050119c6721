"""Shared fixtures: an initialised workspace and a principal with a token."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
REPO = Path(__file__).resolve().parents[1]
ADULT_DIR = Path(os.environ.get("PRIVGOV_ADULT_DIR", REPO.parent / "shared" / "data" / "adult"))


@pytest.fixture
def workspace(tmp_path: Path):
    """A fresh workspace with an admin and a demo principal; yields (ws, tokens)."""
    from governance.identity import add_principal, issue_token
    from governance.workspace import Workspace

    ws = Workspace.create(tmp_path / "ws")
    with ws.session() as s:
        add_principal(s, "admin", kind="person", roles=["admin"])
        add_principal(s, "demo-ml-engineer", kind="service", roles=["ml-engineer", "data-engineer"])
        add_principal(s, "mallory", kind="person", roles=["contractor"])
        tokens = {
            "admin": issue_token(s, "admin", ttl_days=1),
            "demo": issue_token(s, "demo-ml-engineer", ttl_days=1),
            "mallory": issue_token(s, "mallory", ttl_days=1),
        }
    return ws, tokens
