"""A training run killed with SIGKILL keeps its reservation, leaves a valid audit
log, and `privgov run --resume` finishes it charging the ledger once."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, new_workspace
from tests.governance.run.test_runner import cli, error_line, small_spec

EPOCHS = 20  # 19 epochs after the first checkpoint: ample margin for the SIGKILL (the poller reacts within 20 ms)


def _checkpoint_step(db: Path) -> int | None:
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            row = con.execute("select max(step) from training_checkpoints").fetchone()
    except sqlite3.OperationalError:  # table not there yet / busy
        return None
    return row[0] if row else None


def _kill_after_first_checkpoint(spec: Path, ws: Path, token: str) -> None:
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "-m", "governance.cli", "run", str(spec), "--workspace", str(ws),
                             "--token", token], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    try:
        while _checkpoint_step(ws / "privgov.db") is None:
            assert proc.poll() is None, "the run ended before its first checkpoint"
            assert time.time() < deadline, "no checkpoint within 300 s"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"


@pytest.fixture
def killed(tmp_path):
    """A workspace whose only training run was SIGKILLed mid-training."""
    from governance.workspace import Workspace

    _, tokens = new_workspace(tmp_path / "ws")
    spec = small_spec(tmp_path, **{"training.epochs": EPOCHS})
    _kill_after_first_checkpoint(spec, tmp_path / "ws", tokens["demo"])
    return Workspace.open(tmp_path / "ws"), spec, tokens["demo"], tmp_path


def _only_run(ws):
    from governance.storage.store import Run

    with ws.session() as s:
        runs = s.query(Run).all()
        assert len(runs) == 1
        return runs[0].run_uid, runs[0].status, runs[0].model_blob_hash


def _budget(ws):
    from governance.storage import catalog

    with ws.session() as s:
        lineage = catalog.find_dataset(s, "clinic-visits").lineage_id
    return ws.ledger.status(lineage, "patient_id")


def _killed_state(ws, tmp) -> str:
    """Reservation charged, nothing spent, no model, audit log valid, checkpoint is ciphertext."""
    from governance.run import checkpoints

    uid, status, model = _only_run(ws)
    assert status == "running" and model is None  # it never got to finish
    b = _budget(ws)
    assert b.spent == 0.0
    assert [r.state for r in b.runs] == ["reserved"] and b.runs[0].run_uid == uid
    assert b.reserved >= b.runs[0].target_epsilon > 0.5  # RDP-composed: a bit above the PRV target
    res = cli("audit", "verify", "--workspace", str(tmp / "ws"))
    assert res.returncode == 0, res.stderr + res.stdout
    shown = cli("budget", "show", "clinic-visits", "--workspace", str(tmp / "ws"))
    assert shown.returncode == 0 and "reserved" in shown.stdout
    with ws.session() as s:
        row = checkpoints.latest(s, uid)
        raw = ws.objects.path_for(row.blob_hash).read_bytes()
        plain = checkpoints.load(ws, s, row)
    assert plain[:4] == b"PK\x03\x04"  # torch's zip container, once decrypted
    assert b"PK\x03\x04" not in raw and b"state_dict" not in raw and b"optimizer" not in raw
    return uid


def test_kill_mid_training_then_resume_charges_once(killed, tmp_path) -> None:
    import json

    from governance.run import checkpoints

    ws, spec, token, tmp = killed
    uid = _killed_state(ws, tmp)
    target = _budget(ws).runs[0].target_epsilon
    reserved_before = _budget(ws).reserved

    # Resuming with other training settings is refused; the reservation stays.
    (tmp_path / "changed").mkdir()
    changed = small_spec(tmp_path / "changed", **{"training.epochs": EPOCHS, "training.epsilon": 0.5})
    res = cli("run", str(changed), "--workspace", str(tmp / "ws"), "--token", token, "--resume", uid)
    assert res.returncode == 2 and "reserved" in error_line(res)
    assert _budget(ws).runs[0].state == "reserved"

    res = cli("run", str(spec), "--workspace", str(tmp / "ws"), "--token", token, "--resume", uid, "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["run_uid"] == uid and summary["status"] == "succeeded"
    after = _budget(ws)
    assert len(after.runs) == 1 and after.runs[0].state == "committed"
    assert after.reserved == 0.0
    assert after.runs[0].epsilon == pytest.approx(summary["epsilon_spent"])
    assert after.spent == pytest.approx(reserved_before)  # the reservation became the charge, once
    assert summary["epsilon_spent"] <= target + 1e-9
    _, status, model = _only_run(ws)
    assert status == "succeeded" and model is not None
    with ws.session() as s:
        assert checkpoints.latest(s, uid) is None  # dropped once the model is stored
    assert cli("audit", "verify", "--workspace", str(tmp / "ws")).returncode == 0
    from governance.evidence.audit import AuditEvent

    with ws.session() as s:
        actions = [a for (a,) in s.query(AuditEvent.action).order_by(AuditEvent.seq)]
    assert actions.count("budget_reserve") == 1 and actions.count("budget_resume") == 1
    last_train = len(actions) - 1 - actions[::-1].index("train")  # the model-stored event
    assert actions.index("budget_reserve") < actions.index("budget_resume") < last_train

    # The same pipeline without interruption, in a fresh workspace: same epsilon. (Not the same
    # model: noise and batches come from a fresh per-run key, never from the pipeline's seed.)
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline

    ws2, tokens2 = new_workspace(tmp_path / "ws2")
    whole = run_pipeline(ws2, load_pipeline(spec), tokens2["demo"])
    assert whole.epsilon_spent == summary["epsilon_spent"]

    again = cli("run", str(spec), "--workspace", str(tmp / "ws"), "--token", token, "--resume", uid)
    assert again.returncode == 2 and "succeeded; nothing to resume" in error_line(again)


def test_resume_unknown_run(workspace, tmp_path) -> None:
    ws, tokens = workspace
    spec = small_spec(tmp_path)
    unknown = cli("run", str(spec), "--workspace", str(ws.root), "--token", tokens["demo"], "--resume", "nope")
    assert unknown.returncode == 2 and "no such run" in error_line(unknown)


def test_workspace_from_before_checkpoints_gains_the_table(tmp_path) -> None:
    """A workspace created by an earlier privgov (no training_checkpoints table) opens and can resume."""
    from governance.workspace import Workspace

    new_workspace(tmp_path / "ws")
    with sqlite3.connect(tmp_path / "ws" / "privgov.db") as con:
        con.execute("drop table training_checkpoints")
    ws = Workspace.open(tmp_path / "ws")
    from governance.run import checkpoints

    with ws.session() as s:
        assert checkpoints.latest(s, "any") is None
