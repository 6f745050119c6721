"""Shared fixtures: an initialised workspace and a principal with a token."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
REPO = Path(__file__).resolve().parents[1]
ADULT_DIR = Path(os.environ.get("PRIVGOV_ADULT_DIR", REPO.parent / "shared" / "data" / "adult"))


# The example datasets, bound as an admin would (`privgov policy bind`): (policy, tags, privacy unit).
# The unit is declared in each policy's `privacy:` section; the third field is only checked
# against it (as `policy bind --privacy-unit` does), None to take the policy's word.
EXAMPLE_BINDINGS = {
    "clinic-visits": (REPO / "policies" / "examples" / "clinic.yaml", ["phi"], "patient_id"),
    "adult-census": (REPO / "policies" / "examples" / "adult.yaml", ["census"], None),
}


ROW_STATEMENT = "each row is a distinct person (test data: one synthetic record per person)"


def policy_with_privacy(src: Path, dest: Path, privacy: dict | None) -> Path:
    """A copy of the policy `src` at `dest` whose `privacy:` section is `privacy` (left out when None).

    Why a copy: the unit lives in the policy text, so a test that needs another unit
    (per row, another rows bound, none at all) binds another text, as an admin would."""
    import yaml

    doc = yaml.safe_load(Path(src).read_text())
    doc.pop("privacy", None)
    if privacy is not None:
        doc["privacy"] = privacy
    dest.write_text(yaml.safe_dump(doc, sort_keys=False))
    return dest


def bind_examples(ws, bindings: dict | None = None) -> None:
    """Bind the example policies to their datasets, as the workspace admin."""
    from governance.access.authorize import Identity
    from governance.access.binding import bind_policy

    for dataset, (policy, tags, unit) in (EXAMPLE_BINDINGS if bindings is None else bindings).items():
        bind_policy(ws, Identity("admin", ("admin",)), dataset, policy, tags=tags, privacy_unit=unit)


def new_workspace(root: Path, principals: dict[str, tuple[str, list[str]]] | None = None, bindings: dict | None = None,
                  db_url: str | None = None):
    """A fresh workspace at `root` with principals {token key: (name, roles)} and the example
    policies bound (or `bindings`); returns (ws, tokens). `db_url`: a PostgreSQL server
    (the workspace gets its own schema there), else SQLite in the workspace."""
    from governance.access.identity import add_principal, issue_token
    from governance.workspace import Workspace

    principals = principals or {"demo": ("demo-ml-engineer", ["ml-engineer", "data-engineer"])}
    ws = Workspace.create(root, db_url=db_url)
    tokens = {}
    with ws.session() as s:
        for key, (name, roles) in principals.items():
            add_principal(s, name, kind="service" if key == "demo" else "person", roles=roles)
            tokens[key] = issue_token(s, name, ttl_days=1)
    bind_examples(ws, bindings)
    return ws, tokens


# --------------------------------------------------------------------------- databases
@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL cluster for the whole session (see tests/pg.py); fails, never skips,
    when PostgreSQL cannot be started. Its password is in the environment, as a deployment sets it."""
    from tests.pg import PostgresUnavailable, start_cluster

    try:
        cluster = start_cluster()
    except PostgresUnavailable as exc:
        pytest.fail(f"PostgreSQL tests need a local PostgreSQL: {exc}", pytrace=False)
    os.environ["PRIVGOV_DB_PASSWORD"] = cluster.password
    yield cluster
    os.environ.pop("PRIVGOV_DB_PASSWORD", None)
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request) -> str:
    """Store-facing tests run on both backends: the embedded default and a shared server."""
    return request.param


@pytest.fixture
def db_url(request, db_backend: str) -> str | None:
    """None (SQLite inside the workspace) or the test server's URL (no password)."""
    return request.getfixturevalue("pg_server").url if db_backend == "postgresql" else None


@pytest.fixture
def workspace(tmp_path: Path):
    """A fresh workspace with an admin and a demo principal; yields (ws, tokens)."""
    return new_workspace(tmp_path / "ws", {
        "admin": ("admin", ["admin"]),
        "demo": ("demo-ml-engineer", ["ml-engineer", "data-engineer"]),
        "mallory": ("mallory", ["contractor"]),
    })
