"""`/v1/runs` on a live server: jobs run as their submitter, visible to them only, and never charged twice."""
from __future__ import annotations

import os
import signal

from sqlalchemy import select

from privacy.ledger import ledger_entries
from tests.governance.job_pipeline import job_pipeline, job_yaml, make_data_dir, wait_for_line
from tests.governance.server.conftest import PEOPLE, events_after, head, stop_server
from tests.governance.server.jobs_live import poll, serve_jobs
from tests.conftest import new_workspace


def _entries(ws, run_uid: str | None = None) -> list:
    q = select(ledger_entries)
    if run_uid is not None:
        q = q.where(ledger_entries.c.run_uid == run_uid)
    with ws.engine.connect() as conn:
        return list(conn.execute(q))


def test_submit_poll_succeeded_and_charged_once(jobs_live) -> None:
    job = jobs_live.job
    assert job["state"] == "succeeded", job
    assert (job["principal"], job["run_status"], job["exit_code"]) == ("demo-ml-engineer", "succeeded", 0)
    [entry] = _entries(jobs_live.ws, job["run_uid"])
    assert entry.state == "committed" and 0 < entry.epsilon <= 1.0 + 1e-6
    with jobs_live.client("demo") as c:  # the charge, as the budget endpoint shows it
        budget = c.get("/v1/budget/clinic-visits")
    assert budget.status_code == 200, budget.text
    status = budget.json()["status"]
    assert status["spent"] > 0 and status["reserved"] == 0
    assert [r["run_uid"] for r in status["runs"]].count(job["run_uid"]) == 1
    with jobs_live.client("demo") as c:
        log = c.get(f"/v1/runs/{job['job']}/logs").json()["log"]
        listed = c.get("/v1/runs").json()
    assert "train done" in log and f"run {job['run_uid']} succeeded" in log
    assert job["job"] in [j["job"] for j in listed]
    assert jobs_live.tokens["demo"] not in log


def test_someone_elses_job_is_an_unknown_job(jobs_live) -> None:
    job = jobs_live.job["job"]
    with jobs_live.client("mallory") as c:
        for path in (f"/v1/runs/{job}", f"/v1/runs/{job}/logs"):
            theirs, unknown = c.get(path), c.get(path.replace(job, "0" * 32))
            assert theirs.status_code == unknown.status_code == 404
            assert theirs.json() == unknown.json()
        assert c.post(f"/v1/runs/{job}/cancel").status_code == 404
        assert c.get("/v1/runs").json() == []
    with jobs_live.client("admin") as c:
        assert c.get(f"/v1/runs/{job}").json()["state"] == "succeeded"
        assert job in [j["job"] for j in c.get("/v1/runs").json()]
    with jobs_live.client() as c:
        assert c.get(f"/v1/runs/{job}").status_code == 401


def test_paths_outside_the_data_dir_and_bad_bodies_are_422_naming_the_key(jobs_live, tmp_path) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_text("a,b\n1,2\n")
    (jobs_live.data_dir / "link.csv").unlink(missing_ok=True)
    os.symlink(outside, jobs_live.data_dir / "link.csv")
    bad = {
        "source.path": [job_pipeline(**{"source.sample": None, "source.path": "../secret.csv"}),
                        job_pipeline(**{"source.sample": None, "source.path": str(outside)}),
                        job_pipeline(**{"source.sample": None, "source.path": "link.csv"})],
        "policy": [job_yaml(policy="${HOME}/x.yaml")],
        "report": [job_pipeline(report="/tmp/r.html")],
        "training.epsilon": [job_pipeline(**{"training.epsilon": 0})],
    }
    before = len(_entries(jobs_live.ws))
    with jobs_live.client("demo") as c:
        jobs_before = c.get("/v1/runs").json()
        for key, bodies in bad.items():
            for pipeline in bodies:
                r = c.post("/v1/runs", json={"pipeline": pipeline})
                assert r.status_code == 422 and f"`{key}`" in r.json()["error"]["message"], r.text
        r = c.post("/v1/runs", json={"pipeline": job_yaml(), "token": "x"})
        assert r.status_code == 422 and "token" in r.json()["error"]["message"]
        r = c.post("/v1/runs", json={})
        assert r.status_code == 422 and "pipeline" in r.json()["error"]["message"]
        assert c.get("/v1/runs").json() == jobs_before  # nothing was queued
    assert len(_entries(jobs_live.ws)) == before


def test_cancel_running_job_keeps_the_reservation_counted(jobs_live) -> None:
    before = head(jobs_live.ws)
    with jobs_live.client("demo") as c:
        r = c.post("/v1/runs", json={"pipeline": job_yaml(**{"training.epochs": 400})})
        assert r.status_code == 202, r.text
        job = r.json()
        wait_for_line(lambda: c.get(f"/v1/runs/{job['job']}/logs").json()["log"], "train start")
        with jobs_live.client("mallory") as m:
            assert m.post(f"/v1/runs/{job['job']}/cancel").status_code == 404
        assert c.post(f"/v1/runs/{job['job']}/cancel").status_code == 200
        done = poll(c, job["job"], timeout=120)
    assert done["state"] == "cancelled" and done["run_status"] == "failed"
    [entry] = _entries(jobs_live.ws, job["run_uid"])
    assert entry.state == "reserved"  # training had started: fail closed, counted against the budget
    actions = [(e.action, e.reason) for e in events_after(jobs_live.ws, before) if e.action == "job"]
    assert ("job", "cancel") in actions


def test_server_killed_mid_run_restarts_with_the_job_interrupted_and_no_second_charge(tmp_path) -> None:
    ws, tokens = new_workspace(tmp_path / "ws", PEOPLE)
    data_dir = make_data_dir(tmp_path / "data")
    url, proc = serve_jobs(ws.root, data_dir)
    import httpx

    headers = {"Authorization": f"Bearer {tokens['demo']}"}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
            job = c.post("/v1/runs", json={"pipeline": job_yaml(**{"training.epochs": 400})}).json()
            wait_for_line(lambda: c.get(f"/v1/runs/{job['job']}/logs").json()["log"], "train start")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop_server(proc)
    url, proc = serve_jobs(ws.root, data_dir)
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
            after = c.get(f"/v1/runs/{job['job']}").json()
            assert after["state"] == "interrupted" and "not re-run automatically" in after["reason"]
            assert after["run_status"] == "failed"
            entries = _entries(ws)
            assert [(e.run_uid, e.state) for e in entries] == [(job["run_uid"], "reserved")]
            # resubmitting is an explicit new job with its own run and reservation
            again = c.post("/v1/runs", json={"pipeline": job_yaml()}).json()
            assert again["job"] != job["job"] and again["run_uid"] != job["run_uid"]
            c.post(f"/v1/runs/{again['job']}/cancel")
            poll(c, again["job"], timeout=120)
    finally:
        stop_server(proc)
