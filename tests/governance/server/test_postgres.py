"""The live server on a PostgreSQL workspace (`privgov init --db-url`): decisions and a masked
download, audited in the shared database exactly as on SQLite."""
from __future__ import annotations

import pytest

from tests.governance.server.conftest import (
    DATASET, PLAIN, Live, build, events_after, head, same_denial, start_server, stop_server,
)


@pytest.fixture(scope="module")
def live_pg(pg_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("server-pg") / "ws"
    ws, tokens, data_v, quarantine_v = build(root, db_url=pg_server.url)
    url, proc = start_server(root)  # the password reaches it through PRIVGOV_DB_PASSWORD, as in a deployment
    yield Live(url, tokens, ws, root, data_v, quarantine_v, proc)
    stop_server(proc)
    ws.engine.dispose()


def test_decisions_and_download_on_postgres(live_pg) -> None:
    assert live_pg.ws.engine.dialect.name == "postgresql"
    before = head(live_pg.ws)
    body = {"action": "read_masked", "dataset": DATASET, "purpose": "quality-review"}
    with live_pg.client("ana") as c:
        allow = c.post("/v1/decisions", json=body).json()
        deny = c.post("/v1/decisions", json={**body, "purpose": "marketing"}).json()
        r = c.get(f"/v1/datasets/{DATASET}/versions/{live_pg.data_version}/download",
                  params={"purpose": "quality-review"})
    with live_pg.client("mallory") as c:
        same_denial(c, "/v1/datasets/{}/versions")
    assert allow["allowed"] is True and deny["allowed"] is False
    assert r.status_code == 200 and not any(v.encode() in r.content for v in PLAIN["email"])
    assert not any(v.encode() in r.content for v in PLAIN["patient_id"])
    got = [(e.principal, e.action, e.decision, e.purpose) for e in events_after(live_pg.ws, before)]
    assert ("ana", "read_masked", "allow", "quality-review") in got
    assert ("ana", "read_masked", "deny", "marketing") in got
    assert ("ana", "export", "info", "quality-review") in got
    assert [g for g in got if g[0] == "mallory"] == [("mallory", "list_versions", "deny", None)] * 2
