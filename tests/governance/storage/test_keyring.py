"""Keyring: providers, wrong credentials, rotation, retirement and crypto-shredding."""
from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from governance.errors import AccessDenied, InputError, IntegrityFailure, WorkspaceError
from governance.storage.key_providers import (
    EnvProvider,
    FileProvider,
    KeyProvider,
    PassphraseProvider,
    provider_from_args,
)
from governance.storage.keyring import DataKey, Keyring, KeyDestroyed
from governance.storage.store import Base

FAST = {"n": 2**10, "r": 8, "p": 1}  # cheap scrypt for tests; production default is n=2**15


@pytest.fixture()
def session(tmp_path: Path):
    engine = create_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    Base.metadata.create_all(engine, tables=[DataKey.__table__])
    with Session(engine) as s:
        yield s


def _b64key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_providers_satisfy_the_protocol(tmp_path: Path) -> None:
    for p in (PassphraseProvider("pw", **FAST), EnvProvider(), FileProvider(tmp_path / "k")):
        assert isinstance(p, KeyProvider)


def test_passphrase_provider_round_trip_and_metadata(tmp_path: Path, session: Session,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ring = Keyring.create(tmp_path, PassphraseProvider("correct horse", **FAST))
    kid, key = ring.new_data_key(session)
    meta = json.loads((tmp_path / "keys" / "keyring.json").read_text())
    params = meta["keks"]["kek-1"]["params"]
    assert meta["provider"] == {"kind": "passphrase"} and meta["active"] == "kek-1"
    assert set(params) == {"salt", "n", "r", "p"} and params["n"] == 2**10
    assert b"correct horse" not in (tmp_path / "keys" / "keyring.json").read_bytes()
    monkeypatch.setenv("PRIVGOV_PASSPHRASE", "correct horse")
    again = Keyring.open(tmp_path)  # provider rebuilt from keyring.json + env
    assert again.data_key(session, kid) == key
    assert again.hmac_key("clinic") == ring.hmac_key("clinic")


def test_wrong_passphrase_is_refused(tmp_path: Path, session: Session) -> None:
    ring = Keyring.create(tmp_path, PassphraseProvider("right", **FAST))
    kid, _ = ring.new_data_key(session)
    wrong = Keyring.open(tmp_path, PassphraseProvider("wrong"))
    with pytest.raises(AccessDenied, match="wrong passphrase"):
        wrong.data_key(session, kid)
    with pytest.raises(AccessDenied, match="wrong passphrase"):
        wrong.hmac_key("x")


def test_missing_passphrase_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Keyring.create(tmp_path, PassphraseProvider("pw", **FAST))
    monkeypatch.delenv("PRIVGOV_PASSPHRASE", raising=False)
    with pytest.raises(InputError, match="PRIVGOV_PASSPHRASE"):
        Keyring.open(tmp_path)


def test_env_provider(tmp_path: Path, session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEK", _b64key())
    ring = Keyring.create(tmp_path, EnvProvider("MY_KEK"))
    kid, key = ring.new_data_key(session)
    assert Keyring.open(tmp_path).data_key(session, kid) == key
    monkeypatch.setenv("MY_KEK", _b64key())
    with pytest.raises(AccessDenied, match="MY_KEK"):
        Keyring.open(tmp_path).data_key(session, kid)
    monkeypatch.delenv("MY_KEK")
    with pytest.raises(InputError, match="MY_KEK is not set"):
        Keyring.open(tmp_path).data_key(session, kid)
    monkeypatch.setenv("MY_KEK", "not base64!!")
    with pytest.raises(InputError, match="MY_KEK"):
        Keyring.open(tmp_path).data_key(session, kid)


def test_file_provider_and_mode_check(tmp_path: Path, session: Session) -> None:
    kek_file = tmp_path / "secret" / "kek.key"
    ring = Keyring.create(tmp_path / "ws", FileProvider(kek_file))
    assert stat.S_IMODE(kek_file.stat().st_mode) == 0o600
    kid, key = ring.new_data_key(session)
    assert Keyring.open(tmp_path / "ws").data_key(session, kid) == key
    os.chmod(kek_file, 0o644)
    with pytest.raises(InputError, match=rf"{kek_file}.*0644"):
        Keyring.open(tmp_path / "ws").data_key(session, kid)
    os.chmod(kek_file, 0o600)
    assert Keyring.open(tmp_path / "ws").data_key(session, kid) == key


def test_key_files_are_private_and_hold_no_plain_secrets(tmp_path: Path, session: Session) -> None:
    ring = Keyring.create(tmp_path, PassphraseProvider("pw", **FAST))
    secret = ring._load_secret("hmac")
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    for f in (tmp_path / "keys").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
        raw = f.read_bytes()
        assert secret not in raw and base64.b64encode(secret) not in raw


def test_rotate_twice_then_everything_still_decrypts(tmp_path: Path, session: Session) -> None:
    ring = Keyring.create(tmp_path, FileProvider(tmp_path / "kek.key"))
    keys = dict([ring.new_data_key(session) for _ in range(3)])
    pseud, pub = ring.hmac_key("clinic"), ring.verify_key()
    wrapped_before = {r.id: r.wrapped for r in session.scalars(select(DataKey))}
    assert ring.rotate(session) == "kek-2"
    keys.update([ring.new_data_key(session)])
    assert ring.rotate(session) == "kek-3"
    session.commit()
    assert ring.active_kek_id == "kek-3" and ring.kek_ids == ["kek-1", "kek-2", "kek-3"]
    rows = session.scalars(select(DataKey)).all()
    assert {r.kek_id for r in rows} == {"kek-3"}
    assert all(r.wrapped != wrapped_before.get(r.id) for r in rows)
    reopened = Keyring.open(tmp_path)
    for kid, key in keys.items():
        assert reopened.data_key(session, kid) == key
    assert reopened.hmac_key("clinic") == pseud
    sig = reopened.signing_key().sign(b"checkpoint")
    pub.verify(sig, b"checkpoint")
    for name in ("hmac.key", "signing.key"):
        assert json.loads((tmp_path / "keys" / name).read_text())["kek_id"] == "kek-3"


def test_rotation_with_env_provider_needs_a_fresh_variable(tmp_path: Path, session: Session,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K", _b64key())
    ring = Keyring.create(tmp_path, EnvProvider("K"))
    kid, key = ring.new_data_key(session)
    with pytest.raises(InputError, match="K_2 is not set"):
        ring.rotate(session)
    monkeypatch.setenv("K_2", _b64key())
    assert ring.rotate(session) == "kek-2"
    assert Keyring.open(tmp_path).data_key(session, kid) == key


def test_retire(tmp_path: Path, session: Session) -> None:
    ring = Keyring.create(tmp_path, PassphraseProvider("pw", **FAST))
    kid, key = ring.new_data_key(session)
    with pytest.raises(InputError, match="active"):
        ring.retire("kek-1", session)
    ring.rotate(session)
    # a data key created under kek-1 by a process that had not seen the rotation
    stale = DataKey(kek_id="kek-1", wrapped=session.get(DataKey, kid).wrapped)
    session.add(stale)
    session.flush()
    with pytest.raises(InputError, match="still wrapped"):
        ring.retire("kek-1", session)
    session.delete(stale)
    session.flush()
    session.commit()
    ring.retire("kek-1", session)
    assert ring.kek_ids == ["kek-2"]
    assert "kek-1" not in json.loads((tmp_path / "keys" / "keyring.json").read_text())["keks"]
    assert Keyring.open(tmp_path, PassphraseProvider("pw")).data_key(session, kid) == key
    with pytest.raises(InputError, match="no KEK kek-1"):
        ring.retire("kek-1", session)


def test_cli_keys_retire_checks_the_workspace_database(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`privgov keys retire` hands the keyring a session on the workspace database: a key
    still wrapped under the old KEK there blocks the retirement."""
    from governance.cli import main
    from tests.conftest import new_workspace

    ws, tokens = new_workspace(tmp_path / "ws", {"admin": ("admin", ["admin"])}, bindings={})
    opts = ["--workspace", str(ws.root), "--token", tokens["admin"]]
    with ws.session() as s:
        kid, key = ws.keyring.new_data_key(s)
    assert main(["keys", "rotate", *opts]) == 0
    with ws.session() as s:  # a data key wrapped under kek-1 by a process that had not seen the rotation
        s.add(DataKey(kek_id="kek-1", wrapped=s.get(DataKey, kid).wrapped))
    capsys.readouterr()
    assert main(["keys", "retire", "kek-1", *opts]) == 2
    assert "still wrapped" in capsys.readouterr().err
    with ws.session() as s:
        s.delete(s.scalar(select(DataKey).where(DataKey.kek_id == "kek-1")))
    assert main(["keys", "retire", "kek-1", *opts]) == 0
    ring = Keyring.open(ws.root)
    assert ring.kek_ids == ["kek-2"]
    with ws.session() as s:
        assert ring.data_key(s, kid) == key


def test_destroy_makes_one_key_unreadable_while_others_decrypt(tmp_path: Path, session: Session) -> None:
    ring = Keyring.create(tmp_path, PassphraseProvider("pw", **FAST))
    a, key_a = ring.new_data_key(session)
    b, key_b = ring.new_data_key(session)
    session.commit()
    wrapped_a = session.get(DataKey, a).wrapped
    assert wrapped_a in (tmp_path / "meta.db").read_bytes()
    ring.destroy_data_key(session, a)
    session.commit()
    row = session.get(DataKey, a)
    assert row.wrapped is None and row.destroyed_at is not None
    with pytest.raises(KeyDestroyed, match=f"data key {a} was erased"):
        ring.data_key(session, a)
    assert ring.data_key(session, b) == key_b
    ring.rotate(session)  # rotation skips shredded keys and keeps them shredded
    with pytest.raises(KeyDestroyed):
        Keyring.open(tmp_path, PassphraseProvider("pw")).data_key(session, a)
    assert Keyring.open(tmp_path, PassphraseProvider("pw")).data_key(session, b) == key_b
    assert wrapped_a not in (tmp_path / "meta.db").read_bytes()  # gone from the DB file


def test_tampered_wrapped_key_and_swapped_rows(tmp_path: Path, session: Session) -> None:
    ring = Keyring.create(tmp_path, PassphraseProvider("pw", **FAST))
    a, _ = ring.new_data_key(session)
    b, _ = ring.new_data_key(session)
    ra, rb = session.get(DataKey, a), session.get(DataKey, b)
    ra.wrapped, rb.wrapped = rb.wrapped, ra.wrapped  # wrapping binds the row id
    with pytest.raises(IntegrityFailure, match=f"data key {a}"):
        ring.data_key(session, a)
    with pytest.raises(IntegrityFailure, match="does not exist"):
        ring.data_key(session, 999)


def test_hmac_keys_are_stable_per_domain_and_distinct_across_domains(tmp_path: Path) -> None:
    ring = Keyring.create(tmp_path, PassphraseProvider("pw", **FAST))
    k1, k2 = ring.hmac_key("clinic"), ring.hmac_key("billing")
    assert len(k1) == 32 and k1 != k2
    assert Keyring.open(tmp_path, PassphraseProvider("pw")).hmac_key("clinic") == k1
    other = Keyring.create(tmp_path / "other", PassphraseProvider("pw", **FAST))
    assert other.hmac_key("clinic") != k1  # derived from a random per-workspace secret


def test_signing_key_verifies_and_rejects_forgery(tmp_path: Path) -> None:
    ring = Keyring.create(tmp_path, PassphraseProvider("pw", **FAST))
    sig = ring.signing_key().sign(b"head=abc;seq=7")
    ring.verify_key().verify(sig, b"head=abc;seq=7")
    with pytest.raises(InvalidSignature):
        ring.verify_key().verify(sig, b"head=abc;seq=8")
    assert (tmp_path / "keys" / "signing.pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY")


def test_missing_and_corrupt_keyring(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="no keyring"):
        Keyring.open(tmp_path)
    Keyring.create(tmp_path, PassphraseProvider("pw", **FAST))
    with pytest.raises(WorkspaceError, match="already exists"):
        Keyring.create(tmp_path, PassphraseProvider("pw", **FAST))
    path = tmp_path / "keys" / "keyring.json"
    good = path.read_text()
    path.write_text(good[:40])
    with pytest.raises(WorkspaceError, match="corrupt"):
        Keyring.open(tmp_path, PassphraseProvider("pw"))
    path.write_text(json.dumps({"format": 1, "provider": {"kind": "passphrase"}}))
    with pytest.raises(WorkspaceError, match="corrupt"):
        Keyring.open(tmp_path, PassphraseProvider("pw"))
    path.write_text(good)
    with pytest.raises(InputError, match="'passphrase' key provider"):
        Keyring.open(tmp_path, EnvProvider("X"))
    ring = Keyring.open(tmp_path, PassphraseProvider("pw"))
    (tmp_path / "keys" / "hmac.key").unlink()
    with pytest.raises(WorkspaceError, match="hmac.key is missing"):
        ring.hmac_key("x")


def test_provider_from_args(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRIVGOV_PASSPHRASE", raising=False)
    monkeypatch.delenv("PRIVGOV_KEK_FILE", raising=False)
    assert isinstance(provider_from_args("passphrase", tmp_path, "pw"), PassphraseProvider)
    with pytest.raises(InputError, match="PRIVGOV_PASSPHRASE"):
        provider_from_args("passphrase", tmp_path, None)
    assert provider_from_args("env", tmp_path, None).var == "PRIVGOV_KEK"
    fp = provider_from_args("file", tmp_path, None)
    assert isinstance(fp, FileProvider) and fp.path == tmp_path / "keys" / "kek.key"
    with pytest.raises(InputError, match="unknown key provider 'kms'"):
        provider_from_args("kms", tmp_path, None)


def test_retire_destroys_a_kek_file_inside_the_workspace(tmp_path: Path, session: Session) -> None:
    ring = Keyring.create(tmp_path, provider_from_args("file", tmp_path, None))
    kid, key = ring.new_data_key(session)
    kek1 = tmp_path / "keys" / "kek.key"
    assert kek1.exists()
    ring.rotate(session)
    assert ring.retire("kek-1", session) is None  # nothing left that privgov could not destroy
    assert not kek1.exists() and (tmp_path / "keys" / "kek.key.kek-2").exists()
    assert Keyring.open(tmp_path).data_key(session, kid) == key


def test_retire_leaves_an_outside_kek_file_and_says_so(tmp_path: Path, session: Session) -> None:
    outside = tmp_path / "secret" / "kek.key"
    ring = Keyring.create(tmp_path / "ws", FileProvider(outside))
    ring.rotate(session)
    note = ring.retire("kek-1", session)
    assert outside.exists() and note and str(outside) in note and "outside the workspace" in note


def test_retire_unused_names_what_a_passphrase_or_env_kek_leaves(tmp_path: Path, session: Session,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ring = Keyring.create(tmp_path / "p", PassphraseProvider("pw", **FAST))
    ring.new_data_key(session)
    ring.rotate(session)
    retired, notes = ring.retire_unused(session)
    assert retired == ["kek-1"] and "cannot destroy a passphrase" in notes[0]
    assert list(json.loads((tmp_path / "p" / "keys" / "keyring.json").read_text())["keks"]) == ["kek-2"]
    monkeypatch.setenv("K", _b64key())
    monkeypatch.setenv("K_2", _b64key())
    env_ring = Keyring.create(tmp_path / "e", EnvProvider("K"))
    env_ring.rotate(session)
    assert "environment variable K: privgov cannot destroy it" in env_ring.retire("kek-1", session)


def test_copied_workspace_uses_its_own_kek_files(tmp_path: Path, session: Session) -> None:
    import shutil

    ring = Keyring.create(tmp_path / "a", provider_from_args("file", tmp_path / "a", None))
    kid, key = ring.new_data_key(session)
    ring.rotate(session)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "a")
    assert Keyring.open(tmp_path / "b").data_key(session, kid) == key


def test_passphrase_rotation_needs_a_different_new_passphrase(tmp_path: Path, session: Session,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from governance.storage.key_providers import rotation_passphrase

    ring = Keyring.create(tmp_path, PassphraseProvider("old pw", **FAST))
    kid, key = ring.new_data_key(session)
    monkeypatch.delenv("PRIVGOV_NEW_PASSPHRASE", raising=False)
    with pytest.raises(InputError, match="PRIVGOV_NEW_PASSPHRASE"):
        rotation_passphrase(ring)
    with pytest.raises(InputError, match="equals the current one"):
        ring.rotate(session, new_passphrase="old pw")
    assert ring.kek_ids == ["kek-1"]  # refused before anything changed
    monkeypatch.setenv("PRIVGOV_NEW_PASSPHRASE", "new pw")
    assert ring.rotate(session, new_passphrase=rotation_passphrase(ring)) == "kek-2"
    session.commit()
    assert Keyring.open(tmp_path, PassphraseProvider("new pw")).data_key(session, kid) == key
    with pytest.raises(AccessDenied, match="wrong passphrase"):
        Keyring.open(tmp_path, PassphraseProvider("old pw")).data_key(session, kid)
    with pytest.raises(InputError, match="uses the 'file' key provider"):
        Keyring.create(tmp_path / "f", FileProvider(tmp_path / "f.key")).rotate(session, new_passphrase="x")


def test_cli_keys_rotate_refuses_the_same_passphrase(tmp_path: Path) -> None:
    from tests.governance.run.test_runner import cli

    ws = tmp_path / "ws"
    env = {"PRIVGOV_PASSPHRASE": "same pw"}
    init = cli("init", "--workspace", str(ws), "--key-provider", "passphrase", env=env)
    assert init.returncode == 0, init.stderr
    token = next(ln.strip() for ln in init.stdout.splitlines() if ln.strip().startswith("pgv_"))
    res = cli("keys", "rotate", "-w", str(ws), "--token", token, env={**env, "PRIVGOV_NEW_PASSPHRASE": "same pw"})
    assert res.returncode == 2 and "equals the current one" in res.stderr
    res = cli("keys", "rotate", "-w", str(ws), "--token", token, env=env)
    assert res.returncode == 2 and "PRIVGOV_NEW_PASSPHRASE" in res.stderr
    res = cli("keys", "rotate", "-w", str(ws), "--token", token, env={**env, "PRIVGOV_NEW_PASSPHRASE": "fresh pw"})
    assert res.returncode == 0, res.stderr
    res = cli("audit", "verify", "-w", str(ws), env={"PRIVGOV_PASSPHRASE": "fresh pw"})
    assert res.returncode == 0, res.stderr
