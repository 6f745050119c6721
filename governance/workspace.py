"""The workspace: one directory holding the metadata DB, encrypted objects and keys.

Why a single root: an operator can back it up, move it, or point a CI job at it
(`--workspace`, `PRIVGOV_WORKSPACE`), and every command finds the same store,
keyring, audit log and budget ledger. Heavy collaborators are created lazily so
read-only commands stay fast.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from governance.storage.database import (
    configured_url, create_schema, drop_schema, open_engine, parse_db_url, parse_schema, redact,
    schema_for,
)
from governance.storage.migrate import SchemaState, check_current, schema_state, upgrade
from governance.storage.store import Base
from privacy.errors import WorkspaceError

if TYPE_CHECKING:  # pragma: no cover
    from governance.evidence.audit import AuditLog
    from governance.storage.keyring import Keyring
    from governance.storage.objectstore import ObjectStore
    from privacy.ledger import BudgetLedger

FORMAT_VERSION = 1
CONFIG_NAME = "workspace.json"
DEFAULT_ROOT = ".privgov"


def resolve_root(option: str | Path | None) -> Path:
    """`--workspace` beats `PRIVGOV_WORKSPACE` beats `./.privgov`."""
    if option:
        return Path(option).expanduser().resolve()
    env = os.environ.get("PRIVGOV_WORKSPACE")
    if env:
        return Path(env).expanduser().resolve()
    return Path(DEFAULT_ROOT).resolve()


def _import_table_modules() -> None:
    """Tables are declared next to the code that owns them; import them all."""
    import governance.evidence.audit  # noqa: F401
    import governance.storage.jobs  # noqa: F401
    import governance.storage.keyring  # noqa: F401
    import governance.storage.principals  # noqa: F401


def _private_sqlite_file(url: str) -> None:
    """Create a missing SQLite database file 0600 before SQLite does (it would use 0644).

    SQLite gives ``-wal`` and ``-shm`` the mode of the database file, so this
    one file decides all three. Existing files are left as the operator set them.
    """
    if not url.startswith("sqlite:///") or url in ("sqlite:///", "sqlite:///:memory:"):
        return
    path = Path(url.removeprefix("sqlite:///"))
    if path.parent.is_dir():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _private_opener(path: str, flags: int) -> int:
    """``open(..., opener=)`` hook: files the workspace creates are 0600, whatever the umask."""
    return os.open(path, flags, 0o600)


def _new_config(key_provider: str, audit_witness: Path | None, db_url: str | None,
                db_password_file: Path | None, db_schema: str | None) -> dict:
    """workspace.json for a new workspace: no secrets, the database URL without its password."""
    import uuid

    config: dict = {"format_version": FORMAT_VERSION, "key_provider": key_provider,
                    "workspace_id": uuid.uuid4().hex[:12]}
    if audit_witness is not None:
        config["audit_witness"] = str(Path(audit_witness).expanduser().resolve())
    if db_url is None:
        return config
    url = parse_db_url(db_url)
    config["db_url"] = url.render_as_string(hide_password=False)
    if url.get_backend_name() == "postgresql":
        config["db_schema"] = schema_for(config["workspace_id"]) if db_schema is None else parse_schema(db_schema)
    if db_password_file is not None:
        path = Path(db_password_file).expanduser().resolve()
        if not path.is_file():
            raise WorkspaceError(f"--db-password-file {db_password_file}: no such file")
        config["db_password_file"] = str(path)
    return config


class Workspace:
    """An open workspace: its database, keyring, object store, audit log and budget ledger."""

    def __init__(self, root: Path, config: dict) -> None:
        self.root = root
        self.config = config
        _private_sqlite_file(configured_url(root, config).render_as_string(hide_password=False))
        self.engine = open_engine(root, config)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    # ---- lifecycle -------------------------------------------------------
    @classmethod
    def create(cls, root: Path, *, key_provider: str = "file", passphrase: str | None = None,
               audit_witness: Path | None = None, db_url: str | None = None,
               db_password_file: Path | None = None, db_schema: str | None = None) -> "Workspace":
        """Create a new workspace. Refuses to touch an existing one.

        ``audit_witness``: where signed audit heads are appended outside the database
        (default ``<root>/audit-witness.jsonl``); put it where the auditor, not the
        database's writers, controls it. ``db_url``: a PostgreSQL server shared by
        several workspaces (saved without password; the workspace gets its own
        schema, ``db_schema`` or ``privgov_<workspace id>``)."""
        from governance.storage.key_providers import provider_from_args
        from governance.storage.keyring import Keyring

        if audit_witness is not None and not Path(audit_witness).expanduser().parent.is_dir():
            raise WorkspaceError(f"--audit-witness {audit_witness}: its directory does not exist")
        if (root / CONFIG_NAME).exists():
            raise WorkspaceError(f"{root}: a workspace already exists here")
        if root.exists() and any(root.iterdir()):
            raise WorkspaceError(f"{root}: directory is not empty; choose a new --workspace")
        config = _new_config(key_provider, audit_witness, db_url, db_password_file, db_schema)
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        made_schema = None
        try:
            provider = provider_from_args(key_provider, root, passphrase)
            ws = cls(root, config)
            if config.get("db_schema"):
                create_schema(ws.engine, config["db_schema"])
                made_schema = config["db_schema"]
            _import_table_modules()
            upgrade(ws.engine)
            Base.metadata.create_all(ws.engine)  # tables added to the models before their migration
            ws.ledger.create_tables()
            ws.__dict__["keyring"] = Keyring.create(root, provider)
            (root / "objects").mkdir(exist_ok=True, mode=0o700)
            os.chmod(root / "objects", 0o700)
            tmp = root / (CONFIG_NAME + ".tmp")
            with open(tmp, "w", opener=_private_opener) as fh:
                fh.write(json.dumps(config, indent=2))
            os.replace(tmp, root / CONFIG_NAME)  # the config file marks a complete workspace
        except BaseException:
            # leave nothing half-made behind
            import shutil

            shutil.rmtree(root, ignore_errors=True)
            if made_schema:
                drop_schema(ws.engine, made_schema)
            raise
        return ws

    @classmethod
    def open(cls, root: Path) -> "Workspace":
        config = cls._read_config(root)
        _import_table_modules()
        ws = cls(root, config)
        check_current(ws.engine, redact(configured_url(root, config)))
        ws._add_new_tables()
        return ws

    @staticmethod
    def _read_config(root: Path) -> dict:
        cfg_path = root / CONFIG_NAME
        if not cfg_path.exists():
            raise WorkspaceError(f"{root}: no privgov workspace here; run `privgov init --workspace {root}` first")
        try:
            config = json.loads(cfg_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise WorkspaceError(f"{cfg_path}: unreadable workspace config ({exc})") from None
        if config.get("format_version") != FORMAT_VERSION:
            raise WorkspaceError(
                f"{cfg_path}: workspace format {config.get('format_version')} is not supported (expected {FORMAT_VERSION})"
            )
        return config

    @classmethod
    def upgrade_db(cls, root: Path) -> tuple["SchemaState", "SchemaState"]:
        """`privgov db upgrade`: bring the database to this privgov's schema; (before, after).

        A database made before migrations is first completed to the baseline
        (missing tables created, ledger columns migrated) and stamped; a newer
        one is refused untouched."""
        config = cls._read_config(root)
        ws = cls(root, config)
        before = schema_state(ws.engine)
        if before.state == "newer":
            check_current(ws.engine, redact(configured_url(root, config)))
        _import_table_modules()
        if before.state == "unversioned":
            Base.metadata.create_all(ws.engine)
            ws.ledger.create_tables()
        after = upgrade(ws.engine, stamp_baseline=before.state == "unversioned")
        ws.engine.dispose()
        return before, after

    def _add_new_tables(self) -> None:
        """Create tables added by a newer privgov (existing tables are left as they are)."""
        from sqlalchemy import inspect
        from sqlalchemy.exc import OperationalError

        have = set(inspect(self.engine).get_table_names())
        if all(t in have for t in Base.metadata.tables):
            return
        try:
            Base.metadata.create_all(self.engine)
        except OperationalError:  # another process created them first
            missing = set(Base.metadata.tables) - set(inspect(self.engine).get_table_names())
            if missing:
                raise

    # ---- locking ---------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive lock for commands that write; the OS releases it if we die."""
        path = self.root / "run.lock"
        fh = open(path, "a+", opener=_private_opener)
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise WorkspaceError(
                f"{self.root}: workspace is locked by another run (pid {holder}); wait for it to finish"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            fh.close()

    # ---- collaborators ---------------------------------------------------
    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @cached_property
    def keyring(self) -> "Keyring":
        from governance.storage.keyring import Keyring

        return Keyring.open(self.root)

    @cached_property
    def objects(self) -> "ObjectStore":
        from governance.storage.objectstore import ObjectStore

        return ObjectStore(self.root, self.keyring)

    @property
    def audit_witness_path(self) -> Path:
        """Where signed audit heads are appended (workspace.json ``audit_witness``)."""
        from governance.evidence.witness import resolve_witness_path

        return resolve_witness_path(self.root, self.config)

    @cached_property
    def audit(self) -> "AuditLog":
        from governance.evidence.audit import AuditLog
        from governance.evidence.witness import FileWitness

        return AuditLog(self._sessions, self.keyring.signing_key(), self.keyring.verify_key(),
                        witness=FileWitness(self.audit_witness_path))

    @cached_property
    def ledger(self) -> "BudgetLedger":
        from privacy.ledger import BudgetLedger

        return BudgetLedger(self.engine)
