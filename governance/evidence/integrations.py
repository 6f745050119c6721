"""Where a workspace sends its evidence outside itself: OpenLineage and MLflow settings.

Why a file of its own (``<root>/integrations.json``, 0600, written atomically):
both integrations are off until an admin turns them on, and the settings say
where events and run records go, so they are kept apart from the key provider
settings in ``workspace.json`` and every change is audited by the CLI that
makes it. No secret is stored here: an HTTP endpoint that needs a key names the
environment variable holding it.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from governance.storage.atomic_write import write_private
from privacy.errors import InputError, WorkspaceError

FILE_NAME = "integrations.json"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LineageSettings(_Strict):
    """OpenLineage transport: a file of JSON lines, or an HTTP endpoint (`/api/v1/lineage`)."""

    transport: Literal["file", "http"]
    target: str = Field(min_length=1, max_length=2000)  # absolute file path, or the endpoint's base URL
    namespace: str = Field(default="privgov", min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    api_key_env: str | None = None  # HTTP only: the environment variable holding a bearer token
    timeout_s: float = Field(default=5.0, gt=0, le=60)

    @field_validator("api_key_env")
    @classmethod
    def _env(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError("expected an environment variable name (letters, digits, _)")
        return v


class TrackingSettings(_Strict):
    """MLflow tracking: where each training run's parameters, metrics, ε and card are logged."""

    uri: str = Field(min_length=1, max_length=2000)
    experiment: str = Field(default="privgov", min_length=1, max_length=200)


class Integrations(_Strict):
    lineage: LineageSettings | None = None
    tracking: TrackingSettings | None = None


def check_http_url(url: str) -> str:
    """An http(s) URL without credentials in it (they would land in the settings and in error messages)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"--url {url!r}: expected an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise InputError("--url: credentials in the URL are not stored; put the key in an environment variable "
                         "and pass --api-key-env NAME")
    return url


def check_tracking_uri(uri: str) -> str:
    """`file:` or `sqlite:` stores, or an http(s) tracking server without credentials in the URI."""
    parts = urlsplit(uri)
    if parts.scheme in ("file", "sqlite"):
        return uri
    if parts.scheme in ("http", "https") and parts.hostname and not (parts.username or parts.password):
        return uri
    raise InputError(f"--uri {uri!r}: expected a file: or sqlite: URI (a local MLflow store) or an http(s) tracking server "
                     "URL without credentials")


def lineage_settings(*, file: Path | None, url: str | None, namespace: str = "privgov",
                     api_key_env: str | None = None, timeout_s: float = 5.0) -> LineageSettings:
    """Checked settings from `privgov lineage configure` options: exactly one of a file or a URL."""
    if (file is None) == (url is None):
        raise InputError("lineage configure: give exactly one of --file PATH or --url URL")
    if file is not None:
        target = Path(file).expanduser().resolve()
        if not target.parent.is_dir():
            raise InputError(f"--file {file}: its directory does not exist")
        if target.is_dir():
            raise InputError(f"--file {file}: is a directory; expected a file to append events to")
        if api_key_env:
            raise InputError("--api-key-env applies to --url only")
        kind, where = "file", str(target)
    else:
        kind, where = "http", check_http_url(str(url))
    try:
        return LineageSettings(transport=kind, target=where, namespace=namespace, api_key_env=api_key_env,
                               timeout_s=timeout_s)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(f"lineage configure: --{'-'.join(str(p) for p in first['loc'])}: {first['msg']}") from None


def path_of(root: Path) -> Path:
    return Path(root) / FILE_NAME


def load(root: Path) -> Integrations:
    """The workspace's integration settings; none configured is the default (everything off)."""
    path = path_of(root)
    if not path.exists():
        return Integrations()
    try:
        return Integrations.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WorkspaceError(f"{path}: unreadable integration settings ({exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise WorkspaceError(f"{path}: `{where}`: {first.get('msg')}") from None


def save(root: Path, settings: Integrations) -> None:
    write_private(path_of(root), (settings.model_dump_json(indent=2, exclude_none=True) + "\n").encode("utf-8"))
