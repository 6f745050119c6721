"""Push-mode encryption: the same format as encrypt_stream, and nothing left behind on failure."""
from __future__ import annotations

import io
import os

import pytest

from governance.storage.crypto import (
    DecryptionError, EncryptingWriter, decrypt_bytes, encrypt_stream, fixed_key,
)

KEY = os.urandom(32)


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 32, 33, 1000])
def test_push_writer_matches_encrypt_stream_format(size) -> None:
    data = os.urandom(size)
    out = io.BytesIO()
    w = EncryptingWriter(out, KEY, key_id="k", wrapped_key=b"", associated=b"ctx", chunk_size=16)
    for i in range(0, size, 7):
        w.write(data[i:i + 7])
    w.close()
    ref = io.BytesIO()
    encrypt_stream(io.BytesIO(data), ref, KEY, key_id="k", wrapped_key=b"", associated=b"ctx", chunk_size=16)
    assert len(out.getvalue()) == len(ref.getvalue())
    assert decrypt_bytes(out.getvalue(), fixed_key(KEY), associated=b"ctx") == data


def test_unclosed_writer_never_decrypts() -> None:
    """A stream cut off before close() has no final chunk: truncation is detected, not passed off as whole."""
    out = io.BytesIO()
    w = EncryptingWriter(out, KEY, key_id="k", wrapped_key=b"", associated=b"ctx", chunk_size=16)
    w.write(os.urandom(100))
    with pytest.raises(DecryptionError, match="truncated|final"):
        decrypt_bytes(out.getvalue(), fixed_key(KEY), associated=b"ctx")


def test_open_blob_leaves_nothing_on_failure(tmp_path) -> None:
    from governance.storage.blob_writer import open_blob
    from tests.conftest import new_workspace

    ws, _ = new_workspace(tmp_path / "ws")
    with ws.session() as s:
        with pytest.raises(RuntimeError):
            with open_blob(ws.objects, s, associated=b"ctx") as sink:
                sink.write(b"secret plaintext" * 100)
                raise RuntimeError("writer failed mid-stream")
    assert not [p for p in (ws.root / "objects").rglob("*") if p.is_file()]
    with ws.session() as s:
        with open_blob(ws.objects, s, associated=b"ctx") as sink:
            sink.write(b"secret plaintext" * 100)
        assert ws.objects.get_bytes(s, sink.ref, associated=b"ctx") == b"secret plaintext" * 100
    blob = ws.objects.path_for(sink.ref.blob_hash).read_bytes()
    assert b"secret plaintext" not in blob
