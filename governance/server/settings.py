"""The service's limits, as one validated object (`privgov serve` options fill it).

Why a pydantic model: the limits travel from the CLI to every uvicorn worker
through one environment variable (`PRIVGOV_SERVER_SETTINGS`, JSON), and a bad
value must be refused with the field named before the port is opened.
"""
from __future__ import annotations

import json
import os

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from privacy.errors import InputError

SETTINGS_ENV = "PRIVGOV_SERVER_SETTINGS"
WORKSPACE_ENV = "PRIVGOV_SERVER_WORKSPACE"


class ServerSettings(BaseModel):
    """Limits of one server process (each uvicorn worker enforces them on its own)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_body_bytes: int = Field(default=1_048_576, ge=1, description="Largest request body accepted; a larger "
                                "one is refused with 413 before it is read whole.", examples=[1_048_576])
    rate_per_second: float = Field(default=20.0, gt=0, description="Sustained requests per second allowed per "
                                   "API token (token bucket keyed on the token's public id).", examples=[20.0])
    rate_burst: int = Field(default=40, ge=1, description="Requests a token may send at once before the "
                            "sustained rate applies; beyond it: 429 with Retry-After.", examples=[40])
    auth_failures_per_minute: float = Field(default=30.0, gt=0, description="Failed authentications allowed "
                                            "per client address per minute (they cost a scrypt hash each).",
                                            examples=[30.0])
    data_dir: str | None = Field(default=None, description="Workspace directory served (default: the "
                                 "`--workspace` of `privgov serve`).", examples=["/srv/privgov"])

    run_data_dir: str | None = Field(default=None, description="Directory the files a pipeline submitted to "
                                     "`POST /v1/runs` may name must lie in (`privgov serve --data-dir`); without "
                                     "it only `source.sample` pipelines run.", examples=["/srv/privgov-data"])

    def to_env(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_env(cls) -> "ServerSettings":
        """The settings `privgov serve` handed to this worker process."""
        raw = os.environ.get(SETTINGS_ENV)
        if not raw:
            return cls()
        try:
            return cls.model_validate(json.loads(raw))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            raise InputError(f"${SETTINGS_ENV}: {where}: {err['msg']}") from None
        except ValueError:
            raise InputError(f"${SETTINGS_ENV}: expected the JSON of ServerSettings") from None
