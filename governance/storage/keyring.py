"""Keyring: key-encryption keys (KEKs), per-version data keys, HMAC and signing secrets.

Why envelope encryption: every dataset version gets its own random data key,
stored only *wrapped* (AES-256-GCM) under a KEK. Rotating the KEK then means
re-wrapping a few hundred 32-byte keys instead of re-encrypting terabytes, and
erasing one version means destroying one wrapped key (crypto-shredding) while
every other version still decrypts. Where the KEK comes from (a passphrase, an
environment variable, a file, later a KMS) is a :class:`KeyProvider`, so callers
never change when a provider is added.

On disk (``<root>/keys/``, directory 0700, files 0600): ``keyring.json`` (no
secrets: provider kind and parameters, KEK ids and check values, active KEK),
``hmac.key`` and ``signing.key`` (secrets wrapped under a KEK) and
``signing.pub`` (the audit verification key, for auditors without the KEK).
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import stat
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy import DateTime, Integer, LargeBinary, String, func, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from governance.errors import AccessDenied, InputError, IntegrityFailure, WorkspaceError
from governance.storage.store import Base, utcnow

KEYRING_FORMAT = 1
KEK_SIZE = 32
PASSPHRASE_ENV = "PRIVGOV_PASSPHRASE"
NEW_PASSPHRASE_ENV = "PRIVGOV_NEW_PASSPHRASE"
KEK_ENV = "PRIVGOV_KEK"
KEK_FILE_ENV = "PRIVGOV_KEK_FILE"
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


# ---- providers ---------------------------------------------------------------

@runtime_checkable
class KeyProvider(Protocol):
    """Where KEK material comes from. Implementations hold no workspace state.

    ``new_kek`` makes a new KEK version available and returns the non-secret
    parameters to record for it; ``restore`` hands those parameters back when a
    keyring is reopened; ``config`` is recorded once so ``Keyring.open`` can
    rebuild the provider without arguments. ``destroy`` removes a retired KEK's
    material where privgov can (inside ``workspace``) and returns a sentence
    saying what it could not destroy, or None.
    """

    kind: str

    def load_kek(self, kek_id: str) -> bytes: ...

    def new_kek(self, kek_id: str) -> dict[str, Any]: ...

    def restore(self, params: dict[str, dict[str, Any]]) -> None: ...

    def config(self) -> dict[str, Any]: ...

    def source(self, kek_id: str) -> str: ...

    def destroy(self, kek_id: str, workspace: Path) -> str | None: ...


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (ValueError, TypeError, AttributeError):
        raise InputError(f"{what} is not valid base64") from None


def _kek_number(kek_id: str) -> int:
    try:
        return int(kek_id.removeprefix("kek-"))
    except ValueError:
        raise InputError(f"KEK id {kek_id!r} must look like 'kek-<n>'") from None


class PassphraseProvider:
    """KEK = scrypt(passphrase, per-KEK salt); salt and n/r/p are recorded, never the key."""

    kind = "passphrase"

    def __init__(self, passphrase: str, *, n: int = 2**15, r: int = 8, p: int = 1) -> None:
        if not passphrase:
            raise InputError("the passphrase is empty; set PRIVGOV_PASSPHRASE or pass --passphrase")
        self._passphrase = passphrase.encode("utf-8")
        self._cost = {"n": n, "r": r, "p": p}
        self._params: dict[str, dict[str, Any]] = {}
        self._next: bytes | None = None
        self._phrases: dict[str, bytes] = {}  # KEKs created in this process under a new passphrase

    def use_new_passphrase(self, passphrase: str) -> None:
        """Derive the next KEK from ``passphrase`` instead of the current one.

        Why refuse the same passphrase: a "rotation" that keeps it changes only
        the salt, and anyone who knew the old passphrase still knows the new KEK.
        """
        if not passphrase:
            raise InputError("the new passphrase is empty; set PRIVGOV_NEW_PASSPHRASE to a non-empty passphrase")
        new = passphrase.encode("utf-8")
        if hmac.compare_digest(new, self._passphrase):
            raise InputError("the new passphrase equals the current one (PRIVGOV_NEW_PASSPHRASE = "
                             "PRIVGOV_PASSPHRASE); choose a different passphrase to rotate")
        self._next = new

    def new_kek(self, kek_id: str) -> dict[str, Any]:
        params = {"salt": _b64(os.urandom(16)), **self._cost}
        self._params[kek_id] = params
        if self._next is not None:
            self._phrases[kek_id] = self._next
        return params

    def restore(self, params: dict[str, dict[str, Any]]) -> None:
        self._params = dict(params)

    def load_kek(self, kek_id: str) -> bytes:
        try:
            prm = self._params[kek_id]
            salt = _unb64(prm["salt"], f"scrypt salt of {kek_id}")
            kdf = Scrypt(salt=salt, length=KEK_SIZE, n=int(prm["n"]), r=int(prm["r"]), p=int(prm["p"]))
        except (KeyError, TypeError, ValueError):
            raise WorkspaceError(f"keyring has no usable scrypt parameters for {kek_id}") from None
        return kdf.derive(self._phrases.get(kek_id, self._passphrase))

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def source(self, kek_id: str) -> str:
        return "the passphrase"

    def destroy(self, kek_id: str, workspace: Path) -> str | None:
        self._params.pop(kek_id, None)
        self._phrases.pop(kek_id, None)
        return (f"{kek_id} is derived from a passphrase: privgov dropped its scrypt salt from keyring.json "
                "but cannot destroy a passphrase; a copy of keyring.json and the database taken earlier, "
                "with that passphrase, still unwraps the data keys it held")


class EnvProvider:
    """KEK from an environment variable holding 32 base64-encoded bytes.

    KEK ``kek-1`` comes from ``var``; ``kek-N`` (after rotation) from ``var_N``,
    which the operator sets to a fresh key before running ``rotate``.
    """

    kind = "env"

    def __init__(self, var: str = KEK_ENV) -> None:
        self.var = var
        self._vars: dict[str, str] = {}

    def _var_for(self, kek_id: str) -> str:
        n = _kek_number(kek_id)
        return self.var if n == 1 else f"{self.var}_{n}"

    def new_kek(self, kek_id: str) -> dict[str, Any]:
        var = self._var_for(kek_id)
        self._vars[kek_id] = var
        self.load_kek(kek_id)  # fail now, not after the keyring was changed
        return {"var": var}

    def restore(self, params: dict[str, dict[str, Any]]) -> None:
        self._vars = {k: str(v.get("var", "")) for k, v in params.items()}

    def load_kek(self, kek_id: str) -> bytes:
        var = self._vars.get(kek_id) or self._var_for(kek_id)
        value = os.environ.get(var)
        if not value:
            raise InputError(f"environment variable {var} is not set; it must hold the base64 KEK {kek_id}")
        key = _unb64(value, f"environment variable {var}")
        if len(key) != KEK_SIZE:
            raise InputError(f"environment variable {var} must decode to {KEK_SIZE} bytes, got {len(key)}")
        return key

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "var": self.var}

    def source(self, kek_id: str) -> str:
        return f"environment variable {self._vars.get(kek_id) or self._var_for(kek_id)}"

    def destroy(self, kek_id: str, workspace: Path) -> str | None:
        var = self._vars.pop(kek_id, None) or self._var_for(kek_id)
        return (f"{kek_id} comes from environment variable {var}: privgov cannot destroy it; delete that key "
                "from your secret store, or earlier copies of the database can still be unwrapped with it")


class FileProvider:
    """KEK from a file that only its owner may read (mode 0600 or stricter).

    ``kek-1`` lives at ``path`` and ``kek-N`` at ``path.kek-N``; a missing file is
    created with a random key (mode 0600) when the KEK version is created.
    Paths inside ``base`` (the workspace's ``keys/``) are recorded relative to it,
    so a copied or moved workspace uses its own key files, never the original's.
    """

    kind = "file"

    def __init__(self, path: Path | str, *, base: Path | None = None) -> None:
        self.base = Path(base) if base is not None else None
        self.path = self._resolve(str(path))
        self._paths: dict[str, Path] = {}

    def _resolve(self, recorded: str) -> Path:
        path = Path(recorded)
        return path if path.is_absolute() or self.base is None else self.base / path

    def _record(self, path: Path) -> str:
        if self.base is not None and path.parent == self.base:
            return path.name
        return str(path)

    def _path_for(self, kek_id: str) -> Path:
        if kek_id in self._paths:
            return self._paths[kek_id]
        return self.path if _kek_number(kek_id) == 1 else self.path.with_name(f"{self.path.name}.{kek_id}")

    def new_kek(self, kek_id: str) -> dict[str, Any]:
        path = self._path_for(kek_id)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _write_private(path, (_b64(os.urandom(KEK_SIZE)) + "\n").encode("ascii"), exclusive=True)
        self._paths[kek_id] = path
        self.load_kek(kek_id)
        return {"path": self._record(path)}

    def restore(self, params: dict[str, dict[str, Any]]) -> None:
        self._paths = {k: self._resolve(str(v["path"])) for k, v in params.items() if v.get("path")}

    def load_kek(self, kek_id: str) -> bytes:
        path = self._path_for(kek_id)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise InputError(f"KEK file {path} does not exist (needed for {kek_id})") from None
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise InputError(f"KEK file {path} has mode {mode:04o}; refusing to use it until `chmod 600 {path}`")
        raw = path.read_bytes()
        key = raw if len(raw) == KEK_SIZE else _unb64(raw.decode("ascii", "replace"), f"KEK file {path}")
        if len(key) != KEK_SIZE:
            raise InputError(f"KEK file {path} must hold {KEK_SIZE} raw or base64 bytes, got {len(key)}")
        return key

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self._record(self.path)}

    def source(self, kek_id: str) -> str:
        return f"KEK file {self._path_for(kek_id)}"

    def destroy(self, kek_id: str, workspace: Path) -> str | None:
        """Overwrite and unlink the KEK file if it lies inside the workspace.

        A file outside the workspace belongs to the operator (it may serve other
        workspaces), so it is left in place and named in the returned sentence.
        """
        path = self._path_for(kek_id)
        self._paths.pop(kek_id, None)
        if not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(workspace)):
            return (f"{kek_id} is in KEK file {path}, outside the workspace: privgov left it in place; "
                    "destroy it yourself or earlier copies of the database can still be unwrapped with it")
        shred_file(path)
        return None


def shred_file(path: Path) -> None:
    """Overwrite a small secret file with random bytes, fsync, then unlink it.

    Why overwrite first: unlinking alone leaves the key bytes in the freed blocks
    of the file system. (On copy-on-write or flash storage the overwrite may land
    elsewhere; that residue is documented in docs/format.md, not claimed away.)
    """
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return
    try:
        size = os.fstat(fd).st_size
        os.write(fd, os.urandom(max(size, KEK_SIZE)))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.unlink(path)
    _fsync_parent(path)


def provider_from_args(kind: str, root: Path, passphrase: str | None) -> KeyProvider:
    """Build a provider from CLI options (`--key-provider`, `--passphrase`)."""
    if kind == "passphrase":
        phrase = passphrase or os.environ.get(PASSPHRASE_ENV)
        if not phrase:
            raise InputError(f"key provider 'passphrase' needs --passphrase or {PASSPHRASE_ENV}")
        return PassphraseProvider(phrase)
    if kind == "env":
        return EnvProvider(KEK_ENV)
    if kind == "file":
        return FileProvider(Path(os.environ.get(KEK_FILE_ENV) or Path(root) / "keys" / "kek.key"),
                            base=Path(root) / "keys")
    raise InputError(f"unknown key provider {kind!r}; expected one of: passphrase, env, file")


def rotation_passphrase(ring: "Keyring") -> str | None:
    """The new passphrase for ``keys rotate``: ``PRIVGOV_NEW_PASSPHRASE``.

    Why required for the passphrase provider: rotating exists to stop trusting
    the old secret; a rotation under the same passphrase only changes the salt.
    Returns None for other providers (they bring their own new KEK).
    """
    phrase = os.environ.get(NEW_PASSPHRASE_ENV)
    if ring.provider.kind != "passphrase":
        if phrase:
            raise InputError(f"{NEW_PASSPHRASE_ENV} is set but keyring {ring.path} uses the "
                             f"{ring.provider.kind!r} key provider; unset it")
        return None
    if not phrase:
        raise InputError(f"rotating a passphrase keyring needs the new passphrase in {NEW_PASSPHRASE_ENV} "
                         f"(different from {PASSPHRASE_ENV})")
    return phrase


def _provider_from_config(cfg: dict[str, Any], path: Path) -> KeyProvider:
    kind = cfg.get("kind")
    if kind == "passphrase":
        phrase = os.environ.get(PASSPHRASE_ENV)
        if not phrase:
            raise InputError(f"{path} is passphrase-protected: set {PASSPHRASE_ENV} to the workspace passphrase")
        return PassphraseProvider(phrase)
    if kind == "env":
        return EnvProvider(str(cfg.get("var") or KEK_ENV))
    if kind == "file":
        return FileProvider(str(cfg["path"]), base=path.parent)
    raise WorkspaceError(f"{path}: unknown key provider kind {kind!r}")


# ---- file helpers ------------------------------------------------------------

def _write_private(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` atomically to ``path`` with mode 0600 (temp file, fsync, rename)."""
    if exclusive:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return
    tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_parent(path)


def _fsync_parent(path: Path) -> None:
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _wrap(kek: bytes, kek_id: str, purpose: str, key: bytes) -> bytes:
    """AES-256-GCM wrap; the purpose and KEK id are bound so wrapped keys cannot be swapped."""
    nonce = os.urandom(12)
    return nonce + AESGCM(kek).encrypt(nonce, key, f"privgov/wrap/v1|{kek_id}|{purpose}".encode())


def _unwrap(kek: bytes, kek_id: str, purpose: str, wrapped: bytes) -> bytes:
    if len(wrapped) < 12 + 16:
        raise InvalidTag()
    return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], f"privgov/wrap/v1|{kek_id}|{purpose}".encode())


