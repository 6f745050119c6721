"""Write the service's OpenAPI schema to docs/openapi.json: `python -m governance.server.openapi`.

Why checked in: other teams build clients against the contract, and a route
change must show up in review as a change to this file (tests/governance/server/
test_openapi.py fails when `create_app(...).openapi()` differs from it).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def schema() -> dict[str, Any]:
    """The schema of an app built for no particular workspace (the schema does not depend on one)."""
    from governance.server.app import create_app
    from governance.server.settings import ServerSettings

    return create_app(Path("."), ServerSettings()).openapi()


def render() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else DEFAULT_OUT
    out.write_text(render(), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
