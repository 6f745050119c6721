"""STREAM encryption: round trips for every size class and the full tamper matrix."""
from __future__ import annotations

import io
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.storage.crypto import (
    MAGIC,
    TAG_SIZE,
    DecryptionError,
    decrypt_bytes,
    decrypt_stream,
    encrypt_bytes,
    encrypt_stream,
    fixed_key,
    read_header,
)
from governance.errors import InputError, IntegrityFailure

KEY = bytes(range(32))
AD = b"privgov:dataset=clinic;version=3;kind=data"
CHUNK = 64


def enc(data: bytes, key: bytes = KEY, ad: bytes = AD, chunk: int = CHUNK) -> bytes:
    return encrypt_bytes(data, key, key_id="dk-1", associated=ad, chunk_size=chunk)


def dec(blob: bytes, key: bytes = KEY, ad: bytes = AD) -> bytes:
    return decrypt_bytes(blob, fixed_key(key), associated=ad)


def split(blob: bytes, chunk: int = CHUNK) -> tuple[bytes, list[bytes]]:
    """Header and the list of sealed chunks (each chunk + tag) of a blob."""
    hlen = read_header(io.BytesIO(blob)).size
    body, seg = blob[hlen:], chunk + TAG_SIZE
    return blob[:hlen], [body[i:i + seg] for i in range(0, len(body), seg)]


# ---- round trips --------------------------------------------------------------

sizes = st.one_of(
    st.just(0),
    st.integers(min_value=1, max_value=5).map(lambda k: k * CHUNK),  # exact multiples
    st.integers(min_value=1, max_value=5).map(lambda k: k * CHUNK - 1),
    st.integers(min_value=1, max_value=5).map(lambda k: k * CHUNK + 1),
    st.integers(min_value=0, max_value=2000),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=sizes, seed=st.binary(min_size=4, max_size=4))
