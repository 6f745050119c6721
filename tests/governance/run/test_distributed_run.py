"""`privgov run --nproc 2`: a worker SIGKILLed mid-training fails the run in one line,
keeps the reservation (one ledger entry), and `--resume --nproc 2` finishes it charging
exactly the epsilon a single-process run of the same plan is charged."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, new_workspace
from tests.governance.run.test_checkpoints import _budget, _checkpoint_step, _only_run
from tests.governance.run.test_runner import cli, error_line, small_spec

EPOCHS = 20


def _workers(pid: int) -> list[int]:
    """Spawned training workers of `pid` (not multiprocessing's resource tracker)."""
    out = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            cmd = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in cmd:
            out.append(int(child))
    return out


def _kill_a_worker_after_first_checkpoint(spec: Path, ws: Path, token: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "-m", "governance.cli", "run", str(spec), "--workspace", str(ws),
                             "--token", token, "--nproc", "2"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    try:
        while _checkpoint_step(ws / "privgov.db") is None:
            assert proc.poll() is None, "the run ended before its first checkpoint: " + proc.stderr.read()
            assert time.time() < deadline, "no checkpoint within 300 s"
            time.sleep(0.02)
        workers = _workers(proc.pid)
        assert len(workers) == 1, workers  # rank 0 is the governed process itself
        os.kill(workers[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_worker_killed_then_resume_charges_the_single_process_epsilon(tmp_path) -> None:
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline
    from governance.workspace import Workspace

    _, tokens = new_workspace(tmp_path / "ws")
    token = tokens["demo"]
    spec = small_spec(tmp_path, **{"training.epochs": EPOCHS})
    res = _kill_a_worker_after_first_checkpoint(spec, tmp_path / "ws", token)
    assert res.returncode == 1, res.stderr
    line = error_line(res)
    assert "rank 1 died" in line and "reservation stays" in line and "Traceback" not in res.stderr

    ws = Workspace.open(tmp_path / "ws")
    uid, status, model = _only_run(ws)
    assert status == "failed" and model is None
    b = _budget(ws)
    assert [r.state for r in b.runs] == ["reserved"] and b.spent == 0.0  # fail closed, one entry
    reserved = b.reserved

    # A two-process checkpoint cannot be resumed by one process (its samplers index the shards).
    # (In-process from here on: each CLI start costs tens of seconds on the shared machine.)
    from governance.run.runner import resume_pipeline
    from privacy.errors import InputError

    with pytest.raises(InputError, match="--nproc 2"):
        resume_pipeline(ws, load_pipeline(spec), token, uid)
    assert _budget(ws).runs[0].state == "reserved"

    summary = resume_pipeline(ws, load_pipeline(spec), token, uid, nproc=2)
    assert summary.status == "succeeded"
    after = _budget(ws)
    assert len(after.runs) == 1 and after.runs[0].state == "committed" and after.reserved == 0.0
    assert after.spent == pytest.approx(reserved)  # charged once
    with ws.session() as s:
        assert ws.audit.verify(s).ok

    # The same plan in one process, fresh workspace: the same ledger entry.
    import torch

    ws2, tokens2 = new_workspace(tmp_path / "ws2")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the 2-core machine is shared: an oversubscribed pool crawls
    try:
        whole = run_pipeline(ws2, load_pipeline(spec), tokens2["demo"])
    finally:
        torch.set_num_threads(threads)
    single = _budget(ws2).runs[0]
    assert whole.epsilon_spent == summary.epsilon_spent
    assert single.epsilon == after.runs[0].epsilon and single.delta == after.runs[0].delta
    assert _budget(ws2).spent == after.spent
