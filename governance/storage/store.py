"""Relational metadata store (SQLAlchemy).

Why: every fact an auditor may ask about (which version, which key, which run,
which validation) must live in one transactional store. SQLite is the embedded
default; any SQLAlchemy URL (PostgreSQL for a shared deployment) works the same.
Modules in `governance/` declare their tables on :class:`Base`; `privacy/` keeps
its own metadata (it may not import `governance`) and is created on the same
engine by the workspace.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Versions derived from one source describe the same people: they share a
    # lineage id and therefore one privacy budget.
    lineage_id: Mapped[str] = mapped_column(String(64), index=True)
    privacy_unit: Mapped[str | None] = mapped_column(String(200), nullable=True)
    row_id_column: Mapped[str] = mapped_column(String(200), default="row_id")
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # sha256 of the policy text that governs reads of this dataset (see PolicyRecord)
    policy_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class PolicyRecord(Base):
    """Every policy text a decision was made under, so decisions can be replayed."""

    __tablename__ = "policies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class DatasetVersion(Base):
    __tablename__ = "dataset_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20), default="data")  # data | quarantine
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"), nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the plaintext Parquet bytes
    blob_hash: Mapped[str] = mapped_column(String(64))  # address of the ciphertext in the object store
    data_key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    row_count: Mapped[int] = mapped_column(BigInteger)
    unit_count: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    schema_json: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{"name":..,"dtype":..}]
    steps_json: Mapped[list[Any]] = mapped_column(JSON, default=list)  # declared steps + params + counts
    meta_json: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    validation_status: Mapped[str] = mapped_column(String(20), default="unvalidated")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    erased_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class LineageEdge(Base):
    """`child` was derived from `parent` (a version, or a run's model)."""

    __tablename__ = "lineage_edges"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_kind: Mapped[str] = mapped_column(String(20))  # version | run
    parent_id: Mapped[int] = mapped_column(Integer, index=True)
    child_kind: Mapped[str] = mapped_column(String(20))
    child_id: Mapped[int] = mapped_column(Integer, index=True)
    relation: Mapped[str] = mapped_column(String(40))  # cleaned | quarantine | deidentified | trained


class ValidationRecord(Base):
    __tablename__ = "validations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"), nullable=True)
    dataset_name: Mapped[str] = mapped_column(String(200))
    stage: Mapped[str] = mapped_column(String(40))  # raw | cleaned | file
    suite_name: Mapped[str] = mapped_column(String(200))
    success: Mapped[bool] = mapped_column(Boolean)
    evaluated: Mapped[int] = mapped_column(Integer)
    failed_expectations: Mapped[int] = mapped_column(Integer)
    failing_rows: Mapped[int] = mapped_column(BigInteger)
    result_json: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # row ids only, never values
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_uid: Mapped[str] = mapped_column(String(64), unique=True)
    pipeline: Mapped[str] = mapped_column(String(500))
    dataset_name: Mapped[str] = mapped_column(String(200))
    version_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    principal: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="running")  # running|succeeded|failed|denied
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    epsilon: Mapped[float | None] = mapped_column(Float, nullable=True)
    delta: Mapped[float | None] = mapped_column(Float, nullable=True)
    metrics_json: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    model_card_json: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    model_blob_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    model_data_key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    affected_by_erasure: Mapped[bool] = mapped_column(Boolean, default=False)


class TrainingCheckpoint(Base):
    """The latest encrypted checkpoint of a training run that has not finished.

    Why a row and not a file name: `privgov run --resume RUN` must find the
    ciphertext, its data key and the step it was taken at, transactionally
    with the run it belongs to. The row (and blob) go once the model is stored.
    """

    __tablename__ = "training_checkpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_uid: Mapped[str] = mapped_column(String(64), unique=True)
    step: Mapped[int] = mapped_column(Integer)
    steps_total: Mapped[int] = mapped_column(Integer)
    blob_hash: Mapped[str] = mapped_column(String(64))
    data_key_id: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


def make_engine(url: "str | URL", *, schema: str | None = None) -> Engine:
    """Engine with SQLite tuned for several writer processes (WAL, busy timeout).

    ``secure_delete`` zeroes deleted and overwritten row bytes instead of leaving
    them in free pages: a crypto-shredded wrapped key must not survive in the file.
    PostgreSQL: ``schema`` becomes every connection's ``search_path`` (one schema
    per workspace on a shared server; see :mod:`governance.storage.database`).
    """
    if str(url).startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        return engine
    connect_args: dict[str, Any] = {"connect_timeout": 10}
    if schema:
        connect_args["options"] = f"-csearch_path={schema}"
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
