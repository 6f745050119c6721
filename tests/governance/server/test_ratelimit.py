"""The token buckets: burst then the sustained rate, Retry-After rounded up, memory bounded, and keyed on
the token's public id - never on the secret."""
from __future__ import annotations

import pytest

from governance.server import ratelimit
from governance.server.ratelimit import RateLimiter, retry_after


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    return now


def test_burst_then_rate(clock) -> None:
    lim = RateLimiter(rate=2.0, burst=3)
    assert [lim.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert lim.take("a") == pytest.approx(0.5)  # one token back after 1/rate seconds
    assert lim.take("b") == 0.0  # another key has its own bucket
    clock[0] += 0.5
    assert lim.take("a") == 0.0 and lim.take("a") > 0
    clock[0] += 100
    assert [lim.take("a") for _ in range(4)][-1] > 0  # refills to the burst, not beyond
    assert retry_after(0.01) == "1" and retry_after(2.2) == "3"


def test_wait_needed_does_not_spend(clock) -> None:
    lim = RateLimiter(rate=1.0, burst=1)
    assert lim.wait_needed("a") == 0.0 and lim.wait_needed("a") == 0.0
    assert lim.take("a") == 0.0 and lim.wait_needed("a") == pytest.approx(1.0)


def test_memory_is_bounded(clock) -> None:
    lim = RateLimiter(rate=1.0, burst=5, max_keys=100)
    for i in range(1000):
        lim.take(f"k{i}")
        clock[0] += 0.001
    assert len(lim._buckets) <= 100


def test_buckets_are_keyed_on_the_public_id(live) -> None:
    """An app in process on the live workspace: after a request, the only key is `token:<id>`."""
    from fastapi.testclient import TestClient

    from governance.access.identity import token_id_of
    from governance.server.app import ServerSettings, create_app

    app = create_app(live.root, ServerSettings())
    token = live.tokens["dora"]
    with TestClient(app) as c:
        r = c.post("/v1/decisions", json={"action": "validate", "dataset": "clinic-visits", "purpose": "pipeline"},
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["allowed"] is True
    keys = list(app.state.rate_limiter._buckets)
    assert keys == [f"token:{token_id_of(token)}"]
    assert not any(token.rsplit("_", 1)[1] in k for k in keys)