def test_round_trip_any_size(size: int, seed: bytes) -> None:
    data = (seed * (size // 4 + 1))[:size]
    blob = enc(data)
    assert dec(blob) == data
    header, chunks = split(blob)
    # one final chunk always present, holding fewer than CHUNK bytes (maybe none)
    assert len(chunks) == size // CHUNK + 1
    assert len(chunks[-1]) == size % CHUNK + TAG_SIZE
    assert data == b"" or data not in blob


def test_streams_return_byte_counts_and_use_random_nonces() -> None:
    data = os.urandom(1000)
    out = io.BytesIO()
    assert encrypt_stream(io.BytesIO(data), out, KEY, key_id="k", wrapped_key=b"w", associated=AD,
                          chunk_size=CHUNK) == 1000
    sink = io.BytesIO()
    out.seek(0)
    assert decrypt_stream(out, sink, fixed_key(KEY), associated=AD) == 1000
    assert sink.getvalue() == data
    h1, h2 = read_header(io.BytesIO(enc(data))), read_header(io.BytesIO(enc(data)))
    assert h1.nonce_prefix != h2.nonce_prefix and len(h1.nonce_prefix) == 7


def test_header_fields_and_unwrap_gets_them() -> None:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(b"abc"), out, KEY, key_id="kek-2:dk-9", wrapped_key=b"WRAPPED",
                   associated=AD, chunk_size=4096)
    blob = out.getvalue()
    h = read_header(io.BytesIO(blob))
    assert blob.startswith(MAGIC) and h.version == 1 and h.chunk_size == 4096
    assert (h.key_id, h.wrapped_key) == ("kek-2:dk-9", b"WRAPPED")
    seen = []
    assert decrypt_bytes(blob, lambda kid, w: seen.append((kid, w)) or KEY, associated=AD) == b"abc"
    assert seen == [("kek-2:dk-9", b"WRAPPED")]


def test_short_reads_from_pipes_are_handled() -> None:
    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data = data

        def readable(self) -> bool:
            return True

        def readinto(self, view) -> int:  # type: ignore[override]
            n = min(3, len(view), len(self.data))
            view[:n], self.data = self.data[:n], self.data[n:]
            return n

    data = os.urandom(500)
    blob = io.BytesIO()
    encrypt_stream(Trickle(data), blob, KEY, key_id="k", wrapped_key=b"", associated=AD, chunk_size=CHUNK)
    out = io.BytesIO()
    decrypt_stream(Trickle(blob.getvalue()), out, fixed_key(KEY), associated=AD)
    assert out.getvalue() == data


def test_bad_arguments_are_input_errors() -> None:
    with pytest.raises(InputError, match="32 bytes"):
        enc(b"x", key=b"short")
    with pytest.raises(InputError, match="chunk size"):
        enc(b"x", chunk=0)


# ---- tamper matrix --------------------------------------------------------------

DATA = bytes(range(256)) * 2 + b"tail"  # 516 bytes: 8 full chunks + a 4-byte final chunk
BLOB = enc(DATA)


def test_decryption_error_is_an_integrity_failure() -> None:
    assert issubclass(DecryptionError, IntegrityFailure) and DecryptionError.exit_code == 4


def test_every_single_bit_flip_is_detected() -> None:
    for pos in range(len(BLOB)):
        for bit in (0, 7):
            bad = bytearray(BLOB)
            bad[pos] ^= 1 << bit
            with pytest.raises(DecryptionError):
                dec(bytes(bad))


@pytest.mark.parametrize("blob_size", [0, CHUNK * 3, CHUNK * 3 + 10])
def test_truncation_at_every_chunk_boundary_and_inside_chunks(blob_size: int) -> None:
    blob = enc(os.urandom(blob_size))
    header, chunks = split(blob)
    cuts = {len(header) + sum(len(c) for c in chunks[:i]) for i in range(len(chunks))}
    cuts |= {len(blob) - 1, len(header) + 1, len(header) - 1, 3, 0}
    for cut in sorted(cuts):
        with pytest.raises(DecryptionError, match="truncated|failed authentication|magic"):
            dec(blob[:cut])


def test_missing_final_chunk_names_truncation() -> None:
    header, chunks = split(BLOB)
    with pytest.raises(DecryptionError, match="truncated"):
        dec(header + b"".join(chunks[:-1]))


def test_dropped_duplicated_and_reordered_chunks() -> None:
    header, chunks = split(BLOB)
    variants = [
        chunks[:3] + chunks[4:],                      # dropped
        chunks[:3] + [chunks[3]] + chunks[3:],        # duplicated
        [chunks[1], chunks[0]] + chunks[2:],          # reordered
        chunks + [chunks[-1]],                        # final chunk repeated
        chunks[:-1] + [chunks[0]] + chunks[-1:],      # first chunk replayed later
    ]
    for body in variants:
        with pytest.raises(DecryptionError):
            dec(header + b"".join(body))


@pytest.mark.parametrize("extra", [1, TAG_SIZE, CHUNK + TAG_SIZE, 3 * CHUNK])
def test_bytes_appended_after_final_chunk(extra: int) -> None:
    with pytest.raises(DecryptionError, match="failed authentication"):
        dec(BLOB + bytes(extra))


def test_chunk_spliced_from_another_file_under_the_same_key() -> None:
    other = enc(DATA)  # same key, same associated data, same plaintext
    h1, c1 = split(BLOB)
    h2, c2 = split(other)
    with pytest.raises(DecryptionError, match="chunk 2 failed"):
        dec(h1 + b"".join(c1[:2] + [c2[2]] + c1[3:]))
    with pytest.raises(DecryptionError, match="chunk 0 failed"):
        dec(h1 + b"".join(c2))  # whole body under another header


def test_header_edits() -> None:
    header, chunks = split(BLOB)
    body = b"".join(chunks)
    with pytest.raises(DecryptionError, match="not a privgov"):
        dec(b"NOTPRIVG" + BLOB[8:])
    with pytest.raises(DecryptionError, match="not a privgov"):
        dec(b"plain text, not encrypted at all")
    with pytest.raises(DecryptionError, match="unsupported encrypted format version 2"):
        dec(BLOB[:8] + b"\x02" + BLOB[9:])
    # another chunk size, same everything else: checks still match, the chunks fail
    edited = bytearray(header)
    edited[9:13] = (CHUNK * 2).to_bytes(4, "big")
    with pytest.raises(DecryptionError, match="failed authentication"):
        dec(bytes(edited) + body)
    # another key id / wrapped key the unwrapper happens to accept
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(DATA), out, KEY, key_id="dk-1", wrapped_key=b"AAAA", associated=AD,
                   chunk_size=CHUNK)
    blob = out.getvalue()
    with pytest.raises(DecryptionError, match="failed authentication"):
        dec(blob.replace(b"AAAA", b"AAAB", 1))
    with pytest.raises(DecryptionError, match="unknown key or tampered header"):
        decrypt_bytes(blob.replace(b"dk-1", b"dk-2", 1), lambda kid, w: {"dk-1": KEY}[kid], associated=AD)


def test_wrong_key() -> None:
    with pytest.raises(DecryptionError, match="wrong data key"):
        dec(BLOB, key=os.urandom(32))


def test_wrong_associated_data() -> None:
    with pytest.raises(DecryptionError, match="wrong associated data"):
        dec(BLOB, ad=b"privgov:dataset=clinic;version=4;kind=data")
    with pytest.raises(DecryptionError, match="wrong associated data"):
        dec(BLOB, ad=b"")


def test_memory_is_bounded_by_chunks_not_size() -> None:
    """Encrypting 8 MiB through streams never allocates more than a few chunks at once."""
    import tracemalloc

    class Zeros(io.RawIOBase):
        def __init__(self, n: int) -> None:
            self.left = n

        def readable(self) -> bool:
            return True

        def readinto(self, view) -> int:  # type: ignore[override]
            n = min(len(view), self.left)
            view[:n] = bytes(n)
            self.left -= n
            return n

    class Null(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, b) -> int:  # type: ignore[override]
            return len(b)

    tracemalloc.start()
    try:
        encrypt_stream(Zeros(8 << 20), Null(), KEY, key_id="k", wrapped_key=b"", associated=AD,
                       chunk_size=65536)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 65536
