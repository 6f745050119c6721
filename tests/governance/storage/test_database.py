"""A workspace on PostgreSQL: `init --db-url`, the password never saved, one-line connect errors,
schema versions (Alembic) on both backends, and two workspaces sharing one server."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from governance.storage.migrate import head_revision
from governance.workspace import Workspace
from tests.conftest import REPO, new_workspace
from tests.governance.access.conftest import no_training, privgov


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# --------------------------------------------------------------------------- init --db-url
def test_init_saves_url_without_password_and_later_commands_open_it(pg_server, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PRIVGOV_DB_URL", raising=False)
    ws_dir = tmp_path / "ws"
    code, out, err = privgov(capsys, "init", "-w", ws_dir, "--db-url", pg_server.url)
    assert code == 0, err
    config = json.loads((ws_dir / "workspace.json").read_text())
    assert config["db_url"] == pg_server.url and config["db_schema"].startswith("privgov_")
    assert pg_server.password not in (ws_dir / "workspace.json").read_text()
    assert pg_server.password not in out + err
    code, out, err = privgov(capsys, "audit", "verify", "-w", ws_dir)
    assert code == 0 and "1 events" in out, out + err
    assert not (ws_dir / "privgov.db").exists()  # no SQLite file beside it: the server holds everything
    eng = pg_server.engine(config["db_schema"])
    with eng.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one() == 1
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head_revision()
    eng.dispose()
    code, out, _ = privgov(capsys, "db", "status", "-w", ws_dir)
    assert code == 0 and "(current)" in out and pg_server.password not in out


def test_password_from_a_file(pg_server, tmp_path, capsys, monkeypatch):
    for var in ("PRIVGOV_DB_PASSWORD", "PGPASSWORD"):
        monkeypatch.delenv(var, raising=False)
    secret = tmp_path / "db-password"
    secret.write_text(pg_server.password + "\n")
    code, _, err = privgov(capsys, "init", "-w", tmp_path / "ws", "--db-url", pg_server.url,
                           "--db-password-file", secret)
    assert code == 0, err
    saved = (tmp_path / "ws" / "workspace.json").read_text()
    assert pg_server.password not in saved and json.loads(saved)["db_password_file"] == str(secret.resolve())
    assert privgov(capsys, "audit", "verify", "-w", tmp_path / "ws")[0] == 0


def test_password_in_the_url_is_refused_and_not_echoed(tmp_path, capsys):
    code, _, err = privgov(capsys, "init", "-w", tmp_path / "ws", "--db-url", "postgresql://u:hunter2@127.0.0.1/db")
    line = _one_error_line(err)
    assert code == 2 and "hunter2" not in err and "PRIVGOV_DB_PASSWORD" in line
    assert not (tmp_path / "ws").exists()


def test_unreachable_server_is_one_line_exit_2_no_fallback(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    url = f"postgresql://privgov@127.0.0.1:{port}/privgov"
    code, _, err = privgov(capsys, "init", "-w", tmp_path / "ws", "--db-url", url)
    line = _one_error_line(err)
    assert code == 2 and url in line and "cannot connect" in line
    assert not (tmp_path / "ws").exists()


def test_auth_failure_names_the_url_with_password_redacted(pg_server, tmp_path, capsys, monkeypatch):
    code, _, err = privgov(capsys, "init", "-w", tmp_path / "ws", "--db-url", pg_server.url)
    assert code == 0, err
    monkeypatch.setenv("PRIVGOV_DB_PASSWORD", "wrong-password")
    code, _, err = privgov(capsys, "audit", "verify", "-w", tmp_path / "ws")
    line = _one_error_line(err)
    assert code == 2 and "password authentication failed" in line and "wrong-password" not in line
    assert pg_server.url in line  # the saved URL, no password in it


def test_missing_driver_is_one_line_exit_2(pg_server, tmp_path):
    code = ("import sys; sys.modules['psycopg'] = None\n"
            "from governance.cli import main\n"
            f"sys.exit(main(['init', '-w', {str(tmp_path / 'ws')!r}, '--db-url', {pg_server.url!r}]))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    line = _one_error_line(res.stderr)
    assert res.returncode == 2 and "pip install 'privgov[postgres]'" in line and pg_server.url in line


# --------------------------------------------------------------------------- schema versions
def test_newer_schema_is_refused_older_says_upgrade(tmp_path, capsys, db_url):
    ws, _ = new_workspace(tmp_path / "ws", {"admin": ("admin", ["admin"])}, bindings={}, db_url=db_url)
    with ws.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    code, _, err = privgov(capsys, "audit", "verify", "-w", ws.root)
    assert code == 2 and "9999_from_the_future is newer" in _one_error_line(err)
    code, _, err = privgov(capsys, "db", "upgrade", "-w", ws.root)  # refused untouched
    assert code == 2 and "newer" in err
    with ws.engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))  # as a workspace made before migrations
    code, _, err = privgov(capsys, "audit", "verify", "-w", ws.root)
    assert code == 2 and "run `privgov db upgrade`" in _one_error_line(err)
    code, out, err = privgov(capsys, "db", "upgrade", "-w", ws.root)
    assert code == 0 and f"-> {head_revision()}" in out, err
    assert privgov(capsys, "audit", "verify", "-w", ws.root)[0] == 0
    code, out, _ = privgov(capsys, "db", "upgrade", "-w", ws.root)
    assert code == 0 and "already at" in out


def test_migrations_build_exactly_the_models(tmp_path, db_url):
    """The baseline (plus later revisions) and the SQLAlchemy models describe one schema:
    a model change without its migration fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import MetaData

    from governance.storage.store import Base
    from privacy.ledger import metadata as ledger_metadata

    ws = Workspace.create(tmp_path / "ws", db_url=db_url)
    wanted = MetaData()
    for table in [*Base.metadata.tables.values(), *ledger_metadata.tables.values()]:
        table.to_metadata(wanted)
    with ws.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), wanted)
    assert diff == [], diff


