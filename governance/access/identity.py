"""Principals (people, service accounts) with roles, and their API tokens.

Why: a policy decides by role, so something must say who a caller is and which
roles they hold. Tokens look like ``pgv_<id>_<secret>``: the id makes lookup a
single indexed query, the secret is stored only as a slow scrypt hash (with the
parameters recorded per row, so they can be raised later without breaking old
tokens) and compared in constant time. A token is shown once, at issue.

``authenticate`` says *why* it refused (malformed / unknown / expired / revoked)
in its :class:`AccessDenied` message, never echoing the token itself.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.errors import AccessDenied, InputError
from governance.access.token_cache import VERIFIED
from governance.storage.principals import ApiToken, Principal
from governance.storage.store import utcnow

KINDS = ("person", "service")
TOKEN_PREFIX = "pgv"
_TOKEN_RE = re.compile(r"^pgv_([0-9a-f]{16})_([0-9a-f]{64})$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,199}$")
_ROLE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

# scrypt cost: n=2**14, r=8, p=1 is ~16 MiB and tens of ms per check. The secret
# has 256 random bits, so the slow hash is defence in depth for a stolen DB.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
# How stale ``api_tokens.last_used_at`` may be (the access review reads it in days).
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def _hash_secret(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret.encode("ascii"), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)


def _get_principal(session: Session, name: str) -> Principal:
    principal = session.scalar(select(Principal).where(Principal.name == name))
    if principal is None:
        raise InputError(f"principal {name!r} does not exist (add it with `privgov principal add`)")
    return principal


def _check_roles(roles: list[str] | tuple[str, ...]) -> list[str]:
    out = list(dict.fromkeys(roles))
    for role in out:
        if not isinstance(role, str) or not _ROLE_RE.match(role):
            raise InputError(f"role {role!r}: expected letters, digits, '.', '_' or '-'")
    return out


def add_principal(session: Session, name: str, kind: str = "person", roles: list[str] | tuple[str, ...] = ()) -> Principal:
    """Create a person or service account holding ``roles``; names are unique."""
    if not _NAME_RE.match(name):
        raise InputError(f"principal name {name!r}: expected letters, digits, '.', '_', '@' or '-'")
    if kind not in KINDS:
        raise InputError(f"principal kind {kind!r}: expected one of {', '.join(KINDS)}")
    if session.scalar(select(Principal.id).where(Principal.name == name)) is not None:
        raise InputError(f"principal {name!r} already exists")
    principal = Principal(name=name, kind=kind, roles=_check_roles(roles), created_at=utcnow())
    session.add(principal)
    session.flush()
    return principal


def set_roles(session: Session, name: str, roles: list[str] | tuple[str, ...]) -> Principal:
    """Replace a principal's roles (the policy decides what each role may do)."""
    principal = _get_principal(session, name)
    principal.roles = _check_roles(roles)
    session.flush()
    return principal


def list_principals(session: Session, include_revoked: bool = True) -> list[Principal]:
    query = select(Principal).order_by(Principal.name)
    if not include_revoked:
        query = query.where(Principal.revoked_at.is_(None))
    return list(session.scalars(query))


def list_tokens(session: Session, name: str | None = None) -> list[ApiToken]:
    """Token rows (ids, dates; never secrets), optionally for one principal."""
    query = select(ApiToken).order_by(ApiToken.id)
    if name is not None:
        query = query.where(ApiToken.principal_id == _get_principal(session, name).id)
    return list(session.scalars(query))


