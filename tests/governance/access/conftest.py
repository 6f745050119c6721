"""Helpers for the access red-team tests: a workspace with one principal per role, the CLI
called in-process, and the audit events an attempt left behind."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, new_workspace

CLINIC_POLICY = REPO / "policies" / "examples" / "clinic.yaml"

# token key -> (principal, roles); `admin` binds, `demo` runs pipelines, the rest probe.
PEOPLE = {
    "admin": ("admin", ["admin"]),
    "demo": ("demo-ml-engineer", ["ml-engineer", "data-engineer"]),
    "ana": ("ana", ["analyst"]),
    "dora": ("dora", ["data-engineer"]),
    "mallory": ("mallory", ["contractor"]),
}


@pytest.fixture
def people(tmp_path: Path, db_url):
    """A fresh workspace holding PEOPLE, with the example policies bound; (ws, tokens).
    On SQLite and on PostgreSQL (`db_url`)."""
    return new_workspace(tmp_path / "ws", PEOPLE, db_url=db_url)


def privgov(capsys, *args: str) -> tuple[int, str, str]:
    """`privgov ARGS` in-process, as `governance.cli.main` runs it: (exit code, stdout, stderr)."""
    from governance.cli import main

    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def head(ws) -> int:
    """The last audit sequence number."""
    from sqlalchemy import func

    from governance.evidence.audit import AuditEvent

    with ws.session() as s:
        return int(s.query(func.max(AuditEvent.seq)).scalar() or 0)


def events_after(ws, seq: int) -> list:
    from governance.evidence.audit import AuditEvent

    with ws.session() as s:
        return list(s.query(AuditEvent).filter(AuditEvent.seq > seq).order_by(AuditEvent.seq))


def denies_after(ws, seq: int) -> list:
    return [e for e in events_after(ws, seq) if e.decision == "deny"]


def pipeline(tmp_path: Path, name: str = "p", **changes) -> Path:
    """The shrunken clinic pipeline (see tests/governance/run/test_runner.py::small_spec) in its
    own folder `name`, with `changes` applied (dotted keys; None removes a key)."""
    from tests.governance.run.test_runner import small_spec

    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    return small_spec(folder, **changes)


def no_training(tmp_path: Path, name: str = "p", **changes) -> Path:
    return pipeline(tmp_path, name, training=None, report=None, **changes)


def write_policy(path: Path, edit) -> Path:
    """A copy of the clinic policy with `edit(doc)` applied, written to `path`."""
    doc = yaml.safe_load(CLINIC_POLICY.read_text())
    edit(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def grant(doc: dict, gid: str) -> dict:
    return next(g for g in doc["grants"] if g["id"] == gid)


def versions(ws, dataset: str = "clinic-visits") -> list[tuple[int, str]]:
    """(version, kind) of every stored version of `dataset`."""
    from governance.storage.store import Dataset, DatasetVersion

    with ws.session() as s:
        rows = (s.query(DatasetVersion).join(Dataset, Dataset.id == DatasetVersion.dataset_id)
                .filter(Dataset.name == dataset).order_by(DatasetVersion.version))
        return [(v.version, v.kind) for v in rows]


def blobs(ws) -> set[str]:
    """Every file in the object store, relative to it."""
    root = ws.root / "objects"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def ledger(ws, dataset: str = "clinic-visits"):
    from governance.storage.store import Dataset

    with ws.session() as s:
        ds = s.query(Dataset).filter(Dataset.name == dataset).one()
        lineage, unit = ds.lineage_id, ds.privacy_unit or "row"
    return ws.ledger.status(lineage, unit)
