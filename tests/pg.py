"""A throwaway PostgreSQL cluster for the tests and benchmarks: Debian's `postgresql`, `initdb` + `pg_ctl`.

Why a real server and not a mock: the properties under test (row locks, advisory
locks, one schema per workspace, a killed client's transaction rolled back) are
the server's. The cluster lives in a temp dir on a free port of 127.0.0.1 with
password (scram) authentication over TCP, and is stopped and deleted at the end.
initdb refuses to run as root, so as root the cluster runs as the `postgres`
system user (created by the Debian package) via `runuser`. If PostgreSQL is not
installed this fails with the install command - it never skips.
"""
from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

INSTALL = "apt-get update && apt-get install -y postgresql  (or: sudo bash scripts/system-deps.sh)"
USER = "privgov"
DATABASE = "privgov_test"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be started here; the message says how to install it."""


@dataclass
class Cluster:
    """A running cluster: `url` (no password) for `privgov init --db-url`, `password` for the environment."""

    datadir: Path
    bindir: Path
    port: int
    password: str = field(repr=False)  # kept out of failure reports
    run_as: tuple[str, ...]

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def engine(self, schema: str | None = None):
        """An engine on the test database (password added here, never in a URL that is printed or saved)."""
        from sqlalchemy.engine import make_url

        from governance.storage.store import make_engine

        url = make_url(self.url).set(drivername="postgresql+psycopg", password=self.password)
        return make_engine(url, schema=schema)

    def fresh_schema_engine(self):
        """An engine whose search_path is a new, empty schema: one test's private database."""
        from sqlalchemy import text

        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = self.engine()
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        return self.engine(schema)

    def stop(self) -> None:
        subprocess.run([*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.datadir / "data"),
                        "-m", "immediate", "stop"], capture_output=True, check=False)
        shutil.rmtree(self.datadir, ignore_errors=True)


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise PostgresUnavailable(f"PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin); install: {INSTALL}")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster() -> Cluster:
    """initdb + pg_ctl start in a fresh temp dir; returns once the server accepts connections."""
    bindir = _bindir()
    tmp = Path(tempfile.mkdtemp(prefix="privgov-pg-"))
    run_as: tuple[str, ...] = ()
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable(f"no `postgres` system user to run the test cluster as; install: {INSTALL}") from None
        run_as = ("runuser", "-u", "postgres", "--")
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
    password = secrets.token_urlsafe(16)
    pwfile = tmp / "pw"
    pwfile.write_text(password + "\n")
    if run_as:
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
    os.chmod(pwfile, 0o600)
    cluster = Cluster(tmp, bindir, _free_port(), password, run_as)

    def run(*cmd: str) -> None:
        proc = subprocess.run([*run_as, *cmd], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            cluster.stop()
            raise PostgresUnavailable(f"{Path(cmd[0]).name} failed ({proc.returncode}): "
                                      f"{(proc.stderr or proc.stdout).strip()[-400:]}")

    run(str(bindir / "initdb"), "-D", str(tmp / "data"), "-U", USER, "--pwfile", str(pwfile), "-E", "UTF8",
        "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions")
    opts = (f"-h 127.0.0.1 -p {cluster.port} -k {tmp} -F -c max_connections=300 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off")
    run(str(bindir / "pg_ctl"), "-D", str(tmp / "data"), "-o", opts, "-l", str(tmp / "log"), "-w", "-t", "60", "start")
    run(str(bindir / "createdb"), "-h", str(tmp), "-p", str(cluster.port), "-U", USER, DATABASE)
    return cluster


__all__ = ["Cluster", "INSTALL", "PostgresUnavailable", "start_cluster"]
