"""Write an encrypted blob as its plaintext is produced, e.g. a Parquet file written batch by batch.

Why: :meth:`ObjectStore.put_frame` serialises a whole DataFrame in memory before encrypting it;
a streamed run must never hold the table (nor write plaintext to disk). Here the Parquet writer
pushes bytes into :class:`~governance.storage.crypto.EncryptingWriter`, which seals 64 KiB
chunks straight into the temp file beside the final path. The temp file holds ciphertext only,
is fsynced and renamed to its content address on success, and removed on any failure - the
same guarantees as :meth:`ObjectStore.put_bytes`, whose blobs this format matches exactly.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from governance.storage.crypto import EncryptingWriter
from governance.storage.objectstore import BlobRef, ObjectStore, key_label

if TYPE_CHECKING:  # pragma: no cover
    from sqlalchemy.orm import Session


class PlaintextSink:
    """The file object a Parquet writer writes to: hashes and counts the plaintext, then encrypts it."""

    def __init__(self, enc: EncryptingWriter) -> None:
        self._enc, self.sha, self.count = enc, hashlib.sha256(), 0
        self.closed = False
        self.ref: BlobRef | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.sha.update(data)
        n = self._enc.write(data)
        self.count += n
        return n

    def tell(self) -> int:
        return self.count

    def flush(self) -> None:
        pass

    def close(self) -> None:  # the context manager seals the blob; a writer closing its sink changes nothing
        self.closed = True


@contextmanager
def open_blob(store: ObjectStore, session: "Session", *, associated: bytes) -> Iterator[PlaintextSink]:
    """Yield a sink; on a clean exit the blob is sealed, stored under its address and ``sink.ref`` is set."""
    with store.new_blob(session) as blob:
        enc = EncryptingWriter(blob.writer, blob.key, key_id=key_label(blob.data_key_id), wrapped_key=b"",
                               associated=associated)
        sink = PlaintextSink(enc)
        yield sink
        enc.close()
    sink.ref = BlobRef(blob_hash=blob.blob_hash, data_key_id=blob.data_key_id, content_hash=sink.sha.hexdigest(),
                       size=sink.count)
