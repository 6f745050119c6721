"""Identity: principals, roles, tokens (slow hash, expiry, revocation, reasons)."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from governance.access import identity
from governance.errors import AccessDenied, InputError
from governance.access.identity import (
    ApiToken,
    add_principal,
    authenticate,
    issue_token,
    list_principals,
    list_tokens,
    revoke_principal,
    revoke_token,
    set_roles,
    token_id_of,
)
from governance.storage.store import utcnow

DEFAULT_COST = (identity.SCRYPT_N, identity.SCRYPT_R)  # read before the autouse fixture lowers it


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch):
    """Low cost for speed; params are stored per token, so the real cost is tested separately."""
    monkeypatch.setattr(identity, "SCRYPT_N", 2**10)


@pytest.fixture()
def session(engine):
    with Session(engine) as s, s.begin():
        add_principal(s, "demo", roles=["ml-engineer", "data-engineer"])
        add_principal(s, "etl-bot", kind="service", roles=["data-engineer"])
    with Session(engine) as s:
        yield s


def test_add_and_list_principals(session):
    names = [(p.name, p.kind, p.roles) for p in list_principals(session)]
    assert names == [("demo", "person", ["ml-engineer", "data-engineer"]),
                     ("etl-bot", "service", ["data-engineer"])]


@pytest.mark.parametrize("name, kind, roles, fragment", [
    ("demo", "person", [], "already exists"),
    ("bad name", "person", [], "principal name"),
    ("x", "robot", [], "kind"),
    ("y", "person", ["no spaces"], "role"),
])
def test_bad_principals_are_refused(session, name, kind, roles, fragment):
    with pytest.raises(InputError, match=fragment):
        add_principal(session, name, kind=kind, roles=roles)


def test_token_round_trip_records_last_use(session):
    token = issue_token(session, "demo")
    assert token.startswith("pgv_") and token_id_of(token) == token.split("_")[1]
    row = session.query(ApiToken).one()
    assert row.last_used_at is None and row.expires_at is not None
    principal = authenticate(session, token)
    assert principal.name == "demo" and principal.roles == ["ml-engineer", "data-engineer"]
    assert row.last_used_at is not None


def test_secret_is_stored_only_as_a_scrypt_hash(session, engine, tmp_path):
    token = issue_token(session, "demo")
    session.commit()
    secret = token.split("_")[2]
    row = session.query(ApiToken).one()
    assert (row.scrypt_n, row.scrypt_r, row.scrypt_p) == (2**10, 8, 1) and len(row.salt) == 16
    if engine.dialect.name == "sqlite":
        raw = (tmp_path / "t.db").read_bytes() + (tmp_path / "t.db-wal").read_bytes()
    else:  # every column of every stored token row, as the server returns it
        with engine.connect() as conn:
            raw = "".join(conn.exec_driver_sql("SELECT row_to_json(t)::text FROM api_tokens t").scalars()).encode()
        assert row.token_id.encode() in raw  # the dump does hold the row
    assert secret.encode() not in raw and bytes.fromhex(secret) not in raw and secret.encode().hex().encode() not in raw


def test_recorded_params_survive_a_cost_change(session, monkeypatch):
    token = issue_token(session, "demo")
    monkeypatch.setattr(identity, "SCRYPT_N", 2**11)
    assert authenticate(session, token).name == "demo"
    newer = issue_token(session, "demo")
    assert authenticate(session, newer).name == "demo"
    assert sorted(t.scrypt_n for t in list_tokens(session, "demo")) == [2**10, 2**11]


@pytest.mark.parametrize("bad", ["", "pgv_", "Bearer xyz", "pgv_zz_00", "pgv_0123456789abcdef_" + "0" * 63])
def test_malformed_token(session, bad):
    with pytest.raises(AccessDenied, match="malformed"):
        authenticate(session, bad)


def test_unknown_token_id_and_wrong_secret(session):
    token = issue_token(session, "demo")
    with pytest.raises(AccessDenied, match="unknown"):
        authenticate(session, "pgv_0123456789abcdef_" + "0" * 64)
    tid = token_id_of(token)
    with pytest.raises(AccessDenied, match="unknown") as exc:
        authenticate(session, f"pgv_{tid}_" + "1" * 64)
    assert token.split("_")[2] not in str(exc.value)


def test_expired_token(session):
    token = issue_token(session, "demo", ttl_days=1)
    assert authenticate(session, token, now=utcnow() + dt.timedelta(hours=23)).name == "demo"
    with pytest.raises(AccessDenied, match="expired"):
        authenticate(session, token, now=utcnow() + dt.timedelta(days=1, minutes=1))


def test_token_without_expiry(session):
    token = issue_token(session, "demo", ttl_days=None)
    assert authenticate(session, token, now=utcnow() + dt.timedelta(days=3650)).name == "demo"


def test_revoked_token(session):
    keep, drop = issue_token(session, "demo"), issue_token(session, "demo")
    revoke_token(session, token_id_of(drop))
    with pytest.raises(AccessDenied, match="revoked"):
        authenticate(session, drop)
    assert authenticate(session, keep).name == "demo"


def test_revoked_principal_loses_every_token_and_cannot_get_new_ones(session):
    token = issue_token(session, "etl-bot")
    revoke_principal(session, "etl-bot")
    with pytest.raises(AccessDenied, match="revoked"):
        authenticate(session, token)
    with pytest.raises(InputError, match="revoked"):
        issue_token(session, "etl-bot")
    assert [p.name for p in list_principals(session, include_revoked=False)] == ["demo"]


def test_issue_for_unknown_principal_and_bad_ttl(session):
    with pytest.raises(InputError, match="does not exist"):
        issue_token(session, "ghost")
    with pytest.raises(InputError, match="ttl_days"):
        issue_token(session, "demo", ttl_days=0)


def test_set_roles(session):
    assert set_roles(session, "demo", ["analyst"]).roles == ["analyst"]


def test_default_scrypt_cost_is_a_slow_hash():
    assert DEFAULT_COST[0] >= 2**14 and DEFAULT_COST[1] >= 8


# --------------------------------------------------------------------------- verified-token cache
# Each call opens its own session, as every command and request does (authorize.authenticate).
def _auth(engine, token: str, now: dt.datetime | None = None) -> str:
    with Session(engine) as s, s.begin():
        return authenticate(s, token, now).name


@pytest.fixture()
def scrypt_calls(monkeypatch) -> list[int]:
    """Counts slow-hash computations (the real function still runs)."""
    calls: list[int] = []
    real = identity._hash_secret

    def counted(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(identity, "_hash_secret", counted)
    return calls


def _issue(engine, name: str = "demo", calls: list[int] | None = None) -> str:
    with Session(engine) as s, s.begin():
        token = issue_token(s, name)
    if calls is not None:
        calls.clear()  # issuing hashed the secret once; count authentication only
    return token


def test_a_verified_token_is_hashed_once_per_process(session, engine, scrypt_calls):
    token = _issue(engine, calls=scrypt_calls)
    assert [_auth(engine, token) for _ in range(5)] == ["demo"] * 5
    assert len(scrypt_calls) == 1


@pytest.mark.parametrize("how", ["token revoked", "principal revoked", "token expired"])
def test_a_cached_token_is_refused_at_once_when_revoked_or_expired(session, engine, scrypt_calls, how):
    """Revocation and expiry are read from the database on every call, cached or not: the
    admin's revocation (another session, as another process would) takes effect on the next call."""
    token = _issue(engine, calls=scrypt_calls)
    assert _auth(engine, token) == "demo" and _auth(engine, token) == "demo"
    with Session(engine) as admin, admin.begin():
        if how == "token revoked":
            revoke_token(admin, token)
        elif how == "principal revoked":
            revoke_principal(admin, "demo")
        else:
            admin.query(ApiToken).update({"expires_at": utcnow() - dt.timedelta(seconds=1)})
    with pytest.raises(AccessDenied, match=how.split()[-1]):
        _auth(engine, token)
    assert len(scrypt_calls) == 1  # refused from the cache's hit: the hash was not the gate


