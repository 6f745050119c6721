"""`/v1/runs`: governed pipeline runs as background jobs (`governance.run.jobs`).

Why a job and not a request: a run takes minutes; the request only checks and
queues it (202 with the job id) and the caller polls. The run is the CLI's
`privgov run` in a worker process, authenticated with the caller's own token
(handed over in memory, never stored), so admission, the ledger and the audit
log are exactly the CLI's. A job is visible only to its submitter and to
admins; someone else's job and a job that does not exist are the same 404.
Files a pipeline names must lie inside the server's data directory
(`privgov serve --data-dir`); anything else is 422 naming the key.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field

from governance.access.authorize import Identity
from governance.server.auth import CurrentIdentity, bearer_scheme
from governance.server.errors import error_body
from privacy.errors import InputError, WorkspaceError

router = APIRouter(prefix="/v1", tags=["runs"])


def start_jobs(app: FastAPI, ws_root: Path, data_dir: str | None) -> None:
    """At server start: take the workspace's job lock and mark a dead server's jobs interrupted.

    With several uvicorn workers only the first gets the lock; the others answer
    the run routes with 503 (run jobs with `--workers 1`)."""
    from governance.run.jobs import JobManager

    manager = JobManager(ws_root, Path(data_dir) if data_dir else None)
    try:
        manager.start()
    except WorkspaceError:
        manager.ws.engine.dispose()
        app.state.jobs = None
        return
    app.state.jobs = manager


def stop_jobs(app: FastAPI) -> None:
    manager = getattr(app.state, "jobs", None)
    if manager is not None:
        manager.close()


def _jobs(request: Request) -> Any:
    manager = getattr(request.app.state, "jobs", None)
    if manager is None:
        raise HTTPException(503, "this server process does not run jobs (another process holds the workspace's "
                            "job lock); start the server with --workers 1")
    return manager


Jobs = Annotated[Any, Depends(_jobs)]


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pipeline: str | dict[str, Any] = Field(description="The pipeline: YAML text, or the same as a JSON object. "
                                           "Files it names are relative to the server data directory.",
                                           examples=["name: clinic\ndataset: clinic-visits\n..."])


class JobOut(BaseModel):
    job: str = Field(description="Job id.", examples=["4c1f0e6b9d2a4e0f8a7b3c5d6e7f8091"])
    state: str = Field(description="queued | running | succeeded | failed | cancelled | interrupted.",
                       examples=["running"])
    principal: str = Field(description="Who submitted it; the run runs as this principal.", examples=["ana"])
    pipeline: str = Field(description="The pipeline's name.", examples=["clinic-readmission"])
    dataset: str = Field(description="Dataset the run writes a version of.", examples=["clinic-visits"])
    pipeline_sha256: str = Field(description="sha256 of the pipeline as stored with the job (canonical JSON).",
                                 examples=["e81a13b6895f7fee9aa62dba7e974747c49873c52a812a777a0810c5b5c05bf8"])
    run_uid: str = Field(description="The run's id (`privgov dataset show`, `/v1/models/{run}/predict`).",
                         examples=["04897d9a7002448d"])
    run_status: str | None = Field(description="The run's own status once admitted; null before (or if refused).",
                                   examples=["succeeded"])
    exit_code: int | None = Field(description="The worker's exit code (the CLI's codes; negative: signal).",
                                  examples=[0])
    reason: str | None = Field(description="Why it failed, was cancelled or interrupted (one line).",
                               examples=[None])
    submitted_at: str = Field(examples=["2026-12-02T15:00:22Z"])
    started_at: str | None = Field(examples=["2026-12-02T15:00:22Z"])
    ended_at: str | None = Field(examples=["2026-12-02T15:01:19Z"])


class JobLog(BaseModel):
    job: str = Field(examples=["4c1f0e6b9d2a4e0f8a7b3c5d6e7f8091"])
    state: str = Field(examples=["running"])
    log: str = Field(description="The run's progress lines and its one-line error, if any; never data values.",
                     examples=["2026-12-02T15:00:35Z ingest start\n"])


def _out(view: Any) -> JobOut:
    from dataclasses import asdict

    return JobOut(**asdict(view))


def _not_found() -> HTTPException:
    return HTTPException(404, "no such job")


@router.post("/runs", name="run", status_code=202, response_model=JobOut)
def submit_run(body: RunRequest, identity: CurrentIdentity, jobs: Jobs,
               credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]) -> Any:
    """Check the pipeline and queue its run as the caller; 202 with the job. 422 names a bad key or path."""
    assert credentials is not None  # current_identity refused a request without one
    try:
        view = jobs.submit(identity.name, credentials.credentials.strip(), body.pipeline)
    except InputError as exc:
        return JSONResponse(error_body("invalid_pipeline", str(exc)), status_code=422)
    return _out(view)


@router.get("/runs", name="list_runs", response_model=list[JobOut])
def list_runs(identity: CurrentIdentity, jobs: Jobs) -> list[JobOut]:
    """The caller's jobs, newest first (an admin sees everyone's)."""
    return [_out(v) for v in jobs.list(identity.name, admin=identity.is_admin)]


def _view(jobs: Any, job: str, identity: Identity) -> Any:
    view = jobs.view(job, identity.name, admin=identity.is_admin)
    if view is None:
        raise _not_found()
    return view


@router.get("/runs/{job}", name="run_status", response_model=JobOut)
def run_status(job: str, identity: CurrentIdentity, jobs: Jobs) -> JobOut:
    return _out(_view(jobs, job, identity))


@router.get("/runs/{job}/logs", name="run_logs", response_model=JobLog)
def run_logs(job: str, identity: CurrentIdentity, jobs: Jobs) -> JobLog:
    view = _view(jobs, job, identity)
    return JobLog(job=view.job, state=view.state, log=jobs.logs(job, identity.name, admin=identity.is_admin) or "")


@router.post("/runs/{job}/cancel", name="cancel_run", response_model=JobOut)
def cancel_run(job: str, identity: CurrentIdentity, jobs: Jobs) -> JobOut:
    """Stop the job (see docs/server.md for what a cancel leaves on the budget). A finished job is returned as is."""
    view = jobs.cancel(job, identity.name, admin=identity.is_admin)
    if view is None:
        raise _not_found()
    return _out(view)
