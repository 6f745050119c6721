"""The Bearer token on a live server: refusals are 401 and audited as `unauthenticated`, exactly as
the CLI audits them; the token never reaches the log; limits answer 413 and 429."""
from __future__ import annotations

import httpx
import pytest

from tests.governance.server.conftest import BURST, DATASET, events_after, head

BODY = {"action": "read_masked", "dataset": DATASET, "purpose": "quality-review"}


def _unauthenticated(live, before):
    return [e for e in events_after(live.ws, before) if e.principal == "unauthenticated"]


def test_healthz_needs_no_token_and_says_nothing(live) -> None:
    r = httpx.get(f"{live.url}/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert "server" not in r.headers  # no uvicorn banner either


@pytest.mark.parametrize("header", [None, "Bearer", "Basic YWRtaW46YWRtaW4=", "Bearer pgv_nonsense"])
def test_missing_or_malformed_token_is_401_and_audited(live, header) -> None:
    before = head(live.ws)
    headers = {"Authorization": header} if header else {}
    r = httpx.post(f"{live.url}/v1/decisions", json=BODY, headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"]["type"] == "unauthenticated"
    [ev] = _unauthenticated(live, before)  # recorded with what was asked, as the CLI's `check` records it
    assert (ev.action, ev.decision, ev.resource, ev.purpose) == ("read_masked", "deny", DATASET, "quality-review")


@pytest.mark.parametrize("who, why", [("gone", "revoked"), ("late", "expired")])
def test_revoked_and_expired_tokens_are_401_and_audited(live, who, why) -> None:
    before = head(live.ws)
    with live.client(who) as c:
        r = c.get(f"/v1/datasets/{DATASET}/versions/{live.data_version}/download",
                  params={"purpose": "quality-review"})
    assert r.status_code == 401 and why in r.json()["error"]["message"]
    [ev] = _unauthenticated(live, before)
    assert (ev.action, ev.decision, ev.resource, ev.purpose) == ("download", "deny", DATASET, "quality-review")
    assert why in ev.reason
    assert not [e for e in events_after(live.ws, before) if e.principal == who]  # nothing ran as them
    # the secret never reaches the log, whatever field it could have landed in
    secret = live.tokens[who].rsplit("_", 1)[1]
    assert not any(secret in str(v) for e in events_after(live.ws, before) for v in vars(e).values())


def test_every_route_but_healthz_refuses_without_token(live) -> None:
    routes = [("GET", "/v1/datasets"), ("GET", f"/v1/datasets/{DATASET}/versions"),
              ("GET", f"/v1/budget/{DATASET}"), ("GET", "/v1/audit/export"), ("POST", "/v1/audit/verify"),
              ("GET", "/v1/report")]
    for method, path in routes:
        r = httpx.request(method, f"{live.url}{path}")
        assert r.status_code == 401, (method, path, r.status_code)
    assert httpx.get(f"{live.url}/docs").status_code == 404  # no unauthenticated docs or schema
    assert httpx.get(f"{live.url}/openapi.json").status_code == 404


def test_oversize_body_is_413(live) -> None:
    """The fixture's server accepts 4096 bytes; the check happens before the body is parsed."""
    with live.client("ana") as c:
        r = c.post("/v1/decisions", json={**BODY, "purpose": "x" * 8000})
        assert r.status_code == 413
        chunked = c.post("/v1/decisions", content=iter([b'{"action": "read", "purpose": "', b"y" * 5000, b'"}']),
                         headers={"content-type": "application/json"})
        assert chunked.status_code == 413


def test_rate_limit_per_token_is_429_with_retry_after(live) -> None:
    """`flood` spends its own bucket (conftest RATE and BURST); other tokens are not affected."""
    codes = []
    with live.client("flood") as c:
        for _ in range(4 * BURST):
            r = c.post("/v1/decisions", json=BODY)
            codes.append(r.status_code)
            if r.status_code == 429:
                assert int(r.headers["retry-after"]) >= 1
                assert r.json()["error"]["type"] == "rate_limited"
                break
    assert codes[-1] == 429 and codes.count(200) >= BURST - 1
    with live.client("ana") as c:
        assert c.post("/v1/decisions", json=BODY).status_code == 200


def test_a_refusal_with_oversized_claims_is_still_audited(live) -> None:
    """The audit columns are bounded (purpose 200 characters); what the caller claims is cut to fit, so
    the refusal is recorded rather than failing (PostgreSQL enforces the bound: tests/.../test_postgres.py)."""
    before = head(live.ws)
    r = httpx.get(f"{live.url}/v1/datasets/{'d' * 300}/versions/1/download", params={"purpose": "p" * 1000})
    assert r.status_code == 401
    [ev] = _unauthenticated(live, before)
    assert ev.action == "download" and len(ev.purpose) <= 200 and len(ev.resource) <= 500
