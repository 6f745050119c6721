"""Governed runs as background jobs: submit, watch, cancel, and recover after a crash.

Why a subprocess per run: the run is the very code `privgov run` executes
(`governance.run.job_worker` calls `run_pipeline`), so the server adds no second
path to admission, the ledger or the audit log; and a process can be stopped
for real - cancel sends SIGTERM (the run records its failure and the ledger
keeps what it must), then SIGKILL after a grace period.

Why the token never touches disk: the job runs as its submitter, so the worker
needs the submitter's token. The manager keeps it in memory only until the
worker starts and hands it over through the worker's stdin pipe; the job
record holds the principal's name, never the token. The same pipe tells the
worker its server is gone: at end-of-file it stops itself, so a killed server
leaves no orphan run that keeps charging the ledger.

Why "interrupted" is final: a job a dead server left queued or running is
never re-run automatically (a second run would be a second charge). The run's
reservation is resolved the way a crashed CLI run's is: kept, counted against
the budget (fail closed), and `privgov run --resume RUN` can finish training
under it; resubmitting is an explicit new run with its own reservation.

One manager per workspace: it holds `jobs/manager.lock` for its lifetime, so
the recovery at start can never mark a live server's jobs as interrupted.
"""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, IO

from governance.storage import jobs as table
from governance.storage.jobs import JobRecord
from governance.storage.store import utcnow
from governance.workspace import Workspace, _private_opener
from privacy.errors import InputError, WorkspaceError

WORKER_MODULE = "governance.run.job_worker"
LOG_LIMIT = 256 * 1024  # characters of a job's log returned at most (the tail)


@dataclass(frozen=True)
class JobView:
    """What a job's owner (or an admin) may see: no token, no data values."""

    job: str
    state: str
    principal: str
    pipeline: str
    dataset: str
    pipeline_sha256: str
    run_uid: str
    run_status: str | None  # the run's own status once admitted; None while not (or never) admitted
    exit_code: int | None
    reason: str | None
    submitted_at: str
    started_at: str | None
    ended_at: str | None


@dataclass
class _Live:
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    killer: threading.Timer | None = None


def _iso(t: Any) -> str | None:
    return None if t is None else t.isoformat(timespec="seconds") + "Z"


