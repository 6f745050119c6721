"""Encrypted, content-addressed object store for dataset versions and models.

Why content addressing by the *ciphertext* hash: the address reveals nothing
about the plaintext (each blob has its own random data key), a blob swapped or
edited on disk is caught before decryption starts, and a writer never overwrites
anything. Plaintext exists only in memory: the temp file beside the final path
holds ciphertext only, and DataFrames become Parquet in a memory buffer.

Each blob's header names its data key as ``dk-<id>`` and carries *no* wrapped
key: the wrapped key lives only in ``data_keys``, so rotation re-wraps it in one
place and crypto-shredding that row makes the blob unreadable.
"""
from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from governance.errors import InputError, IntegrityFailure
from governance.storage.atomic_write import fsync_dir
from governance.storage.crypto import DecryptionError, decrypt_stream, encrypt_stream

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from sqlalchemy.orm import Session

    from governance.storage.keyring import Keyring

_COPY = 1 << 20


@dataclass(frozen=True)
class BlobRef:
    """Where a blob lives and what it must decrypt to (``size`` = plaintext bytes)."""

    blob_hash: str
    data_key_id: int
    content_hash: str
    size: int


class _HashingReader(io.RawIOBase):
    """Hashes and counts the plaintext as :func:`encrypt_stream` reads it."""

    def __init__(self, src: BinaryIO) -> None:
        self._src, self.sha, self.count = src, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, view) -> int:  # type: ignore[override]
        data = self._src.read(len(view))
        n = len(data)
        view[:n] = data
        self.sha.update(data)
        self.count += n
        return n


class _HashingWriter:
    """Hashes the ciphertext while it goes to the temp file (its hash is the address)."""

    def __init__(self, dst: BinaryIO) -> None:
        self._dst, self.sha = dst, hashlib.sha256()

    def write(self, data) -> int:
        self.sha.update(data)
        return self._dst.write(data)


class _HashingSink:
    """Plaintext sink kept in memory, hashed on the way in."""

    def __init__(self) -> None:
        self.buf, self.sha = io.BytesIO(), hashlib.sha256()

    def write(self, data) -> int:
        self.sha.update(data)
        return self.buf.write(data)


@dataclass
class NewBlob:
    """A blob being written: its data key and the hashing writer over its temp file."""

    data_key_id: int
    key: bytes
    writer: _HashingWriter
    blob_hash: str = ""


def key_label(data_key_id: int) -> str:
    """The key id a blob header names: `dk-<data key id>` (the wrapped key itself lives only in the database)."""
    return f"dk-{data_key_id}"