def _kek_check(kek: bytes) -> str:
    return _b64(hmac.new(kek, _CHECK_LABEL, hashlib.sha256).digest()[:16])


def _workspace_engine(root: Path):
    """Engine for the workspace database beside ``keys/`` (same rule as ``Workspace``)."""
    from governance.storage.store import database_url, make_engine

    cfg = root / "workspace.json"
    config: dict[str, Any] = {}
    if cfg.exists():
        try:
            config = json.loads(cfg.read_text())
        except (OSError, ValueError):
            raise WorkspaceError(f"{cfg}: unreadable workspace config") from None
    url = database_url(root, config if isinstance(config, dict) else {})
    if url == f"sqlite:///{root / 'privgov.db'}" and not (root / "privgov.db").exists():
        raise WorkspaceError(f"no workspace database for {root}; cannot check which data keys use the KEK")
    return make_engine(url)


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
        return sorted(self._meta["keks"], key=_kek_number)

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
        _write_private(kdir / "signing.pub", signing.public_key().public_bytes(
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
            provider = _provider_from_config(pcfg, path)
        elif provider.kind != pcfg.get("kind"):
            raise InputError(f"keyring {path} uses the {pcfg.get('kind')!r} key provider, "
                             f"not {provider.kind!r}")
        provider.restore(params)
        return cls(Path(root), provider, meta)

    def _save(self) -> None:
        _write_private(self.path, (json.dumps(self._meta, indent=2, sort_keys=True) + "\n").encode())

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
        new_id = f"kek-{max(_kek_number(k) for k in self._meta['keks']) + 1}"
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

    def retire(self, kek_id: str, session: Session | None = None) -> str | None:
        """Destroy an old KEK once nothing is wrapped under it (checked in ``data_keys``).

        Its entry leaves ``keyring.json`` and its material is destroyed where
        privgov holds it (a KEK file inside the workspace is overwritten and
        unlinked), so a database copy taken before a rotation can no longer be
        unwrapped with this workspace's keys. Returns what could *not* be
        destroyed (a passphrase, an env variable, a file outside the workspace),
        or None.

        Without ``session`` (the CLI's ``keys retire``) the workspace database the
        keyring belongs to is opened for the check, resolved like the workspace
        does: ``PRIVGOV_DB_URL``, else ``db_url`` in ``workspace.json``, else
        ``<root>/privgov.db``.
        """
        if kek_id not in self._meta["keks"]:
            raise InputError(f"no KEK {kek_id} in keyring {self.path}; known: {', '.join(self.kek_ids)}")
        if kek_id == self.active_kek_id:
            raise InputError(f"{kek_id} is the active KEK; run rotate first, then retire it")
        if session is None:
            engine = _workspace_engine(self.root)
            try:
                with Session(engine) as own:
                    return self.retire(kek_id, own)
            finally:
                engine.dispose()
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
            wrapped = _unb64(rec["wrapped"], str(self._secret_path(name)))
            try:
                self._secrets[name] = _unwrap(self._kek(rec["kek_id"]), rec["kek_id"], name, wrapped)
            except InvalidTag:
                raise IntegrityFailure(f"keyring secret {self._secret_path(name)} does not unwrap "
                                       f"under {rec['kek_id']}: it was tampered with") from None
        return self._secrets[name]

    def _store_secret(self, name: str, secret: bytes, kek_id: str) -> None:
        wrapped = _wrap(self._kek(kek_id), kek_id, name, secret)
        rec = {"format": KEYRING_FORMAT, "purpose": name, "kek_id": kek_id, "wrapped": _b64(wrapped)}
        _write_private(self._secret_path(name), (json.dumps(rec, indent=2) + "\n").encode())
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
