"""Key providers: where a keyring's key-encryption keys (KEKs) come from.

Why a provider interface: the KEK may be derived from a passphrase, read from an
environment variable or a private file, and later fetched from a KMS. The
:class:`~governance.storage.keyring.Keyring` only asks a provider for KEK
material by id and records the non-secret parameters it returns, so adding a
source never changes the keyring or its callers. A provider holds no workspace
state beyond those parameters.
"""
from __future__ import annotations

import base64
import hmac
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from governance.errors import InputError, WorkspaceError
from governance.storage.atomic_write import fsync_dir, write_private

if TYPE_CHECKING:  # pragma: no cover
    from governance.storage.keyring import Keyring

KEK_SIZE = 32
PASSPHRASE_ENV = "PRIVGOV_PASSPHRASE"
NEW_PASSPHRASE_ENV = "PRIVGOV_NEW_PASSPHRASE"
KEK_ENV = "PRIVGOV_KEK"
KEK_FILE_ENV = "PRIVGOV_KEK_FILE"


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


def b64(data: bytes) -> str:
    """Bytes as base64 text, the form key material and salts take in JSON and env variables."""
    return base64.b64encode(data).decode("ascii")


def unb64(value: str, what: str) -> bytes:
    """Strict base64 decode; ``what`` names the source in the error."""
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (ValueError, TypeError, AttributeError):
        raise InputError(f"{what} is not valid base64") from None


def kek_number(kek_id: str) -> int:
    """``kek-3`` -> 3: KEK ids sort and increment by this number."""
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
        params = {"salt": b64(os.urandom(16)), **self._cost}
        self._params[kek_id] = params
        if self._next is not None:
            self._phrases[kek_id] = self._next
        return params

    def restore(self, params: dict[str, dict[str, Any]]) -> None:
        self._params = dict(params)

    def load_kek(self, kek_id: str) -> bytes:
        try:
            prm = self._params[kek_id]
            salt = unb64(prm["salt"], f"scrypt salt of {kek_id}")
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
        n = kek_number(kek_id)
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
        key = unb64(value, f"environment variable {var}")
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
        return self.path if kek_number(kek_id) == 1 else self.path.with_name(f"{self.path.name}.{kek_id}")

    def new_kek(self, kek_id: str) -> dict[str, Any]:
        path = self._path_for(kek_id)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_private(path, (b64(os.urandom(KEK_SIZE)) + "\n").encode("ascii"), exclusive=True)
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
        key = raw if len(raw) == KEK_SIZE else unb64(raw.decode("ascii", "replace"), f"KEK file {path}")
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
    fsync_dir(path.parent)


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


def provider_from_config(cfg: dict[str, Any], path: Path) -> KeyProvider:
    """Rebuild the provider recorded in ``keyring.json`` (at ``path``) when a keyring is reopened."""
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

