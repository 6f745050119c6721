"""Evidence over HTTP: budget for whoever may see the dataset, the audit log and the report for admin
and auditor only - each read audited under the token's principal."""
from __future__ import annotations

import json

from tests.governance.server.conftest import DATASET, events_after, head, same_denial


def test_budget_shows_the_ledger_to_those_who_see_the_dataset(live) -> None:
    with live.client("ana") as c:
        r = c.get(f"/v1/budget/{DATASET}")
    assert r.status_code == 200, r.text
    st = r.json()["status"]
    assert (st["epsilon_cap"], st["delta_cap"], st["unit"]) == (3.0, 1e-5, "patient_id")
    before = head(live.ws)
    with live.client("mallory") as c:
        same_denial(c, "/v1/budget/{}")
    assert [(e.principal, e.action, e.decision) for e in events_after(live.ws, before)] == [
        ("mallory", "budget_show", "deny")] * 2


def test_audit_export_is_for_admin_and_auditor_and_verifies(live, tmp_path) -> None:
    from governance.api import verify_audit_file

    before = head(live.ws)
    with live.client("ana") as c:
        denied = c.get("/v1/audit/export")
    assert denied.status_code == 403 and "auditor" in denied.json()["error"]["message"]
    with live.client("audrey") as c:
        r = c.get("/v1/audit/export")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert lines[0]["type"] == "header" and any(x["type"] == "event" for x in lines)
    extract = tmp_path / "audit.jsonl"
    extract.write_bytes(r.content)
    assert verify_audit_file(extract).ok  # the extract verifies anywhere, as the CLI's does
    events = [(e.principal, e.action, e.decision) for e in events_after(live.ws, before)]
    assert ("ana", "audit_export", "deny") in events and ("audrey", "audit_export", "allow") in events
    with live.client("audrey") as c:
        bad = c.get("/v1/audit/export", params={"since": "yesterday"})
    assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("since:")


def test_audit_verify_reports_the_chain(live) -> None:
    from governance.evidence.chain import public_key_bytes
    from governance.storage.keyring import public_signing_key

    kept = public_key_bytes(public_signing_key(live.root)).hex()  # the key an auditor took at set-up
    with live.client("admin") as c:
        ok = c.post("/v1/audit/verify", json={"trusted_key": kept})
        wrong_key = c.post("/v1/audit/verify", json={"trusted_key": "00" * 32})
        not_hex = c.post("/v1/audit/verify", json={"trusted_key": "/etc/passwd"})
    assert ok.status_code == 200 and ok.json()["ok"] is True and ok.json()["events"] > 0
    assert wrong_key.status_code == 200 and wrong_key.json()["ok"] is False and wrong_key.json()["problems"]
    assert not_hex.status_code == 422 and not_hex.json()["error"]["fields"][0]["field"] == "trusted_key"
    with live.client("dora") as c:
        assert c.post("/v1/audit/verify").status_code == 403


def test_report_is_html_for_auditors_only(live) -> None:
    with live.client("audrey") as c:
        r = c.get("/v1/report", params={"dataset": DATASET})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text and DATASET in r.text
    with live.client("ana") as c:
        assert c.get("/v1/report").status_code == 403
