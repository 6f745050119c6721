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

from governance.storage.store import Base, database_url, make_engine
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


class Workspace:
    """An open workspace: its database, keyring, object store, audit log and budget ledger."""

    def __init__(self, root: Path, config: dict) -> None:
        self.root = root
        self.config = config
        url = database_url(root, config)
        _private_sqlite_file(url)
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    # ---- lifecycle -------------------------------------------------------
    @classmethod
    def create(cls, root: Path, *, key_provider: str = "file", passphrase: str | None = None,
               audit_witness: Path | None = None) -> "Workspace":
        """Create a new workspace. Refuses to touch an existing one.

        ``audit_witness``: where signed audit heads are appended outside the database
        (default ``<root>/audit-witness.jsonl``); put it where the auditor, not the
        database's writers, controls it."""
        from governance.storage.key_providers import provider_from_args
        from governance.storage.keyring import Keyring

        if audit_witness is not None and not Path(audit_witness).expanduser().parent.is_dir():
            raise WorkspaceError(f"--audit-witness {audit_witness}: its directory does not exist")
        if (root / CONFIG_NAME).exists():
            raise WorkspaceError(f"{root}: a workspace already exists here")
        if root.exists() and any(root.iterdir()):
            raise WorkspaceError(f"{root}: directory is not empty; choose a new --workspace")
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        config = {"format_version": FORMAT_VERSION, "key_provider": key_provider}
        if audit_witness is not None:
            config["audit_witness"] = str(Path(audit_witness).expanduser().resolve())
        try:
            provider = provider_from_args(key_provider, root, passphrase)
            ws = cls(root, config)
            _import_table_modules()
            Base.metadata.create_all(ws.engine)
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
            raise
        return ws

    @classmethod
    def open(cls, root: Path) -> "Workspace":
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
        _import_table_modules()
        ws = cls(root, config)
        ws._add_new_tables()
        return ws

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
