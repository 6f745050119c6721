"""The ``jobs`` table: governed runs submitted to the server and run in the background.

Why in storage: the workspace creates every table it owns, and a job record
must outlive the server process that started it (a restart has to find the
jobs a dead server left behind and mark them interrupted). The rules over
these rows - who may see a job, how it is started, cancelled and recovered -
live in :mod:`governance.run.jobs`. No token and no data value is ever stored
here: the submitter's token travels to the run only through a pipe in memory.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from governance.storage.store import Base, utcnow

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, INTERRUPTED = (
    "queued", "running", "succeeded", "failed", "cancelled", "interrupted")
ACTIVE_STATES = (QUEUED, RUNNING)
FINAL_STATES = (SUCCEEDED, FAILED, CANCELLED, INTERRUPTED)


class JobRecord(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_uid: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    principal: Mapped[str] = mapped_column(String(200), index=True)
    pipeline: Mapped[str] = mapped_column(String(500))
    dataset_name: Mapped[str] = mapped_column(String(200))
    pipeline_sha256: Mapped[str] = mapped_column(String(64))
    # the pipeline as submitted (a declaration, no data values): the worker re-reads it from here
    pipeline_json: Mapped[str] = mapped_column(Text)
    data_dir: Mapped[str] = mapped_column(Text)  # the directory every path in the pipeline must stay inside
    run_uid: Mapped[str] = mapped_column(String(64), unique=True)  # the id the run gets once admitted
    state: Mapped[str] = mapped_column(String(20), default=QUEUED, index=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    submitted_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
