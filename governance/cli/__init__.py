"""`privgov` command line.

Why this shape: pipelines (Airflow, Dagster, cron) call it and branch on the
exit code, people read its output. Every failure is one line `error: ...` on
stderr with a stable exit code (1 quality gate, 2 bad input, 3 denied, 4
integrity). Commands are thin adapters - parse, call one function, print -
one module per command group. Only typer is imported at start-up: `privgov
--help` must stay well under a second, so torch, Great Expectations, pandas and
SQLAlchemy are imported inside the commands that need them.
"""
from __future__ import annotations

import sys

# Importing a command module registers its commands; this order is the order `--help` lists them.
from governance.cli import workspace, run, datasets, data, models, evidence, admin, db  # noqa: F401, I001
from governance.cli.common import app

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    """Console entry point: maps privgov errors to one line and an exit code.

    With `argv` given (tests, embedding) the exit code is returned instead of
    exiting the process.
    """
    from privacy.errors import PrivgovError

    code = 0
    try:
        app(args=argv, prog_name="privgov")
    except PrivgovError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = exc.exit_code
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if argv is None:
        sys.exit(code)
    return code