class JobManager:
    """Runs submitted pipelines one at a time in worker processes.

    One at a time because a run holds the workspace lock, as `privgov run` does
    (the catalog numbers versions under it); the others wait `queued`."""

    def __init__(self, ws_root: Path, data_dir: Path | None = None, *, cancel_grace_s: float = 20.0,
                 python: str = sys.executable) -> None:
        self.root = Path(ws_root).resolve()
        self.data_dir = Path(os.path.realpath(data_dir)) if data_dir is not None else None
        if self.data_dir is not None and not self.data_dir.is_dir():
            raise InputError(f"--data-dir {data_dir}: no such directory")
        self.ws = Workspace.open(self.root)
        self.cancel_grace_s, self.python = cancel_grace_s, python
        self.jobs_dir = self.root / "jobs"
        self._mutex = threading.RLock()
        self._tokens: dict[str, str] = {}  # queued job -> submitter's token, in memory only
        self._queue: list[str] = []
        self._live: dict[str, _Live] = {}
        self._lock_fh: IO[str] | None = None
        self._closing = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> list[str]:
        """Take the workspace's job lock and mark jobs a dead server left behind; returns their ids."""
        self.jobs_dir.mkdir(mode=0o700, exist_ok=True)
        fh = open(self.jobs_dir / "manager.lock", "a+", opener=_private_opener)
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise WorkspaceError(f"{self.root}: another privgov server runs jobs on this workspace "
                                 "(jobs/manager.lock is held); stop it first") from None
        self._lock_fh = fh
        return self._recover()

    def close(self) -> None:
        """Server shutdown: running jobs are stopped and, like queued ones, marked interrupted."""
        with self._mutex:
            self._closing = True
            queued, self._queue = list(self._queue), []
            self._tokens.clear()
            live = dict(self._live)
        for job_uid in queued:
            self._finish(job_uid, table.INTERRUPTED, None, "the server shut down before the job started")
        for run in live.values():
            self._stop(run)
        deadline = time.monotonic() + self.cancel_grace_s + 5
        while self._live and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None
        self.ws.engine.dispose()

    def _recover(self) -> list[str]:
        from governance.evidence.recorder import record_event
        from governance.storage.store import Run

        with self.ws.session() as s:
            stale = [(j.job_uid, j.state, j.pid, j.run_uid, j.principal, j.dataset_name)
                     for j in s.query(JobRecord).filter(JobRecord.state.in_(table.ACTIVE_STATES))]
        for job_uid, state, pid, run_uid, principal, dataset in stale:
            if pid:
                _kill_orphan(pid, job_uid)
            reason = (f"the server stopped while the job was {state}; it is not re-run automatically - submit it "
                      "again, or finish its training with `privgov run --resume " + run_uid + "`")
            with self.ws.session() as s:
                run = s.query(Run).filter(Run.run_uid == run_uid).one_or_none()
                if run is not None and run.status == "running":
                    # as a crashed CLI run: the ledger reservation stays counted (fail closed)
                    run.status, run.reason, run.ended_at = "failed", "interrupted: the server stopped", utcnow()
            self._finish(job_uid, table.INTERRUPTED, None, reason)
            record_event(self.ws, principal=principal, action="job", decision="info", resource=dataset,
                         reason="interrupted", details={"job": job_uid, "run_uid": run_uid})
        return [j[0] for j in stale]

    # ------------------------------------------------------------------ submit / read
    def submit(self, principal: str, token: str, pipeline: str | dict[str, Any]) -> JobView:
        """Queue a run of `pipeline` as `principal` (already authenticated by `token`).

        The pipeline is parsed and its files confined here, so a bad one is an
        InputError before anything is queued. Admission itself (the policy, the
        binding, the principal the pipeline declares) is decided by the run, as
        for `privgov run`, and audited there."""
        from governance.evidence.recorder import record_event
        from governance.run.submitted import canonical, parse_submitted, pipeline_sha256

        if self._lock_fh is None:
            raise WorkspaceError("job manager not started")
        spec = parse_submitted(pipeline, self.data_dir)
        job_uid, run_uid = uuid.uuid4().hex, uuid.uuid4().hex[:16]
        with self.ws.session() as s:
            s.add(JobRecord(job_uid=job_uid, principal=principal, pipeline=spec.name, dataset_name=spec.dataset,
                            pipeline_sha256=pipeline_sha256(spec), pipeline_json=canonical(spec),
                            data_dir=str(self.data_dir or ""), run_uid=run_uid, state=table.QUEUED))
        record_event(self.ws, principal=principal, action="job", decision="info", resource=spec.dataset,
                     purpose=spec.purpose, reason="submitted",
                     details={"job": job_uid, "run_uid": run_uid, "pipeline_sha256": pipeline_sha256(spec)})
        with self._mutex:
            self._tokens[job_uid] = token
            self._queue.append(job_uid)
        self._pump()
        view = self.view(job_uid, principal, admin=False)
        assert view is not None
        return view

    def _visible(self, s: Any, job_uid: str, viewer: str, admin: bool) -> JobRecord | None:
        job = s.query(JobRecord).filter(JobRecord.job_uid == str(job_uid)[:64]).one_or_none()
        return job if job is not None and (admin or job.principal == viewer) else None

    def view(self, job_uid: str, viewer: str, *, admin: bool) -> JobView | None:
        """The job, or None when it does not exist or is someone else's (callers answer both alike)."""
        with self.ws.session() as s:
            job = self._visible(s, job_uid, viewer, admin)
            return None if job is None else self._view(s, job)

    def list(self, viewer: str, *, admin: bool) -> list[JobView]:
        with self.ws.session() as s:
            q = s.query(JobRecord)
            if not admin:
                q = q.filter(JobRecord.principal == viewer)
            return [self._view(s, j) for j in q.order_by(JobRecord.id.desc()).limit(1000)]

    @staticmethod
    def _view(s: Any, job: JobRecord) -> JobView:
        from governance.storage.store import Run

        run_status = s.query(Run.status).filter(Run.run_uid == job.run_uid).scalar()
        return JobView(job=job.job_uid, state=job.state, principal=job.principal, pipeline=job.pipeline,
                       dataset=job.dataset_name, pipeline_sha256=job.pipeline_sha256, run_uid=job.run_uid,
                       run_status=run_status, exit_code=job.exit_code, reason=job.reason,
                       submitted_at=_iso(job.submitted_at) or "", started_at=_iso(job.started_at),
                       ended_at=_iso(job.ended_at))

    def logs(self, job_uid: str, viewer: str, *, admin: bool) -> str | None:
        """The run's progress lines (stage names, counts, one-line errors; never data values)."""
        if self.view(job_uid, viewer, admin=admin) is None:
            return None
        path = self._log_path(job_uid)
        try:
            with open(path, "rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, size - LOG_LIMIT))
                return fh.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _log_path(self, job_uid: str) -> Path:
        return self.jobs_dir / f"{job_uid}.log"

    # ------------------------------------------------------------------ cancel
    def cancel(self, job_uid: str, viewer: str, *, admin: bool) -> JobView | None:
        """Stop the job. Queued: it never starts. Running: SIGTERM, SIGKILL after the grace period.

        What the budget sees is what the run had reached: nothing before the
        reservation; a reservation cancelled while storing is released (nothing
        was decrypted); once training began the reservation stays counted."""
        from governance.evidence.recorder import record_event

        view = self.view(job_uid, viewer, admin=admin)
        if view is None:
            return None
        if view.state in table.FINAL_STATES:
            return view
        with self._mutex:
            was_queued = job_uid in self._queue
            if was_queued:
                self._queue.remove(job_uid)
                self._tokens.pop(job_uid, None)
            run = self._live.get(job_uid)
        self._set(job_uid, cancel_requested=True)
        record_event(self.ws, principal=viewer, action="job", decision="info", resource=view.dataset,
                     reason="cancel", details={"job": job_uid, "run_uid": view.run_uid})
        if was_queued:
            self._finish(job_uid, table.CANCELLED, None, f"cancelled by {viewer} before it started")
        elif run is not None:
            self._stop(run)
        return self.view(job_uid, viewer, admin=admin)

    def _stop(self, run: _Live) -> None:
        if run.proc.poll() is not None:
            return
        run.proc.send_signal(signal.SIGTERM)
        if run.killer is None:
            run.killer = threading.Timer(self.cancel_grace_s, _kill_if_alive, args=(run.proc,))
            run.killer.daemon = True
            run.killer.start()

    # ------------------------------------------------------------------ running
    def _pump(self) -> None:
        """Start the next queued job when none runs."""
        while True:
            with self._mutex:
                if self._closing or not self._queue or self._live:
                    return
                job_uid = self._queue.pop(0)
                token = self._tokens.pop(job_uid)
                self._launch(job_uid, token)

    def _launch(self, job_uid: str, token: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("PRIVGOV_TOKEN",)}
        env["PRIVGOV_WORKSPACE"] = str(self.root)
        log = open(self._log_path(job_uid), "ab", opener=_private_opener)
        try:
            proc = subprocess.Popen([self.python, "-m", WORKER_MODULE, "--job", job_uid], stdin=subprocess.PIPE,
                                    stdout=log, stderr=subprocess.STDOUT, env=env, close_fds=True)
            assert proc.stdin is not None
            proc.stdin.write(token.encode() + b"\n")  # the token's only way to the run: this pipe
            proc.stdin.flush()
        except OSError as exc:
            log.close()
            self._finish(job_uid, table.FAILED, None, f"the worker could not start ({exc.strerror})")
            return
        self._live[job_uid] = _Live(proc=proc, log=log)
        self._set(job_uid, state=table.RUNNING, pid=proc.pid, started_at=utcnow())
        threading.Thread(target=self._watch, args=(job_uid,), daemon=True, name=f"job-{job_uid[:8]}").start()

    def _watch(self, job_uid: str) -> None:
        run = self._live[job_uid]
        code = run.proc.wait()
        if run.killer is not None:
            run.killer.cancel()
        try:
            if run.proc.stdin is not None:
                run.proc.stdin.close()
        except OSError:
            pass
        run.log.close()
        with self.ws.session() as s:
            job = s.query(JobRecord).filter(JobRecord.job_uid == job_uid).one()
            cancelled, shutdown = job.cancel_requested, self._closing
        reason = _last_error(self._log_path(job_uid))
        if cancelled:
            state, reason = table.CANCELLED, "cancelled" + (f" ({reason})" if reason else "")
        elif shutdown:
            state, reason = table.INTERRUPTED, "the server shut down while the job was running"
        else:
            state = table.SUCCEEDED if code == 0 else table.FAILED
        self._close_run(job_uid, state)
        self._finish(job_uid, state, code, reason)
        with self._mutex:
            self._live.pop(job_uid, None)
        self._pump()

    def _close_run(self, job_uid: str, state: str) -> None:
        """A worker killed before it could record its run's end leaves the run `running`: close it as failed."""
        from governance.storage.store import Run

        with self.ws.session() as s:
            run_uid = s.query(JobRecord.run_uid).filter(JobRecord.job_uid == job_uid).scalar()
            run = s.query(Run).filter(Run.run_uid == run_uid).one_or_none()
            if run is not None and run.status == "running":
                run.status, run.reason, run.ended_at = "failed", f"job {state}", utcnow()

    def _set(self, job_uid: str, **values: Any) -> None:
        with self.ws.session() as s:
            job = s.query(JobRecord).filter(JobRecord.job_uid == job_uid).one()
            for key, value in values.items():
                setattr(job, key, value)

    def _finish(self, job_uid: str, state: str, code: int | None, reason: str | None) -> None:
        self._set(job_uid, state=state, exit_code=code, reason=(reason or None) and reason[:2000],
                  ended_at=utcnow())

    def wait(self, job_uid: str, timeout: float) -> str:
        """Block until the job is final (tests, and callers without a poll loop); returns its state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.ws.session() as s:
                state = s.query(JobRecord.state).filter(JobRecord.job_uid == job_uid).scalar()
            if state in table.FINAL_STATES:
                return str(state)
            time.sleep(0.1)
        raise TimeoutError(f"job {job_uid} still {state} after {timeout:g} s")


def _last_error(path: Path) -> str | None:
    """The worker's one-line `error:` (the message a CLI run would print), if it wrote one."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    errors = [msg for _, _, msg in (ln.partition(" error: ") for ln in lines) if msg]
    return errors[-1] if errors else None


def _kill_if_alive(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()


def _kill_orphan(pid: int, job_uid: str) -> None:
    """Stop a worker that outlived its server (it normally stops itself at end-of-file on stdin).

    Only a process whose command line names this job is touched: the pid may
    have been reused by something else since."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return
    if WORKER_MODULE.encode() not in cmdline or job_uid.encode() not in cmdline:
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(100):  # until it is gone, so its run lock and ledger writes are over
        if not Path(f"/proc/{pid}").exists():
            return
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
                return
        except OSError:
            return
        time.sleep(0.05)


__all__ = ["JobManager", "JobView"]
