"""Keyring: key-encryption keys (KEKs), per-version data keys, HMAC and signing secrets.

Why envelope encryption: every dataset version gets its own random data key,
stored only *wrapped* (AES-256-GCM) under a KEK. Rotating the KEK then means
re-wrapping a few hundred 32-byte keys instead of re-encrypting terabytes, and
erasing one version means destroying one wrapped key (crypto-shredding) while
every other version still decrypts. Where the KEK comes from (a passphrase, an
environment variable, a file, later a KMS) is a
:class:`~governance.storage.key_providers.KeyProvider`, so callers never change
when a provider is added.

On disk (``<root>/keys/``, directory 0700, files 0600): ``keyring.json`` (no
secrets: provider kind and parameters, KEK ids and check values, active KEK),
``hmac.key`` and ``signing.key`` (secrets wrapped under a KEK) and
``signing.pub`` (the audit verification key, for auditors without the KEK).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any, Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import DateTime, Integer, LargeBinary, String, func, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from governance.errors import AccessDenied, InputError, IntegrityFailure, WorkspaceError
from governance.storage.atomic_write import write_private
from governance.storage.key_providers import (
    KeyProvider,
    PassphraseProvider,
    b64,
    kek_number,
    provider_from_config,
    unb64,
)
from governance.storage.store import Base, utcnow

KEYRING_FORMAT = 1
_SECRETS = {"hmac": "hmac.key", "signing": "signing.key"}
_CHECK_LABEL = b"privgov/keyring/v1/kek-check"


class KeyDestroyed(InputError):
    """The data key was crypto-shredded: the version encrypted under it is gone for good."""


class DataKey(Base):
    """One data key per encrypted object; ``wrapped`` is NULL once crypto-shredded."""

    __tablename__ = "data_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kek_id: Mapped[str] = mapped_column(String(32), index=True)
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    destroyed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


def _wrap(kek: bytes, kek_id: str, purpose: str, key: bytes) -> bytes:
    """AES-256-GCM wrap; the purpose and KEK id are bound so wrapped keys cannot be swapped."""
    nonce = os.urandom(12)
    return nonce + AESGCM(kek).encrypt(nonce, key, f"privgov/wrap/v1|{kek_id}|{purpose}".encode())


def _unwrap(kek: bytes, kek_id: str, purpose: str, wrapped: bytes) -> bytes:
    if len(wrapped) < 12 + 16:
        raise InvalidTag()
    return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], f"privgov/wrap/v1|{kek_id}|{purpose}".encode())


def _kek_check(kek: bytes) -> str:
    return b64(hmac.new(kek, _CHECK_LABEL, hashlib.sha256).digest()[:16])


# ---- keyring -----------------------------------------------------------------

class Keyring:
    """KEK versions (one active), data keys in ``data_keys``, and derived secrets."""

    def __init__(self, root: Path, provider: KeyProvider, meta: dict[str, Any]) -> None:
        self.root = Path(root)
        self.dir = self.root / "keys"
        self.provider = provider
        self._meta = meta
        self._keks: dict[str, bytes] = {}
        self._secrets: dict[str, bytes] = {}

    @property
    def path(self) -> Path:
        return self.dir / "keyring.json"

    @property
    def active_kek_id(self) -> str:
        return str(self._meta["active"])

    @property
    def kek_ids(self) -> list[str]:
        return sorted(self._meta["keks"], key=kek_number)

    # ---- lifecycle ---------------------------------------------------------
    @classmethod
    def create(cls, root: Path, provider: KeyProvider) -> Keyring:
        """New keyring with KEK ``kek-1``, a random HMAC secret and an Ed25519 signing key."""
        kdir = Path(root) / "keys"
        if (kdir / "keyring.json").exists():
            raise WorkspaceError(f"{kdir / 'keyring.json'} already exists; refusing to overwrite a keyring")
        kdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(kdir, 0o700)
        params = provider.new_kek("kek-1")
        kek = provider.load_kek("kek-1")
        meta = {
            "format": KEYRING_FORMAT,
            "provider": provider.config(),
            "active": "kek-1",
            "keks": {"kek-1": {"created_at": utcnow().isoformat(), "check": _kek_check(kek), "params": params}},
        }
        ring = cls(Path(root), provider, meta)
        ring._keks["kek-1"] = kek
        signing = Ed25519PrivateKey.generate()
        raw_signing = signing.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                            serialization.NoEncryption())
        ring._store_secret("hmac", os.urandom(32), "kek-1")
        ring._store_secret("signing", raw_signing, "kek-1")
        write_private(kdir / "signing.pub", signing.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        ring._save()  # written last: its presence marks a complete keyring
        return ring

    @classmethod
    def open(cls, root: Path, provider: KeyProvider | None = None) -> Keyring:
        """Open ``<root>/keys/keyring.json``; without ``provider`` rebuild it from the file."""
        path = Path(root) / "keys" / "keyring.json"
        try:
            meta = json.loads(path.read_text())
        except FileNotFoundError:
            raise WorkspaceError(f"no keyring at {path}; run `privgov init` or restore keys/ from a backup") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WorkspaceError(f"keyring file {path} is corrupt ({exc}); restore keys/ from a backup") from None
        try:
            if meta["format"] != KEYRING_FORMAT:
                raise WorkspaceError(f"keyring file {path} has format {meta['format']}; "
                                     f"this privgov reads {KEYRING_FORMAT}")
            pcfg, keks = dict(meta["provider"]), dict(meta["keks"])
            if meta["active"] not in keks:
                raise KeyError("active")
            params = {k: dict(v["params"]) for k, v in keks.items()}
            for v in keks.values():
                str(v["check"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise WorkspaceError(f"keyring file {path} is corrupt (missing or bad field {exc}); "
                                 "restore keys/ from a backup") from None
        if provider is None:
            provider = provider_from_config(pcfg, path)
        elif provider.kind != pcfg.get("kind"):
            raise InputError(f"keyring {path} uses the {pcfg.get('kind')!r} key provider, "
                             f"not {provider.kind!r}")
        provider.restore(params)
        return cls(Path(root), provider, meta)

    def _save(self) -> None:
        write_private(self.path, (json.dumps(self._meta, indent=2, sort_keys=True) + "\n").encode())

    # ---- KEKs --------------------------------------------------------------
    def _kek(self, kek_id: str) -> bytes:
        """Load (once) and verify a KEK, so a wrong passphrase fails loudly, not as garbage."""
        if kek_id in self._keks:
            return self._keks[kek_id]
        entry = self._meta["keks"].get(kek_id)
        if entry is None:
            raise IntegrityFailure(f"KEK {kek_id} is not in keyring {self.path} (retired or tampered)")
        kek = self.provider.load_kek(kek_id)
        if not hmac.compare_digest(_kek_check(kek), str(entry["check"])):
            if self.provider.kind == "passphrase":
                raise AccessDenied(f"wrong passphrase for keyring {self.path} ({kek_id} does not match)")
            raise AccessDenied(f"{self.provider.source(kek_id)} does not hold {kek_id} of keyring {self.path}")
        self._keks[kek_id] = kek
        return kek

    def rotate(self, session: Session, *, new_passphrase: str | None = None) -> str:
        """Create a new active KEK and re-wrap every live data key and secret under it.

        No data is re-encrypted. Each wrapped item records its KEK id and the old
        KEK stays in the keyring until :meth:`retire`, so a crash or a rolled-back
        session at any point leaves everything readable. ``new_passphrase``
        (passphrase provider only) derives the new KEK from a different passphrase;
        without it the passphrase stays and only the salt changes.
        """
        if new_passphrase is not None:
            if not isinstance(self.provider, PassphraseProvider):
                raise InputError(f"a new passphrase was given but keyring {self.path} uses the "
                                 f"{self.provider.kind!r} key provider")
            self._kek(self.active_kek_id)  # the current passphrase must be right before it is replaced
            self.provider.use_new_passphrase(new_passphrase)
        new_id = f"kek-{max(kek_number(k) for k in self._meta['keks']) + 1}"
        params = self.provider.new_kek(new_id)
        kek = self.provider.load_kek(new_id)
        check = _kek_check(kek)
        if any(v["check"] == check for v in self._meta["keks"].values()):
            raise InputError(f"{self.provider.source(new_id)} holds a KEK the keyring already uses; "
                             "supply a fresh key to rotate")
        self._meta["keks"][new_id] = {"created_at": utcnow().isoformat(), "check": check, "params": params}
        self._keks[new_id] = kek
        self._save()
        for name in _SECRETS:
            self._store_secret(name, self._load_secret(name), new_id)
        rows = session.scalars(select(DataKey).where(DataKey.wrapped.is_not(None))).all()
        for row in rows:
            if row.kek_id != new_id:
                key = self._unwrap_data_key(row)
                row.wrapped = _wrap(kek, new_id, f"data-key:{row.id}", key)
                row.kek_id = new_id
        session.flush()
        self._meta["active"] = new_id
        self._save()
        return new_id

    def retire(self, kek_id: str, session: Session) -> str | None:
        """Destroy an old KEK once nothing is wrapped under it (checked in ``data_keys``).

        Its entry leaves ``keyring.json`` and its material is destroyed where
        privgov holds it (a KEK file inside the workspace is overwritten and
        unlinked), so a database copy taken before a rotation can no longer be
        unwrapped with this workspace's keys. Returns what could *not* be
        destroyed (a passphrase, an env variable, a file outside the workspace),
        or None. ``session`` is on the workspace database that holds ``data_keys``:
        the keyring never finds that database itself (the workspace composes it).
        """
        if kek_id not in self._meta["keks"]:
            raise InputError(f"no KEK {kek_id} in keyring {self.path}; known: {', '.join(self.kek_ids)}")
        if kek_id == self.active_kek_id:
            raise InputError(f"{kek_id} is the active KEK; run rotate first, then retire it")
        live = session.scalar(select(func.count()).select_from(DataKey).where(
            DataKey.kek_id == kek_id, DataKey.wrapped.is_not(None)))
        secrets = [n for n in _SECRETS if self._secret_record(n)["kek_id"] == kek_id]
        if live or secrets:
            raise InputError(f"cannot retire {kek_id}: {live} data key(s) and {len(secrets)} secret(s) "
                             "are still wrapped under it; run rotate first")
        del self._meta["keks"][kek_id]
        self._keks.pop(kek_id, None)
        self._save()  # first forget it, then destroy it: a crash in between leaves no dangling entry
        return self.provider.destroy(kek_id, self.root)

    def retire_unused(self, session: Session) -> tuple[list[str], list[str]]:
        """Retire every non-active KEK that nothing is wrapped under any more.

        Returns (retired KEK ids, sentences on what could not be destroyed). A
        KEK that still wraps something (a process that had not seen a rotation)
        is kept and named, never forced.
        """
        retired, notes = [], []
        for kek_id in self.kek_ids:
            if kek_id == self.active_kek_id:
                continue
            try:
                note = self.retire(kek_id, session)
            except InputError as exc:
                notes.append(f"{kek_id} was kept: {exc}")
                continue
            retired.append(kek_id)
            if note:
                notes.append(note)
        return retired, notes

    # ---- data keys ---------------------------------------------------------
    def new_data_key(self, session: Session) -> tuple[int, bytes]:
        """A fresh random AES-256 key, stored wrapped under the active KEK."""
        kek_id = self.active_kek_id
        kek = self._kek(kek_id)
        key = os.urandom(32)
        row = DataKey(kek_id=kek_id, wrapped=b"")
        session.add(row)
        session.flush()  # assigns row.id, which the wrapping binds
        row.wrapped = _wrap(kek, kek_id, f"data-key:{row.id}", key)
        session.flush()
        return row.id, key

    def _unwrap_data_key(self, row: DataKey) -> bytes:
        assert row.wrapped is not None
        try:
            return _unwrap(self._kek(row.kek_id), row.kek_id, f"data-key:{row.id}", row.wrapped)
        except InvalidTag:
            raise IntegrityFailure(f"data key {row.id} does not unwrap under {row.kek_id}: "
                                   "the data_keys table was tampered with") from None

    def data_key(self, session: Session, data_key_id: int) -> bytes:
        """Unwrap data key ``data_key_id``; :class:`KeyDestroyed` if it was crypto-shredded."""
        row = session.get(DataKey, data_key_id)
        if row is None:
            raise IntegrityFailure(f"data key {data_key_id} does not exist in the data_keys table")
        if row.wrapped is None or row.destroyed_at is not None:
            when = row.destroyed_at.isoformat(timespec="seconds") if row.destroyed_at else "unknown time"
            raise KeyDestroyed(f"data key {data_key_id} was erased (crypto-shredded at {when}); "
                               "the version encrypted under it can no longer be read")
        return self._unwrap_data_key(row)

    def destroy_data_key(self, session: Session, data_key_id: int) -> None:
        """Crypto-shred: drop the wrapped key so the ciphertext is unreadable forever.

        On SQLite ``secure_delete`` is switched on so the old bytes are zeroed in
        the database file (``catalog.finalize_erasure`` then checkpoints the WAL
        and vacuums). Copies of the database taken earlier stay readable until
        the KEK they were wrapped under is rotated away and retired, which
        ``catalog.erase_version`` and ``finalize_erasure`` do (docs/format.md).
        """
        row = session.get(DataKey, data_key_id)
        if row is None:
            raise InputError(f"data key {data_key_id} does not exist in the data_keys table")
        if session.get_bind().dialect.name == "sqlite":
            session.execute(text("PRAGMA secure_delete = ON"))
        if row.destroyed_at is None:
            row.destroyed_at = utcnow()
        row.wrapped = None
        session.flush()

    # ---- secrets -----------------------------------------------------------
    def _secret_path(self, name: str) -> Path:
        return self.dir / _SECRETS[name]

    def _secret_record(self, name: str) -> dict[str, Any]:
        path = self._secret_path(name)
        try:
            rec = json.loads(path.read_text())
            str(rec["kek_id"]), str(rec["wrapped"])
        except FileNotFoundError:
            raise WorkspaceError(f"keyring secret {path} is missing; restore keys/ from a backup") from None
        except (OSError, ValueError, KeyError, TypeError):
            raise WorkspaceError(f"keyring secret {path} is corrupt; restore keys/ from a backup") from None
        return rec

    def _load_secret(self, name: str) -> bytes:
        if name not in self._secrets:
            rec = self._secret_record(name)
            wrapped = unb64(rec["wrapped"], str(self._secret_path(name)))
            try:
                self._secrets[name] = _unwrap(self._kek(rec["kek_id"]), rec["kek_id"], name, wrapped)
            except InvalidTag:
                raise IntegrityFailure(f"keyring secret {self._secret_path(name)} does not unwrap "
                                       f"under {rec['kek_id']}: it was tampered with") from None
        return self._secrets[name]

    def _store_secret(self, name: str, secret: bytes, kek_id: str) -> None:
        wrapped = _wrap(self._kek(kek_id), kek_id, name, secret)
        rec = {"format": KEYRING_FORMAT, "purpose": name, "kek_id": kek_id, "wrapped": b64(wrapped)}
        write_private(self._secret_path(name), (json.dumps(rec, indent=2) + "\n").encode())
        self._secrets[name] = secret

    def hmac_key(self, domain: str) -> bytes:
        """Stable 32-byte key for HMAC pseudonyms in ``domain`` (HKDF from one wrapped secret).

        Why per domain: pseudonyms of the same value in two domains (say, two
        datasets) cannot be joined unless the caller uses the same domain.
        """
        if not domain:
            raise InputError("hmac_key needs a non-empty domain name")
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=b"privgov/hmac/v1/" + domain.encode("utf-8"))
        return hkdf.derive(self._load_secret("hmac"))

    def pseudonym_keys(self, dataset: str) -> "Callable[[str], bytes]":
        """Per-domain HMAC keys scoped to `dataset`: `pii apply` is an `ingest` decision on one
        dataset, so it must not compute (and look up) another dataset's stored pseudonyms."""
        if not dataset:
            raise InputError("pseudonym keys need a dataset name")
        return lambda domain: self.hmac_key(f"dataset={dataset};domain={domain}")

    def signing_key(self) -> Ed25519PrivateKey:
        """Ed25519 key that signs audit checkpoints (unwrapped under the KEK)."""
        return Ed25519PrivateKey.from_private_bytes(self._load_secret("signing"))

    def verify_key(self) -> Ed25519PublicKey:
        """Verification key for audit checkpoints, derived from the wrapped private key."""
        return self.signing_key().public_key()


def public_signing_key(root: Path) -> Ed25519PublicKey:
    """The audit verification key from ``<root>/keys/signing.pub``, without any KEK.

    Why: an auditor verifying the log should need no secret. The file sits in the
    workspace, so whoever can write there can replace it; only a key the auditor
    holds separately (``--trusted-key``) proves who signed."""
    path = Path(root) / "keys" / "signing.pub"
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise WorkspaceError(f"{path} is missing; restore keys/ from a backup or verify with --trusted-key") from None
    except (OSError, ValueError) as exc:
        raise WorkspaceError(f"{path} is not a PEM public key ({exc}); restore keys/ from a backup") from None
    if not isinstance(key, Ed25519PublicKey):
        raise WorkspaceError(f"{path} holds a {type(key).__name__}, not the Ed25519 audit key")
    return key
