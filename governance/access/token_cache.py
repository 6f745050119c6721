"""Process-local memory of tokens whose secret already matched its stored scrypt hash.

Why: a token's secret is stored only as a slow scrypt hash (tens of ms and
16 MiB per check, on purpose: it protects a stolen database). Checking it on
every request caps a decision service at a few dozen requests per second per
core. What the slow hash establishes - "this secret belongs to this stored
token" - does not change while the token row keeps the same hash, so it is
remembered here. Only that fact is cached: whether the token is revoked or
expired, and whose it is, is still read from the database on every call
(:func:`governance.access.identity.authenticate`), so a revocation takes effect
at once in every process.

What is held: a map from HMAC-SHA256(key, token) to the stored scrypt hash the
token matched. The key is 32 random bytes made when the process starts and is
never written anywhere, so the map holds no token, nothing derived from one
that can be checked without this process's memory, and nothing valid in
another process. A hit counts only while the row's stored hash is still the
one that matched (a row whose hash was replaced is checked the slow way).
Failed checks are never remembered: guessing stays exactly as slow as before.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict

DEFAULT_SIZE = 4096


class VerifiedTokens:
    """Bounded (least recently used out) set of verified tokens, safe to share between threads."""

    def __init__(self, max_entries: int = DEFAULT_SIZE) -> None:
        self._key = secrets.token_bytes(32)
        self._max = max_entries
        self._entries: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def _mac(self, token: str) -> bytes:
        return hmac.new(self._key, token.encode("utf-8"), hashlib.sha256).digest()

    def matches(self, token: str, stored_hash: bytes) -> bool:
        """Whether `token` was verified against exactly `stored_hash` before (in this process)."""
        mac = self._mac(token)
        with self._lock:
            known = self._entries.get(mac)
            if known is not None:
                self._entries.move_to_end(mac)
        return known is not None and hmac.compare_digest(known, stored_hash)

    def remember(self, token: str, stored_hash: bytes) -> None:
        """Record that `token`'s secret matched `stored_hash` (call only after a successful slow check)."""
        mac = self._mac(token)
        with self._lock:
            self._entries[mac] = bytes(stored_hash)
            self._entries.move_to_end(mac)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


VERIFIED = VerifiedTokens()