def issue_token(session: Session, name: str, ttl_days: int | None = 90) -> str:
    """A new token for ``name``. Returned once; only its scrypt hash is stored.
    ``ttl_days=None`` means no expiry (prefer short-lived tokens)."""
    principal = _get_principal(session, name)
    if principal.revoked_at is not None:
        raise InputError(f"principal {name!r} is revoked; cannot issue tokens")
    if ttl_days is not None and ttl_days <= 0:
        raise InputError(f"ttl_days: expected a positive number of days or None, got {ttl_days}")
    token_id = secrets.token_hex(8)
    secret = secrets.token_hex(32)
    salt = secrets.token_bytes(16)
    now = utcnow()
    row = ApiToken(
        token_id=token_id, principal_id=principal.id,
        secret_hash=_hash_secret(secret, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P), salt=salt,
        scrypt_n=SCRYPT_N, scrypt_r=SCRYPT_R, scrypt_p=SCRYPT_P, created_at=now,
        expires_at=None if ttl_days is None else now + dt.timedelta(days=ttl_days),
    )
    session.add(row)
    session.flush()
    return f"{TOKEN_PREFIX}_{token_id}_{secret}"


def token_id_of(token: str) -> str | None:
    """The public id part of a token (for revocation, logs), or None if malformed."""
    m = _TOKEN_RE.match(token.strip()) if isinstance(token, str) else None
    return m.group(1) if m else None


def authenticate(session: Session, token: str, now: dt.datetime | None = None) -> Principal:
    """The principal a token belongs to; records ``last_used_at`` (to the minute).

    Raises :class:`AccessDenied` saying malformed / unknown / revoked / expired.
    The hash is checked before revocation or expiry is revealed. A secret this
    process has already matched against the row's current hash is not hashed
    again (:mod:`governance.access.token_cache`); revocation, expiry and the
    principal are read from the database on every call all the same.

    ``last_used_at`` is written when it is older than :data:`LAST_USED_RESOLUTION`:
    writing it on every call made each request a write transaction, and every
    request with one token queue on that row's lock."""
    m = _TOKEN_RE.match(token.strip()) if isinstance(token, str) else None
    if m is None:
        raise AccessDenied("token malformed: expected pgv_<16 hex id>_<64 hex secret>")
    token_id, secret = m.group(1), m.group(2)
    row = session.scalar(select(ApiToken).where(ApiToken.token_id == token_id))
    if row is None:
        # Spend the same time as a real check so unknown ids are not cheaper to probe.
        _hash_secret(secret, b"\0" * 16, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        raise AccessDenied(f"token unknown (id {token_id})")
    canonical = f"{TOKEN_PREFIX}_{token_id}_{secret}"
    if not VERIFIED.matches(canonical, row.secret_hash):
        computed = _hash_secret(secret, row.salt, row.scrypt_n, row.scrypt_r, row.scrypt_p)
        if not hmac.compare_digest(computed, row.secret_hash):
            raise AccessDenied(f"token unknown (id {token_id}: secret does not match)")
        VERIFIED.remember(canonical, row.secret_hash)
    principal = session.get(Principal, row.principal_id)
    now = now or utcnow()
    if row.revoked_at is not None:
        raise AccessDenied(f"token revoked (id {token_id}, at {row.revoked_at.isoformat()})")
    if principal is None or principal.revoked_at is not None:
        raise AccessDenied(f"token revoked: principal {principal.name if principal else '?'!r} is revoked")
    if row.expires_at is not None and now >= row.expires_at:
        raise AccessDenied(f"token expired (id {token_id}, at {row.expires_at.isoformat()})")
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now
        session.flush()
    return principal


def revoke_token(session: Session, token_or_id: str) -> None:
    """Revoke one token, given the full token or its 16-hex id."""
    token_id = token_id_of(token_or_id) or token_or_id.strip()
    row = session.scalar(select(ApiToken).where(ApiToken.token_id == token_id))
    if row is None:
        raise InputError(f"token id {token_id!r} does not exist")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()


def revoke_principal(session: Session, name: str) -> None:
    """Revoke a principal and every token it holds (rows are kept for the audit trail)."""
    principal = _get_principal(session, name)
    now = utcnow()
    if principal.revoked_at is None:
        principal.revoked_at = now
    for row in session.scalars(select(ApiToken).where(ApiToken.principal_id == principal.id)):
        if row.revoked_at is None:
            row.revoked_at = now
    session.flush()