def test_a_cached_token_expires_on_time(session, engine):
    token = _issue(engine)
    with Session(engine) as s:
        expires = s.query(ApiToken.expires_at).scalar()
    assert _auth(engine, token, now=expires - dt.timedelta(seconds=1)) == "demo"
    with pytest.raises(AccessDenied, match="expired"):
        _auth(engine, token, now=expires)


def test_a_replaced_stored_hash_is_checked_the_slow_way(session, engine, scrypt_calls):
    """The cache vouches for (token, stored hash) together: once the row holds another hash
    (rotated, or rewritten by someone with the database), the old secret must match it again."""
    token = _issue(engine, calls=scrypt_calls)
    _auth(engine, token)
    with Session(engine) as s, s.begin():
        s.query(ApiToken).update({"secret_hash": b"\x00" * 32})
    with pytest.raises(AccessDenied, match="secret does not match"):
        _auth(engine, token)
    assert len(scrypt_calls) == 2


def test_wrong_secrets_are_never_remembered(session, engine, scrypt_calls):
    """Guessing stays as slow as before: every wrong secret pays the slow hash, every time."""
    token = _issue(engine, calls=scrypt_calls)
    wrong = token[:-1] + ("0" if token[-1] != "0" else "1")
    for _ in range(3):
        with pytest.raises(AccessDenied, match="secret does not match"):
            _auth(engine, wrong)
    assert len(scrypt_calls) == 3
    assert _auth(engine, token) == "demo" and len(scrypt_calls) == 4


def test_the_cache_holds_no_token_and_means_nothing_to_another_process(session, engine):
    from governance.access.token_cache import VERIFIED, VerifiedTokens

    token = _issue(engine)
    _auth(engine, token)
    secret = token.split("_")[2]
    with Session(engine) as s:
        stored = s.query(ApiToken.secret_hash).scalar()
    held = [k + v for k, v in VERIFIED._entries.items()]
    assert held and all(token.encode() not in b and secret.encode() not in b and bytes.fromhex(secret) not in b
                        for b in held)
    assert VERIFIED.matches(token, stored) and not VerifiedTokens().matches(token, stored)  # keyed per process


def test_last_use_is_recorded_to_the_minute(session, engine):
    token = _issue(engine)
    t0 = utcnow()

    def last_used():
        with Session(engine) as s:
            return s.query(ApiToken.last_used_at).scalar()

    _auth(engine, token, now=t0)
    assert last_used() == t0
    _auth(engine, token, now=t0 + dt.timedelta(seconds=59))
    assert last_used() == t0  # no write transaction per request
    _auth(engine, token, now=t0 + identity.LAST_USED_RESOLUTION)
    assert last_used() == t0 + identity.LAST_USED_RESOLUTION
