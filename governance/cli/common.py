"""`privgov` command line: the Typer apps, shared options and helpers.

Why this shape: pipelines (Airflow, Dagster, cron) call it and branch on the
exit code, people read its output. Every failure is one line `error: ...` on
stderr with a stable exit code (`ExitCode`, documented in docs/cli.md). Every
command takes `--json`: the full result as one JSON document on stdout, and
every human message on stderr, through `emit()`. Only typer is imported at start-up: `privgov --help` must stay well
under a second, so torch, Great Expectations, pandas and SQLAlchemy are imported
inside the commands that need them.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import os
import sys
from pathlib import Path, PurePath
from typing import Any, Callable, Optional

import typer

app = typer.Typer(
    name="privgov",
    help="Privacy-focused data governance: quality gates, de-identification, encryption at rest, "
    "policy-as-code, differentially private training and a tamper-evident audit log.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
dataset_app = typer.Typer(help="Datasets, versions, lineage, export and erasure.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained, signed audit log.", no_args_is_help=True)
budget_app = typer.Typer(help="Privacy budget ledger.", no_args_is_help=True)
quality_app = typer.Typer(help="Validate data with Great Expectations suites.", no_args_is_help=True)
pii_app = typer.Typer(help="Detect and transform personal data.", no_args_is_help=True)
policy_app = typer.Typer(help="Policy-as-code: test policies against expected decisions.", no_args_is_help=True)
principal_app = typer.Typer(help="People and service accounts.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
keys_app = typer.Typer(help="Key-encryption keys: rotation and retirement.", no_args_is_help=True)
access_app = typer.Typer(help="Access reviews.", no_args_is_help=True)
sample_app = typer.Typer(help="Built-in sample data generators.", no_args_is_help=True)
for sub, name in [
    (dataset_app, "dataset"), (audit_app, "audit"), (budget_app, "budget"), (quality_app, "quality"),
    (pii_app, "pii"), (policy_app, "policy"), (principal_app, "principal"), (token_app, "token"),
    (keys_app, "keys"), (access_app, "access"), (sample_app, "sample"),
]:
    app.add_typer(sub, name=name)

WorkspaceOpt = typer.Option(None, "--workspace", "-w", help="Workspace directory (default $PRIVGOV_WORKSPACE or ./.privgov).")
TokenOpt = typer.Option(None, "--token", help="API token (default $PRIVGOV_TOKEN).")
JsonOpt = typer.Option(False, "--json", help="Print the full result as one JSON document on stdout; "
                       "messages go to stderr.")
FormatOpt = typer.Option(None, "--format", hidden=True, help="Deprecated: use --json.")


class ExitCode(enum.IntEnum):
    """The process exit status of every command; pipelines branch on it (docs/cli.md).

    Why one table: a scheduler cannot tell "the data is bad" from "you may not"
    from "the evidence was tampered with" unless each has its own code, and the
    errors in `privacy.errors` carry these values as their `exit_code`.
    """

    OK = 0
    VALIDATION_FAILED = 1  # a quality suite or a policy test case failed
    BAD_INPUT = 2          # bad argument, file, spec, or missing/locked workspace
    REFUSED = 3            # denied by policy, bad token, or over the privacy budget
    INTEGRITY = 4          # audit chain broken, signature or decryption tag failed
    INTERNAL = 70          # a bug in privgov (EX_SOFTWARE): never expected, please report


def want_json(as_json: bool, fmt: Optional[str], *, formats: tuple[str, ...] = ("text", "json")) -> bool:
    """Fold the deprecated `--format` into `--json`, with a warning on stderr.

    Why kept for one release: scripts written against `--format json` keep
    working while they move to `--json`; a value outside `formats` is bad input.
    """
    if fmt is None:
        return as_json
    from privacy.errors import InputError

    if fmt not in formats:
        raise InputError(f"--format: expected one of {', '.join(formats)} (deprecated; use --json), got {fmt!r}")
    print("warning: --format is deprecated and will be removed in the next release; use --json",
          file=sys.stderr)
    return as_json or fmt == "json"


def jsonable(obj: Any) -> Any:
    """`obj` as plain JSON types: dataclasses and pydantic models as objects, dates as ISO
    strings, paths as strings, NaN and infinities as null (strict JSON has no NaN)."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj.value if isinstance(obj, enum.Enum) else obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, enum.Enum):
        return jsonable(obj.value)
    if isinstance(obj, (dt.datetime, dt.date, dt.time)):
        return obj.isoformat()
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, bytes):
        return obj.hex()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if hasattr(obj, "model_dump"):  # pydantic
        return jsonable(obj.model_dump(mode="json"))
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in (sorted(obj, key=str) if isinstance(obj, (set, frozenset)) else obj)]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return jsonable(obj.item())
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy arrays
        return jsonable(obj.tolist())
    return str(obj)  # anything else by its text, as `json.dumps(default=str)` would


def emit(result: Any, as_json: bool, human: Optional[Callable[[], None]] = None) -> None:
    """Print a command's result: one JSON document on stdout with `--json`, else `human()`.

    Why here: one place decides the machine format, so every command's JSON is
    strict (parses with any JSON reader) and stdout never mixes it with text.
    """
    if as_json:
        sys.stdout.write(json.dumps(jsonable(result), indent=2, ensure_ascii=False, allow_nan=False) + "\n")
        sys.stdout.flush()
    elif human is not None:
        human()


def _console(stderr: bool = False):
    """A rich console; pass `stderr=as_json` for messages, so that stdout holds only the JSON."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _open(workspace: Optional[Path]):
    from governance.workspace import Workspace, resolve_root

    return Workspace.open(resolve_root(workspace))


def _token(token: Optional[str]) -> Optional[str]:
    return token or os.environ.get("PRIVGOV_TOKEN")
