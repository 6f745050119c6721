"""The job manager (`governance/run/jobs.py`) without HTTP: real worker processes, a real workspace."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from governance.run.jobs import JobManager
from governance.run.submitted import parse_submitted
from governance.storage.jobs import JobRecord
from privacy.errors import InputError, WorkspaceError
from tests.conftest import new_workspace
from tests.governance.job_pipeline import job_pipeline, job_yaml, make_data_dir, wait_for_line

DEMO = "demo-ml-engineer"


def _entries(ws, run_uid: str) -> list:
    from sqlalchemy import select

    from privacy.ledger import ledger_entries

    with ws.engine.connect() as conn:
        return list(conn.execute(select(ledger_entries).where(ledger_entries.c.run_uid == run_uid)))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jobs")
    ws, tokens = new_workspace(tmp / "ws", {"demo": (DEMO, ["ml-engineer", "data-engineer"]),
                                            "mallory": ("mallory", ["contractor"])})
    manager = JobManager(ws.root, make_data_dir(tmp / "data"), cancel_grace_s=30)
    assert manager.start() == []
    yield ws, tokens, manager, tmp
    manager.close()


# --------------------------------------------------------------------------- confinement (no run)
@pytest.mark.parametrize("field,value", [
    ("source.path", "../secret.csv"), ("source.path", "/etc/passwd"), ("quality.suite", "${HOME}/suite.json"),
    ("policy", "~/clinic.yaml"), ("quality.suite", "sub/../../suite.json"),
])
def test_paths_outside_the_data_dir_are_refused_naming_the_field(env, field, value) -> None:
    _, _, manager, _ = env
    changes = {field: value}
    if field == "source.path":
        changes["source.sample"] = None
    with pytest.raises(InputError) as err:
        parse_submitted(job_pipeline(**changes), manager.data_dir)
    assert f"key `{field}`" in str(err.value)


def test_symlinks_are_refused_even_to_a_file_inside(env, tmp_path) -> None:
    _, _, manager, _ = env
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    for name, target in (("evil.json", outside), ("alias.json", manager.data_dir / "suite.json")):
        link = manager.data_dir / name
        link.unlink(missing_ok=True)
        link.symlink_to(target)
        with pytest.raises(InputError, match="symbolic link"):
            parse_submitted(job_pipeline(**{"quality.suite": name}), manager.data_dir)
    (tmp_path / "d").mkdir()
    os.symlink(tmp_path / "d", manager.data_dir / "dirlink")
    with pytest.raises(InputError, match="symbolic link"):
        parse_submitted(job_pipeline(**{"quality.suite": "dirlink/suite.json"}), manager.data_dir)


def test_report_missing_file_bad_yaml_and_no_data_dir(env) -> None:
    _, _, manager, _ = env
    with pytest.raises(InputError, match="key `report`"):
        parse_submitted(job_pipeline(report="out.html"), manager.data_dir)
    with pytest.raises(InputError, match="key `policy`.*no such file"):
        parse_submitted(job_pipeline(policy="nope.yaml"), manager.data_dir)
    with pytest.raises(InputError, match="key `training.epsilon`"):
        parse_submitted(job_yaml(**{"training.epsilon": -1}), manager.data_dir)
    with pytest.raises(InputError, match="pipeline:2: invalid YAML"):
        parse_submitted("name: x\n  bad: [", manager.data_dir)
    with pytest.raises(InputError, match="no data directory"):
        parse_submitted(job_pipeline(), None)
    sample_only = job_pipeline(quality=None, policy=None)
    assert parse_submitted(sample_only, None).source.sample == "clinic"


def test_a_second_manager_on_the_workspace_is_refused(env) -> None:
    ws, _, _, tmp = env
    other = JobManager(ws.root, tmp / "data")
    with pytest.raises(WorkspaceError, match="another privgov server"):
        other.start()


# --------------------------------------------------------------------------- real runs
def test_submit_runs_to_success_as_the_submitter_and_charges_once(env) -> None:
    ws, tokens, manager, _ = env
    view = manager.submit(DEMO, tokens["demo"], job_yaml())
    assert view.state in ("queued", "running") and view.principal == DEMO
    assert manager.wait(view.job, 400) == "succeeded", manager.logs(view.job, DEMO, admin=False)
    done = manager.view(view.job, DEMO, admin=False)
    assert (done.exit_code, done.run_status) == (0, "succeeded")
    [entry] = _entries(ws, view.run_uid)
    assert entry.state == "committed"
    log = manager.logs(view.job, DEMO, admin=False)
    assert "reserve done" in log and "train done" in log and f"run {view.run_uid} succeeded" in log
    # the token is nowhere on disk: not in the job record, the log or any workspace file
    # (searched by another process: closing a file this process opened on the live database would drop
    # SQLite's POSIX locks held by this process's connections)
    found = subprocess.run(["grep", "-rlaF", tokens["demo"], str(ws.root)], capture_output=True, text=True)
    assert found.returncode == 1 and found.stdout == "", found.stdout
    # someone else's job looks exactly like no job
    assert manager.view(view.job, "mallory", admin=False) is None
    assert manager.logs(view.job, "mallory", admin=False) is None
    assert manager.cancel(view.job, "mallory", admin=False) is None
    assert manager.view(view.job, "admin", admin=True) is not None
    assert [j.job for j in manager.list("mallory", admin=False)] == []


def test_admission_refusal_is_a_failed_job_with_the_cli_message(env) -> None:
    ws, tokens, manager, _ = env
    view = manager.submit("mallory", tokens["mallory"], job_yaml(principal="mallory"))
    assert manager.wait(view.job, 300) == "failed"
    done = manager.view(view.job, "mallory", admin=False)
    assert done.exit_code == 3 and "mallory" in (done.reason or "")
    assert _entries(ws, view.run_uid) == []


def test_cancel_queued_and_running_jobs_keeps_the_ledger_closed(env) -> None:
    ws, tokens, manager, _ = env
    long = manager.submit(DEMO, tokens["demo"], job_yaml(**{"training.epochs": 400}))
    queued = manager.submit(DEMO, tokens["demo"], job_yaml())
    assert manager.view(queued.job, DEMO, admin=False).state == "queued"
    assert manager.cancel(queued.job, DEMO, admin=False).state == "cancelled"
    wait_for_line(lambda: manager.logs(long.job, DEMO, admin=False), "train start")
    manager.cancel(long.job, DEMO, admin=False)
    assert manager.wait(long.job, 120) == "cancelled"
    done = manager.view(long.job, DEMO, admin=False)
    assert done.run_status == "failed" and "cancelled" in done.reason
    # training had begun: the reservation stays counted (fail closed), never silently dropped
    [entry] = _entries(ws, long.run_uid)
    assert entry.state == "reserved"
    # the queued job never started: no run, no ledger entry
    assert manager.view(queued.job, DEMO, admin=False).run_status is None
    assert _entries(ws, queued.run_uid) == []


def test_restart_marks_a_dead_servers_jobs_interrupted_and_kills_its_worker(tmp_path) -> None:
    """As if the server died: a running job (its worker still alive) and a queued one are left behind."""
    from governance.storage.store import Run, utcnow

    ws, _ = new_workspace(tmp_path / "ws")
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)",
                               "governance.run.job_worker", "--job", "a" * 32])
    with ws.session() as s:
        s.add(JobRecord(job_uid="a" * 32, principal=DEMO, pipeline="p", dataset_name="clinic-visits",
                        pipeline_sha256="0" * 64, pipeline_json="{}", data_dir="", run_uid="runa",
                        state="running", pid=worker.pid, started_at=utcnow()))
        s.add(JobRecord(job_uid="b" * 32, principal=DEMO, pipeline="p", dataset_name="clinic-visits",
                        pipeline_sha256="0" * 64, pipeline_json="{}", data_dir="", run_uid="runb", state="queued"))
        s.add(Run(run_uid="runa", pipeline="p", dataset_name="clinic-visits", principal=DEMO, purpose="x"))
    manager = JobManager(ws.root)
    try:
        assert sorted(manager.start()) == ["a" * 32, "b" * 32]
        assert worker.wait(timeout=10) == -9
        for uid in ("a" * 32, "b" * 32):
            view = manager.view(uid, DEMO, admin=False)
            assert view.state == "interrupted" and "not re-run automatically" in view.reason
        assert manager.view("a" * 32, DEMO, admin=False).run_status == "failed"
    finally:
        manager.close()
        if worker.poll() is None:
            worker.kill()
