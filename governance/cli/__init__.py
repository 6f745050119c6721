"""`privgov` command line.

Why this shape: pipelines (Airflow, Dagster, cron) call it and branch on the
exit code, people read its output. Every failure is one line `error: ...` on
stderr with a stable exit code (`common.ExitCode`: 1 validation failed, 2 bad
input, 3 refused by policy or budget, 4 integrity failure; docs/cli.md). Commands are thin adapters - parse, call one function, print -
one module per command group. Only typer is imported at start-up: `privgov
--help` must stay well under a second, so torch, Great Expectations, pandas and
SQLAlchemy are imported inside the commands that need them.
"""
from __future__ import annotations

import os
import sys

# Importing a command module registers its commands; this order is the order `--help` lists them.
from governance.cli import workspace, run, datasets, data, models, evidence, admin, db, integrations, serve  # noqa: F401, I001
from governance.cli.common import app

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    """Console entry point: maps every outcome to one line and an `ExitCode`.

    Why central: a command only raises; this is the one place that turns privgov
    errors (their `exit_code`), usage errors (2), unreadable files (2) and bugs
    (70, one line; `PRIVGOV_DEBUG=1` shows the traceback) into an exit status.
    With `argv` given (tests, embedding) the exit code is returned instead of
    exiting the process.
    """
    from governance.cli.common import ExitCode
    from privacy.errors import PrivgovError

    code: int = ExitCode.OK
    try:
        app(args=argv, prog_name="privgov")
    except PrivgovError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = exc.exit_code
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (ExitCode.OK if exc.code is None else ExitCode.BAD_INPUT)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        code = 130
    except OSError as exc:  # a file the user named could not be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        code = ExitCode.BAD_INPUT
    except Exception as exc:  # a bug: one line, not a traceback, unless asked
        if os.environ.get("PRIVGOV_DEBUG"):
            raise
        print(f"error: internal error ({type(exc).__name__}): {exc}; rerun with PRIVGOV_DEBUG=1 for the "
              "traceback and report it", file=sys.stderr)
        code = ExitCode.INTERNAL
    code = int(code)
    if argv is None:
        sys.exit(code)
    return code
