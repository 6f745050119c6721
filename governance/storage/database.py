"""Where a workspace's metadata lives and how to reach it: a SQLite file or a PostgreSQL server.

Why its own module: a shared deployment keeps one promise per workspace. The
URL in ``workspace.json`` is the only store every later command opens (never a
silent fallback to an empty SQLite file); the password never lands in the
config (it comes from ``PRIVGOV_DB_PASSWORD``, ``PGPASSWORD`` or a file); and
each workspace on a shared server lives in its own PostgreSQL schema, so two
workspaces' audit chains, ledgers and catalogs never mix. Every failure to
reach the server is one line naming the URL with the password redacted.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from governance.storage.store import make_engine
from privacy.errors import InputError, WorkspaceError

SCHEMA_PREFIX = "privgov_"
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
PASSWORD_ENV = ("PRIVGOV_DB_PASSWORD", "PGPASSWORD")
PASSWORD_FILE_ENV = "PRIVGOV_DB_PASSWORD_FILE"
INSTALL_HINT = "pip install 'privgov[postgres]'"


def redact(url: str | URL) -> str:
    """The URL as it may be printed: any password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True) if not isinstance(url, URL) \
            else url.render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable URL)"


def parse_db_url(url: str) -> URL:
    """A `--db-url` checked for what a workspace config may hold: SQLite or PostgreSQL, no password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InputError(f"--db-url {url!r}: expected a URL like postgresql://user@host:5432/dbname") from None
    backend = parsed.get_backend_name()
    if backend not in ("postgresql", "sqlite"):
        raise InputError(f"--db-url {redact(parsed)}: expected a postgresql:// or sqlite:/// URL, got {backend}")
    if parsed.password is not None:
        raise InputError(
            f"--db-url {redact(parsed)}: leave the password out of the URL (it would be saved in workspace.json); "
            f"set PRIVGOV_DB_PASSWORD or PGPASSWORD, or pass --db-password-file"
        )
    if backend == "postgresql" and not parsed.database:
        raise InputError(f"--db-url {redact(parsed)}: name the database, e.g. postgresql://user@host:5432/privgov")
    return parsed


def schema_for(workspace_id: str) -> str:
    """The PostgreSQL schema of a workspace: `privgov_<id>` (checked, since it is spliced into SQL)."""
    name = f"{SCHEMA_PREFIX}{workspace_id}".lower()
    if not _SCHEMA_RE.match(name):
        raise InputError(f"workspace id {workspace_id!r}: expected lowercase letters, digits and _ (max 54)")
    return name


def parse_schema(schema: str) -> str:
    """A `--db-schema` name, checked (it is spliced into `CREATE SCHEMA` and `search_path`)."""
    if not _SCHEMA_RE.match(schema):
        raise InputError(f"--db-schema {schema!r}: expected lowercase letters, digits and _ (max 63), "
                         "starting with a letter or _")
    return schema


def _password(config: dict[str, Any]) -> str | None:
    """The server password: environment first, then a file (env or config); never the config itself."""
    for var in PASSWORD_ENV:
        if os.environ.get(var):
            return os.environ[var]
    file = os.environ.get(PASSWORD_FILE_ENV) or config.get("db_password_file")
    if not file:
        return None
    try:
        return Path(file).expanduser().read_text().strip()
    except OSError as exc:
        raise WorkspaceError(f"db password file {file}: unreadable ({exc.strerror})") from None


def configured_url(root: Path, config: dict[str, Any]) -> URL:
    """The URL every command opens: `PRIVGOV_DB_URL`, else workspace.json `db_url`, else `<root>/privgov.db`."""
    url = os.environ.get("PRIVGOV_DB_URL") or config.get("db_url")
    return make_url(url) if url else make_url(f"sqlite:///{root / 'privgov.db'}")


def _driver_url(url: URL, config: dict[str, Any]) -> URL:
    """Pick psycopg 3 for plain postgresql:// and add the password from the environment or file."""
    if url.get_backend_name() != "postgresql":
        return url
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    password = url.password or _password(config)
    return url.set(password=password) if password else url


def open_engine(root: Path, config: dict[str, Any]) -> Engine:
    """The workspace's engine, connected once so that a bad URL fails here, in one line (exit 2).

    PostgreSQL connections get `search_path` = the workspace's schema, so every
    table, index, advisory-lock holder and Alembic version row of this
    workspace lives in it."""
    url = configured_url(root, config)
    if url.get_backend_name() == "sqlite":
        return make_engine(url.render_as_string(hide_password=False))
    schema = config.get("db_schema")
    if schema is not None and not _SCHEMA_RE.match(schema):
        raise WorkspaceError(f"workspace.json db_schema {schema!r}: expected lowercase letters, digits and _")
    shown = redact(url)
    try:
        engine = make_engine(_driver_url(url, config), schema=schema)
    except (ModuleNotFoundError, NoSuchModuleError):
        raise WorkspaceError(f"database {shown}: the PostgreSQL driver (psycopg 3) is not installed; "
                             f"{INSTALL_HINT}") from None
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        engine.dispose()
        reason = " ".join(str(exc.orig).split()) or type(exc.orig).__name__
        raise WorkspaceError(f"database {shown}: cannot connect ({reason})") from None
    return engine


def create_schema(engine: Engine, schema: str) -> None:
    """Create the workspace's schema; refuse one that already holds tables (another workspace's)."""
    from sqlalchemy import inspect, text

    parse_schema(schema)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    if inspect(engine).get_table_names(schema=schema):
        raise WorkspaceError(f"database schema {schema} already holds tables (another workspace); "
                             "choose another --db-schema")


def drop_schema(engine: Engine, schema: str) -> None:
    """Undo `create_schema` for a workspace whose creation failed (its tables go with it)."""
    from sqlalchemy import text

    parse_schema(schema)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


__all__ = ["configured_url", "create_schema", "drop_schema", "open_engine", "parse_db_url", "parse_schema", "redact",
           "schema_for"]
