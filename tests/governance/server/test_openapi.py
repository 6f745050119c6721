"""The checked-in contract (docs/openapi.json) is what the app serves: regenerate with
`python -m governance.server.openapi` (or `make docs`) after changing a route."""
from __future__ import annotations

import json

from tests.conftest import REPO


def test_openapi_schema_has_not_drifted() -> None:
    from governance.server.openapi import render

    checked_in = (REPO / "docs" / "openapi.json").read_text(encoding="utf-8")
    assert json.loads(render()) == json.loads(checked_in), (
        "docs/openapi.json is out of date: run `python -m governance.server.openapi`")


def test_every_route_but_healthz_requires_the_bearer_token() -> None:
    from governance.server.openapi import schema

    paths = schema()["paths"]
    for path, ops in paths.items():
        for method, op in ops.items():
            needs = [next(iter(s)) for s in op.get("security", [])]
            assert needs == ([] if path == "/healthz" else ["HTTPBearer"]), (method, path)
