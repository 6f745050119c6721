"""Token buckets in memory, one per key (a token's public id, or a client address).

Why keyed on the token's public id and never on the token: the secret must not
sit in memory longer than the request, and a key that is not secret cannot leak
one. Why in memory: one process decides alone, without a round trip per request;
with `--workers N` each worker has its own buckets, so the effective limit is N
times the configured one (docs/server.md).
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """`rate` requests per second sustained, `burst` at once, per key."""

    def __init__(self, rate: float, burst: int, *, max_keys: int = 100_000) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def _refill(self, key: str, now: float) -> _Bucket:
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= self.max_keys:  # bound memory: forget full (idle) buckets first
                self._forget_idle(now)
            b = self._buckets[key] = _Bucket(self.burst, now)
        else:
            b.tokens = min(self.burst, b.tokens + (now - b.stamp) * self.rate)
            b.stamp = now
        return b

    def _forget_idle(self, now: float) -> None:
        idle = [k for k, b in self._buckets.items() if b.tokens + (now - b.stamp) * self.rate >= self.burst]
        for k in idle:
            del self._buckets[k]
        if len(self._buckets) >= self.max_keys:  # all busy: drop the oldest
            for k in sorted(self._buckets, key=lambda k: self._buckets[k].stamp)[: len(self._buckets) // 2]:
                del self._buckets[k]

    def take(self, key: str) -> float:
        """Spend one request for `key`: 0.0 when allowed, else the seconds until one is available."""
        now = time.monotonic()
        with self._lock:
            b = self._refill(key, now)
            if b.tokens >= 1.0:
                b.tokens -= 1.0
                return 0.0
            return (1.0 - b.tokens) / self.rate

    def wait_needed(self, key: str) -> float:
        """Seconds until `key` may spend again (0.0 now), without spending."""
        now = time.monotonic()
        with self._lock:
            b = self._refill(key, now)
            return 0.0 if b.tokens >= 1.0 else (1.0 - b.tokens) / self.rate


def retry_after(seconds: float) -> str:
    """The Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
