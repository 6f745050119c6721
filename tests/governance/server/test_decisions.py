"""`POST /v1/decisions` on a live server: the CLI's decision, audited under the token's principal."""
from __future__ import annotations

from tests.governance.server.conftest import DATASET, UNKNOWN, events_after, head


def _ask(live, who, **body):
    with live.client(who) as c:
        return c.post("/v1/decisions", json=body)


def test_allow_carries_obligations_and_is_audited(live) -> None:
    before = head(live.ws)
    r = _ask(live, "ana", action="read_masked", dataset=DATASET, purpose="quality-review")
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["principal"], out["decision"], out["allowed"], out["rule"]) == (
        "ana", "allow", True, "analyst-quality-review")
    assert out["obligations"]["column_masks"] == {"email": "drop", "phone": "drop", "patient_id": "hash",
                                                  "zip": "partial"}
    [ev] = [e for e in events_after(live.ws, before) if e.action == "read_masked"]
    assert (ev.principal, ev.decision, ev.resource, ev.purpose) == ("ana", "allow", DATASET, "quality-review")
    assert ev.details.get("check_only") is True


def test_wrong_purpose_is_a_deny_answered_and_audited(live) -> None:
    before = head(live.ws)
    r = _ask(live, "ana", action="read_masked", dataset=DATASET, purpose="marketing")
    assert r.status_code == 200 and r.json()["allowed"] is False and r.json()["decision"] == "deny"
    denies = [e for e in events_after(live.ws, before) if e.decision == "deny"]
    assert [(e.principal, e.action, e.purpose) for e in denies] == [("ana", "read_masked", "marketing")]


def test_unknown_and_forbidden_dataset_answers_are_identical(live) -> None:
    """mallory (contractor) is denied PHI by an explicit rule; `no-such` does not exist. Same bytes,
    once the dataset name the caller sent is the same."""
    forbidden = _ask(live, "mallory", action="read", dataset=DATASET, purpose="x")
    unknown = _ask(live, "mallory", action="read", dataset=UNKNOWN, purpose="x")
    assert forbidden.status_code == unknown.status_code == 200
    assert forbidden.content.replace(DATASET.encode(), UNKNOWN.encode()) == unknown.content


def test_principal_cannot_be_chosen_in_the_body(live) -> None:
    r = _ask(live, "ana", action="read", dataset=DATASET, purpose="x", principal="admin")
    assert r.status_code == 422 and "principal" in r.json()["error"]["message"]


def test_bad_body_is_422_naming_the_field_without_leaking(live) -> None:
    r = _ask(live, "ana", action="fly", dataset=DATASET, purpose="x")
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["message"].startswith("action:") and [f["field"] for f in err["fields"]] == ["action"]
    assert "Traceback" not in r.text and "/work" not in r.text and "site-packages" not in r.text
    with live.client("ana") as c:
        r = c.post("/v1/decisions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "Traceback" not in r.text


def test_concurrent_decisions_keep_one_verifiable_chain(live) -> None:
    """Requests run in uvicorn's thread pool: audit appends from many at once must still form one
    hash chain, every decision recorded once under its own principal."""
    from concurrent.futures import ThreadPoolExecutor

    from governance.api import verify_audit

    who = ["ana", "dora", "demo", "admin"] * 4
    before = head(live.ws)
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda w: _ask(live, w, action="read_masked", dataset=DATASET,
                                             purpose="quality-review").status_code, who))
    assert codes == [200] * len(who)
    decided = sorted(e.principal for e in events_after(live.ws, before) if e.action == "read_masked")
    assert decided == sorted(["admin", "ana", "demo-ml-engineer", "dora"] * 4)
    assert verify_audit(live.ws).ok
