"""Streaming authenticated encryption of blobs at rest (STREAM over AES-256-GCM).

Why a STREAM construction rather than one AES-GCM call: a dataset version may be
larger than memory, and a single GCM message caps out at 64 GiB and must be held
whole to be verified. Cutting the payload into chunks that are each sealed with
a nonce ``prefix(7) ‖ counter(4, BE) ‖ last-chunk flag(1)`` keeps memory bounded
by a couple of chunks while still detecting truncation, reordering, dropping,
duplication and splicing (Hoang, Reyhanitabar, Rogaway, Vizár 2015). The whole
header is associated data of every chunk, together with the caller's
``associated`` bytes, so that editing the header or moving a file to another
dataset/version fails too. The byte layout is specified in ``docs/format.md``.

Callers never choose nonces (the prefix is random per file) and every failure is
one exception type, :class:`DecryptionError`, with a message a user can act on.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO, Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from governance.errors import InputError, IntegrityFailure, PrivgovError

MAGIC = b"\x89PGV\r\n\x1a\n"
FORMAT_VERSION = 1
KEY_SIZE = 32
TAG_SIZE = 16
PREFIX_SIZE = 7
CHECK_SIZE = 16
DEFAULT_CHUNK_SIZE = 65536
MIN_CHUNK_SIZE = 16
MAX_CHUNK_SIZE = 1 << 24
MAX_KEY_ID = 255
MAX_WRAPPED = 4096
MAX_CHUNKS = 1 << 32  # the counter is 4 bytes

_FIXED = struct.Struct(">8sBI7sB")  # magic, version, chunk size, nonce prefix, key id length
_KEY_CHECK_LABEL = b"privgov/stream/v1/key-check"
_CONTEXT_LABEL = b"privgov/stream/v1/context"

Unwrap = Callable[[str, bytes], bytes]


class DecryptionError(IntegrityFailure):
    """The ciphertext could not be authenticated: tampered, truncated, wrong key or context."""


@dataclass(frozen=True)
class Header:
    """Parsed (not yet authenticated) file header; ``raw`` is the exact bytes on disk."""

    version: int
    chunk_size: int
    nonce_prefix: bytes
    key_id: str
    wrapped_key: bytes
    key_check: bytes
    context_check: bytes
    raw: bytes

    @property
    def size(self) -> int:
        return len(self.raw)


def _check(key: bytes, label: bytes, prefix: bytes, extra: bytes = b"") -> bytes:
    """Keyed check value: lets a reader tell 'wrong key' from 'wrong context' from 'tampered'."""
    return hmac.new(key, label + prefix + extra, hashlib.sha256).digest()[:CHECK_SIZE]


def _build_header(data_key: bytes, key_id: str, wrapped_key: bytes, associated: bytes,
                  chunk_size: int) -> Header:
    kid = key_id.encode("utf-8")
    if not 1 <= len(kid) <= MAX_KEY_ID:
        raise InputError(f"key id must be 1..{MAX_KEY_ID} UTF-8 bytes, got {len(kid)}")
    if len(wrapped_key) > MAX_WRAPPED:
        raise InputError(f"wrapped key must be at most {MAX_WRAPPED} bytes, got {len(wrapped_key)}")
    prefix = os.urandom(PREFIX_SIZE)
    key_check = _check(data_key, _KEY_CHECK_LABEL, prefix)
    context_check = _check(data_key, _CONTEXT_LABEL, prefix, associated)
    raw = b"".join([
        _FIXED.pack(MAGIC, FORMAT_VERSION, chunk_size, prefix, len(kid)), kid,
        struct.pack(">H", len(wrapped_key)), wrapped_key, key_check, context_check,
    ])
    return Header(FORMAT_VERSION, chunk_size, prefix, key_id, bytes(wrapped_key), key_check,
                  context_check, raw)


def _read_exact(src: BinaryIO, n: int) -> bytes:
    out = bytearray(n)
    got = _read_into(src, memoryview(out))
    return bytes(out[:got])


def _read_into(src: BinaryIO, view: memoryview) -> int:
    """Fill ``view`` from ``src`` (looping over short reads); return bytes read (< len only at EOF)."""
    got, want = 0, len(view)
    readinto = getattr(src, "readinto", None)
    while got < want:
        if readinto is not None:
            k = readinto(view[got:])
        else:
            data = src.read(want - got)
            k = len(data)
            view[got:got + k] = data
        if not k:
            break
        got += k
    return got


def read_header(src: BinaryIO) -> Header:
    """Parse the header at the current position of ``src`` (no authentication yet).

    Why separate: the object store and ``privgov inspect`` need the key id before
    they can fetch the key. Nothing read here is trusted until a chunk verifies.
    """
    fixed = _read_exact(src, _FIXED.size)
    if len(fixed) < len(MAGIC) or fixed[: len(MAGIC)] != MAGIC:
        raise DecryptionError("not a privgov encrypted file (bad magic bytes)")
    if len(fixed) < _FIXED.size:
        raise DecryptionError("encrypted file is truncated inside its header")
    magic, version, chunk_size, prefix, kid_len = _FIXED.unpack(fixed)
    if version != FORMAT_VERSION:
        raise DecryptionError(
            f"unsupported encrypted format version {version} (this privgov reads {FORMAT_VERSION})")
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE or kid_len == 0:
        raise DecryptionError("encrypted file header is malformed (chunk size or key id length)")
    kid = _read_exact(src, kid_len)
    wlen_raw = _read_exact(src, 2)
    if len(kid) < kid_len or len(wlen_raw) < 2:
        raise DecryptionError("encrypted file is truncated inside its header")
    (wlen,) = struct.unpack(">H", wlen_raw)
    if wlen > MAX_WRAPPED:
        raise DecryptionError("encrypted file header is malformed (wrapped key length)")
    rest = _read_exact(src, wlen + 2 * CHECK_SIZE)
    if len(rest) < wlen + 2 * CHECK_SIZE:
        raise DecryptionError("encrypted file is truncated inside its header")
    try:
        key_id = kid.decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptionError("encrypted file header is malformed (key id is not UTF-8)") from None
    return Header(
        version=version, chunk_size=chunk_size, nonce_prefix=prefix, key_id=key_id,
        wrapped_key=rest[:wlen], key_check=rest[wlen:wlen + CHECK_SIZE],
        context_check=rest[wlen + CHECK_SIZE:], raw=fixed + kid + wlen_raw + rest,
    )


def _nonce(prefix: bytes, counter: int, final: bool) -> bytes:
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if final else b"\x00")


def encrypt_stream(src: BinaryIO, dst: BinaryIO, data_key: bytes, *, key_id: str,
                   wrapped_key: bytes, associated: bytes, chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    """Encrypt ``src`` to ``dst`` chunk by chunk; return the number of plaintext bytes.

    Every chunk but the last holds exactly ``chunk_size`` plaintext bytes; the last
    holds fewer (possibly zero) and carries the last-chunk flag, so a reader can
    always tell a complete file from one cut at a chunk boundary. Memory use is
    two chunk buffers whatever the size of the input.
    """
    if len(data_key) != KEY_SIZE:
        raise InputError(f"data key must be {KEY_SIZE} bytes (AES-256), got {len(data_key)}")
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise InputError(f"chunk size must be {MIN_CHUNK_SIZE}..{MAX_CHUNK_SIZE} bytes, got {chunk_size}")
    associated = bytes(associated)
    header = _build_header(data_key, key_id, wrapped_key, associated, chunk_size)
    dst.write(header.raw)
    aead, aad = AESGCM(data_key), header.raw + associated
    inbuf, outbuf = bytearray(chunk_size), bytearray(chunk_size + TAG_SIZE)
    inview, outview = memoryview(inbuf), memoryview(outbuf)
    total = 0
    for counter in range(MAX_CHUNKS):
        n = _read_into(src, inview)
        final = n < chunk_size
        aead.encrypt_into(_nonce(header.nonce_prefix, counter, final), inview[:n], aad,
                          outview[: n + TAG_SIZE])
        dst.write(outview[: n + TAG_SIZE])
        total += n
        if final:
            return total
    raise InputError(f"input too large for one encrypted file ({MAX_CHUNKS} chunks of {chunk_size} bytes)")


def _unwrap_key(unwrap: Unwrap, header: Header) -> bytes:
    try:
        key = unwrap(header.key_id, header.wrapped_key)
    except PrivgovError:
        raise  # e.g. KeyDestroyed: already a clear, specific message
    except Exception as exc:  # a tampered key id/wrapped key surfaces here as KeyError, InvalidTag...
        raise DecryptionError(
            f"cannot obtain the data key for key id {header.key_id!r} "
            f"({type(exc).__name__}): unknown key or tampered header") from None
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_SIZE:
        raise DecryptionError(f"data key for key id {header.key_id!r} is not a {KEY_SIZE}-byte key")
    return bytes(key)


def decrypt_stream(src: BinaryIO, dst: BinaryIO, unwrap: Unwrap, *, associated: bytes) -> int:
    """Decrypt ``src`` to ``dst``; return the number of plaintext bytes written.

    ``unwrap(key_id, wrapped_key)`` returns the 32-byte data key named by the header.
    Each chunk is authenticated before it is written, but a truncated or tampered
    file is only known to be bad when this function raises: callers that must
    never expose partial plaintext decrypt into memory or a ciphertext-free sink
    and discard it on :class:`DecryptionError`.
    """
    associated = bytes(associated)
    header = read_header(src)
    key = _unwrap_key(unwrap, header)
    if not hmac.compare_digest(_check(key, _KEY_CHECK_LABEL, header.nonce_prefix), header.key_check):
        raise DecryptionError(
            f"wrong data key for key id {header.key_id!r} (or the header's key check was edited)")
    if not hmac.compare_digest(_check(key, _CONTEXT_LABEL, header.nonce_prefix, associated),
                               header.context_check):
        raise DecryptionError(
            "wrong associated data: the file is bound to another dataset/version/kind "
            "(or the header was edited)")
    chunk_size, seg = header.chunk_size, header.chunk_size + TAG_SIZE
    aead, aad = AESGCM(key), header.raw + associated
    inbuf, outbuf = bytearray(seg), bytearray(chunk_size)
    inview, outview = memoryview(inbuf), memoryview(outbuf)
    total = 0
    for counter in range(MAX_CHUNKS):
        n = _read_into(src, inview)
        if n == 0:
            raise DecryptionError(
                f"encrypted file is truncated: it ends after chunk {counter - 1} without a final chunk"
                if counter else "encrypted file is truncated: no chunk after the header")
        if n < TAG_SIZE:
            raise DecryptionError(f"encrypted file is truncated inside chunk {counter}")
        final = n < seg
        try:
            aead.decrypt_into(_nonce(header.nonce_prefix, counter, final), inview[:n], aad,
                              outview[: n - TAG_SIZE])
        except InvalidTag:
            what = "final chunk" if final else "chunk"
            raise DecryptionError(
                f"{what} {counter} failed authentication: the file was modified, truncated, "
                "or has chunks dropped, duplicated, reordered or spliced from another file") from None
        dst.write(outview[: n - TAG_SIZE])
        total += n - TAG_SIZE
        if final:  # a short read means EOF: nothing can follow the final chunk
            return total
    raise DecryptionError(f"encrypted file has more than {MAX_CHUNKS} chunks")


def encrypt_bytes(data: bytes, data_key: bytes, *, key_id: str, associated: bytes,
                  wrapped_key: bytes = b"", chunk_size: int = DEFAULT_CHUNK_SIZE) -> bytes:
    """In-memory convenience over :func:`encrypt_stream` (same format)."""
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, data_key, key_id=key_id, wrapped_key=wrapped_key,
                   associated=associated, chunk_size=chunk_size)
    return out.getvalue()


def decrypt_bytes(blob: bytes, unwrap: Unwrap, *, associated: bytes) -> bytes:
    """In-memory convenience over :func:`decrypt_stream`; never returns partial plaintext."""
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(blob), out, unwrap, associated=associated)
    return out.getvalue()


def fixed_key(data_key: bytes) -> Unwrap:
    """An ``unwrap`` callable that always returns ``data_key`` (for standalone files and tests)."""
    return lambda _key_id, _wrapped: data_key


class EncryptingWriter:
    """Push-mode :func:`encrypt_stream`: ``write()`` plaintext as it is produced, ``close()`` seals it.

    Why: a Parquet writer fed batch by batch *pushes* bytes, while ``encrypt_stream`` *pulls*
    them. The output is byte-for-byte the format ``encrypt_stream`` writes (full chunks are
    never final; ``close()`` writes the short - possibly empty - final chunk), so
    :func:`decrypt_stream` reads it unchanged. Memory: one chunk of plaintext buffered.
    A writer that is never closed leaves a file without a final chunk, which never decrypts.
    """

    def __init__(self, dst: BinaryIO, data_key: bytes, *, key_id: str, wrapped_key: bytes, associated: bytes,
                 chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if len(data_key) != KEY_SIZE:
            raise InputError(f"data key must be {KEY_SIZE} bytes (AES-256), got {len(data_key)}")
        if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
            raise InputError(f"chunk size must be {MIN_CHUNK_SIZE}..{MAX_CHUNK_SIZE} bytes, got {chunk_size}")
        associated = bytes(associated)
        self._header = _build_header(data_key, key_id, wrapped_key, associated, chunk_size)
        self._dst, self._chunk = dst, chunk_size
        self._aead, self._aad = AESGCM(data_key), self._header.raw + associated
        self._buf = bytearray()
        self._counter = 0
        self.total = 0
        self.closed = False
        dst.write(self._header.raw)

    def writable(self) -> bool:
        return True

    def _seal(self, data: bytes | memoryview, final: bool) -> None:
        if self._counter >= MAX_CHUNKS:
            raise InputError(f"input too large for one encrypted file ({MAX_CHUNKS} chunks of {self._chunk} bytes)")
        nonce = _nonce(self._header.nonce_prefix, self._counter, final)
        self._dst.write(self._aead.encrypt(nonce, bytes(data), self._aad))
        self._counter += 1

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self.closed:
            raise ValueError("write to a closed EncryptingWriter")
        view = memoryview(data).cast("B")
        n = len(view)
        self.total += n
        self._buf += view
        if len(self._buf) > self._chunk:  # keep at least one byte back: only close() may seal the final chunk
            whole = (len(self._buf) - 1) // self._chunk * self._chunk
            mv = memoryview(self._buf)
            for start in range(0, whole, self._chunk):
                self._seal(mv[start:start + self._chunk], final=False)
            mv.release()
            del self._buf[:whole]
        return n

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """Seal the remaining bytes as the final chunk (a full chunk then an empty final one, as encrypt_stream)."""
        if self.closed:
            return
        if len(self._buf) == self._chunk:
            self._seal(memoryview(self._buf), final=False)
            self._buf.clear()
        self._seal(memoryview(self._buf), final=True)
        self._buf.clear()
        self.closed = True