# --------------------------------------------------------------------------- two workspaces, one server
def _reserve(ws, dataset: str, run_uid: str) -> None:
    from tests.governance.access.conftest import ledger

    from tests.privacy.test_ledger_concurrency import CURVE, ORDERS, RUN_EPS

    st = ledger(ws, dataset)
    ws.ledger.reserve(lineage_id=st.lineage_id, unit=st.unit, run_uid=run_uid, epsilon=RUN_EPS, delta=1e-7,
                      orders=ORDERS, rdp=CURVE)


def test_two_workspaces_on_one_server_never_mix(pg_server, tmp_path, capsys):
    from governance.storage.store import Dataset, Run

    people = {"admin": ("admin", ["admin"]), "demo": ("demo-ml-engineer", ["ml-engineer", "data-engineer"])}
    basic = {"clinic-visits": (REPO / "policies" / "examples" / "clinic.yaml", ["phi"], "patient_id")}
    a, ta = new_workspace(tmp_path / "a", people, bindings=basic, db_url=pg_server.url)
    b, tb = new_workspace(tmp_path / "b", people, bindings=basic, db_url=pg_server.url)
    assert a.config["db_schema"] != b.config["db_schema"]
    for ws, tok, name in ((a, ta, "a1"), (b, tb, "b1"), (a, ta, "a2")):  # interleaved governed runs
        code, _, err = privgov(capsys, "run", no_training(tmp_path / "specs", name), "-w", ws.root, "--token", tok["demo"])
        assert code == 0, err
    with a.session() as s:  # the catalog and runs of one are not the other's
        assert s.query(Run).count() == 2 and s.query(Dataset).count() >= 1
    with b.session() as s:
        assert s.query(Run).count() == 1
    _reserve(a, "clinic-visits", "ra-1")
    _reserve(b, "clinic-visits", "rb-1")
    _reserve(a, "clinic-visits", "ra-2")
    assert [r.run_uid for r in _ledger_runs(a)] == ["ra-1", "ra-2"]
    assert [r.run_uid for r in _ledger_runs(b)] == ["rb-1"]
    for ws in (a, b):
        code, out, err = privgov(capsys, "audit", "verify", "-w", ws.root)
        assert code == 0 and "audit log OK" in out, out + err


def _ledger_runs(ws):
    from tests.governance.access.conftest import ledger

    return ledger(ws, "clinic-visits").runs


def test_a_schema_holding_another_workspace_is_refused_and_left_alone(pg_server, tmp_path, capsys):
    url = pg_server.url
    assert privgov(capsys, "init", "-w", tmp_path / "a", "--db-url", url, "--db-schema", "team_a")[0] == 0
    code, _, err = privgov(capsys, "init", "-w", tmp_path / "b", "--db-url", url, "--db-schema", "team_a")
    assert code == 2 and "team_a already holds tables" in _one_error_line(err)
    assert not (tmp_path / "b").exists()
    code, out, _ = privgov(capsys, "audit", "verify", "-w", tmp_path / "a")  # the first workspace is intact
    assert code == 0 and "1 events" in out
    code, _, err = privgov(capsys, "init", "-w", tmp_path / "c", "--db-url", url, "--db-schema", "Bad-Name;")
    assert code == 2 and "--db-schema" in _one_error_line(err)