class ObjectStore:
    """Blobs under ``<root>/objects/ab/cdef…``, each under its own data key."""

    def __init__(self, root: Path, keyring: Keyring) -> None:
        self.root = Path(root)
        self.dir = self.root / "objects"
        self.keyring = keyring

    def path_for(self, blob_hash: str) -> Path:
        if len(blob_hash) != 64 or any(c not in "0123456789abcdef" for c in blob_hash):
            raise InputError(f"blob hash {blob_hash!r} is not a 64-character lowercase sha256 hex digest")
        return self.dir / blob_hash[:2] / blob_hash[2:]

    # ---- bytes -------------------------------------------------------------
    def put_bytes(self, session: Session, data: bytes | BinaryIO, *, associated: bytes) -> BlobRef:
        """Encrypt ``data`` under a fresh data key and store it atomically.

        The temp file (same directory tree, so the rename is atomic) only ever
        receives ciphertext; it is fsynced before the rename and removed on any
        failure, so a crash leaves either the complete blob or nothing.
        """
        src: BinaryIO = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
        reader = _HashingReader(src)
        with self.new_blob(session) as blob:
            encrypt_stream(reader, blob.writer, blob.key, key_id=key_label(blob.data_key_id), wrapped_key=b"",
                           associated=associated)
        return BlobRef(blob_hash=blob.blob_hash, data_key_id=blob.data_key_id,
                       content_hash=reader.sha.hexdigest(), size=reader.count)

    @contextmanager
    def new_blob(self, session: Session) -> Iterator[NewBlob]:
        """A fresh data key and a temp file for its ciphertext; on a clean exit the file is fsynced and
        renamed to its address (``blob.blob_hash``), on any failure removed. Shared by
        :meth:`put_bytes` and the streaming writer (governance/storage/blob_writer.py)."""
        data_key_id, key = self.keyring.new_data_key(session)
        with self._content_addressed() as writer:
            blob = NewBlob(data_key_id, key, writer)
            yield blob
        blob.blob_hash = writer.sha.hexdigest()

    @contextmanager
    def _content_addressed(self) -> Iterator[_HashingWriter]:
        """The one atomic write of every blob: a private temp file that only ever receives
        ciphertext, fsynced and renamed to the sha256 of what was written on a clean exit
        (so a crash leaves the whole blob or nothing), removed on any failure."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.dir / f".tmp-{os.urandom(8).hex()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                writer = _HashingWriter(fh)
                yield writer
                fh.flush()
                os.fsync(fh.fileno())
            final = self.path_for(writer.sha.hexdigest())
            final.parent.mkdir(exist_ok=True, mode=0o700)
            os.replace(tmp, final)
            fsync_dir(final.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def get_bytes(self, session: Session, ref: BlobRef, *, associated: bytes) -> bytes:
        """Decrypt a blob into memory after checking its address and content hash."""
        key = self.keyring.data_key(session, ref.data_key_id)  # KeyDestroyed first: "erased" beats "missing"
        raw = self.get_sealed(ref.blob_hash)
        expected = key_label(ref.data_key_id)

        def unwrap(key_id: str, _wrapped: bytes) -> bytes:
            if key_id != expected:
                raise DecryptionError(f"blob {ref.blob_hash[:12]}… names key {key_id!r}, expected {expected!r}")
            return key

        sink = _HashingSink()
        try:
            decrypt_stream(io.BytesIO(raw), sink, unwrap, associated=associated)
        except DecryptionError as exc:
            raise DecryptionError(f"blob {ref.blob_hash[:12]}…: {exc}") from None
        if ref.content_hash and sink.sha.hexdigest() != ref.content_hash:
            raise IntegrityFailure(f"blob {ref.blob_hash[:12]}… decrypted to content that does not match "
                                   "the recorded content hash")
        return sink.buf.getvalue()

    # ---- sealed (already encrypted) blobs ------------------------------------
    def put_sealed(self, ciphertext: bytes) -> str:
        """Store bytes that are already STREAM ciphertext; return their address.

        Why: a partitioned version is sealed partition by partition where the data
        is (a Spark executor), under the version's one data key; the store only
        adds content addressing and the atomic, fsynced write."""
        blob_hash = hashlib.sha256(ciphertext).hexdigest()
        if self.path_for(blob_hash).exists():
            return blob_hash
        with self._content_addressed() as writer:
            writer.write(ciphertext)
        return blob_hash

    def get_sealed(self, blob_hash: str, *, what: str = "blob") -> bytes:
        """The ciphertext at ``blob_hash``, checked against its address (IntegrityFailure otherwise)."""
        path = self.path_for(blob_hash)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise IntegrityFailure(f"{what} {blob_hash[:12]}… is missing from {self.dir}") from None
        if hashlib.sha256(raw).hexdigest() != blob_hash:
            raise IntegrityFailure(f"{what} {path} does not match its address: the file was modified or replaced")
        return raw

    def delete_address(self, blob_hash: str) -> bool:
        """Remove the ciphertext at ``blob_hash``; True if a file was removed."""
        path = self.path_for(blob_hash)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        fsync_dir(path.parent)
        return True

    # ---- frames ------------------------------------------------------------
    def put_frame(self, session: Session, df: pd.DataFrame, *, associated: bytes) -> BlobRef:
        """Store ``df`` as Parquet; ``content_hash`` is the sha256 of those Parquet bytes."""
        buf = io.BytesIO()
        df.to_parquet(buf, engine="pyarrow", index=True)
        buf.seek(0)
        return self.put_bytes(session, buf, associated=associated)

    def get_frame(self, session: Session, ref: BlobRef, *, associated: bytes) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(io.BytesIO(self.get_bytes(session, ref, associated=associated)), engine="pyarrow")

    def delete(self, ref: BlobRef) -> bool:
        """Remove the ciphertext; True if a file was removed.

        After crypto-shredding the key is what matters, but erasure removes the
        blob too: a key that turns up later (an old backup) then finds nothing in
        this workspace to decrypt.
        """
        return self.delete_address(ref.blob_hash)
