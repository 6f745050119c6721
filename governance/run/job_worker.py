"""One server job's run: the same `run_pipeline` as `privgov run`, in its own process.

Why a process: cancelling must really stop the run. SIGTERM raises `Cancelled`
in the run, which records its end like any failed run (the ledger keeps what
the stage reached: see `governance.run.jobs`). The submitter's token arrives
as the first line on stdin and is never written anywhere; stdin then stays
open, and end-of-file means the server is gone, so the run stops itself
rather than go on without anyone to record it.

Output is the log the job's owner reads: one line per stage and the one-line
error a CLI run would print. Warnings are silenced and unexpected errors are
named by type only, since either could quote a data value.

    python -m governance.run.job_worker --job JOB   (PRIVGOV_WORKSPACE set; token on stdin)
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from types import FrameType


class Cancelled(BaseException):
    """The job was cancelled (SIGTERM) or its server went away."""


def _say(line: str) -> None:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    sys.stdout.write(f"{now} {line}\n")
    sys.stdout.flush()


def _on_term(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one Cancelled, not one per repeated signal
    raise Cancelled("the job was cancelled")


def _read_token() -> str | None:
    """The first line on stdin, read from the descriptor itself (no buffer a daemon thread would hold)."""
    raw = bytearray()
    while not raw.endswith(b"\n"):
        chunk = os.read(0, 1)
        if not chunk:
            break
        raw += chunk
    return raw.decode().rstrip("\n") or None


def _watch_stdin() -> None:
    """End-of-file on stdin: the server died; stop the run as if cancelled."""
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="privgov-job-worker")
    parser.add_argument("--job", required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_term)
    token = _read_token()
    threading.Thread(target=_watch_stdin, daemon=True).start()
    warnings.simplefilter("ignore")
    try:
        return _run(args.job, token)
    except Cancelled as exc:
        _say(f"error: {exc}")
        return 130
    except Exception as exc:  # noqa: BLE001 - the log must stay one line without values
        from privacy.errors import PrivgovError

        if isinstance(exc, PrivgovError):
            _say(f"error: {exc}")
            return exc.exit_code
        _say(f"error: unexpected {type(exc).__name__}; the run's record and the audit log say where it stopped")
        return 1


def _run(job_uid: str, token: str | None) -> int:
    from governance.run.runner import run_pipeline
    from governance.run.submitted import parse_submitted
    from governance.storage.jobs import JobRecord
    from governance.workspace import Workspace, resolve_root

    import json

    ws = Workspace.open(resolve_root(None))
    with ws.session() as s:
        job = s.query(JobRecord).filter(JobRecord.job_uid == job_uid).one()
        pipeline, data_dir, run_uid = json.loads(job.pipeline_json), job.data_dir, job.run_uid
    # checked again here: the data directory may have changed since the job was submitted
    spec = parse_submitted(pipeline, Path(data_dir) if data_dir else None)
    _say(f"job {job_uid}: pipeline `{spec.name}` on `{spec.dataset}`, run {run_uid}")

    def progress(stage: str, state: str) -> None:
        _say(f"{stage} {state}")

    with ws.lock():
        summary = run_pipeline(ws, spec, token, progress, run_uid=run_uid)
    del token
    eps = "" if summary.epsilon_spent is None else f"; epsilon spent {summary.epsilon_spent:.4f}"
    _say(f"run {summary.run_uid} {summary.status}: version {summary.version}, {summary.rows_clean} rows stored, "
         f"{summary.rows_quarantined} quarantined{eps}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
