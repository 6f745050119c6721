"""The workspace composes storage and evidence: a new one holds every table without access/."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLES = {"principals", "api_tokens", "data_keys", "audit_events", "audit_checkpoints", "datasets",
          "dataset_versions"}


def test_create_makes_every_table_without_importing_access_or_run(tmp_path: Path) -> None:
    """A fresh process that only creates a workspace (as `privgov init` does) gets the identity
    tables too, so the next command can add principals to it."""
    code = ("import json, sys; from pathlib import Path; from governance.workspace import Workspace; "
            "Workspace.create(Path(sys.argv[1])); "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('governance.'))))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "ws")], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    loaded = json.loads(out)
    assert not [m for m in loaded if m.startswith(("governance.access", "governance.run", "governance.cli"))]
    with sqlite3.connect(tmp_path / "ws" / "privgov.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert TABLES <= tables, sorted(TABLES - tables)
