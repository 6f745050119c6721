"""Partitioned dataset versions: one STREAM-encrypted Parquet file per partition, one sealed manifest.

Why: a version written by Spark is produced partition by partition on executors
that hold only that partition. Each executor seals its own Parquet bytes (in
memory, never on disk) under the version's data key; the driver stores the
ciphertexts and seals a manifest that lists them. The manifest is what makes the
set of files one version:

* each partition file is encrypted with associated data binding dataset,
  version, kind and its *index*, so a file cannot take another's place, even
  one from another version under the same key;
* the manifest (AEAD under the same data key, associated data binding dataset,
  version and kind, and its body restating them and the key id) lists every
  partition's index, row count, ciphertext sha256 and plaintext sha256, so a
  missing, duplicated, reordered, truncated or swapped file is refused;
* the version row records the manifest's address and the sha256 of its
  plaintext, so the manifest of another version cannot be substituted either.

Only the data key ever leaves the driver (to executors, in the task closure);
the key-encryption key never does. Nothing here imports Spark: reading a
partitioned version back needs only pyarrow.
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from governance.errors import IntegrityFailure
from governance.storage import aad
from governance.storage.crypto import DecryptionError, decrypt_bytes, encrypt_bytes, fixed_key

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

    from governance.storage.objectstore import ObjectStore

FORMAT = "privgov-partitioned/1"
LAYOUT = "partitioned"


@dataclass(frozen=True)
class Binding:
    """What every file of one partitioned version is bound to (and nothing secret)."""

    dataset: str
    version: int
    kind: str
    data_key_id: int

    @property
    def key_id(self) -> str:
        from governance.storage.objectstore import key_label

        return key_label(self.data_key_id)


@dataclass(frozen=True)
class SealedPartition:
    """One partition as it leaves an executor: ciphertext and the facts the manifest records."""

    index: int
    rows: int
    content_sha256: str
    ciphertext: bytes


@dataclass(frozen=True)
class Entry:
    """A manifest line: which file is partition ``index`` and what it must decrypt to."""

    index: int
    rows: int
    sha256: str
    content_sha256: str


def seal_partition(binding: Binding, data_key: bytes, index: int, parquet: bytes, rows: int) -> SealedPartition:
    """Encrypt one partition's Parquet bytes (runs on an executor, with the data key only)."""
    blob = encrypt_bytes(parquet, data_key, key_id=binding.key_id,
                         associated=aad.partition(binding.dataset, binding.version, binding.kind, index))
    return SealedPartition(index=index, rows=rows, content_sha256=hashlib.sha256(parquet).hexdigest(),
                           ciphertext=blob)


def manifest_body(binding: Binding, entries: list[Entry]) -> bytes:
    """Canonical JSON of the manifest; its sha256 is the version's content hash."""
    doc = {
        "format": FORMAT, "dataset": binding.dataset, "version": binding.version, "kind": binding.kind,
        "key_id": binding.key_id, "row_count": sum(e.rows for e in entries),
        "partitions": [{"index": e.index, "rows": e.rows, "sha256": e.sha256, "content_sha256": e.content_sha256}
                       for e in entries],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def seal_manifest(binding: Binding, data_key: bytes, entries: list[Entry]) -> tuple[bytes, str]:
    """(manifest ciphertext, sha256 of its plaintext)."""
    body = manifest_body(binding, entries)
    blob = encrypt_bytes(body, data_key, key_id=binding.key_id,
                         associated=aad.manifest(binding.dataset, binding.version, binding.kind))
    return blob, hashlib.sha256(body).hexdigest()


def open_manifest(binding: Binding, data_key: bytes, blob: bytes, content_hash: str) -> list[Entry]:
    """Authenticate the manifest and check it lists partitions 0..n-1 once each, for this version."""
    where = f"dataset `{binding.dataset}` version {binding.version} manifest"
    try:
        body = decrypt_bytes(blob, fixed_key(data_key),
                             associated=aad.manifest(binding.dataset, binding.version, binding.kind))
    except DecryptionError as exc:
        raise DecryptionError(f"{where}: {exc}") from None
    if content_hash and hashlib.sha256(body).hexdigest() != content_hash:
        raise IntegrityFailure(f"{where} does not match the content hash recorded for the version")
    doc = json.loads(body)
    expected = {"format": FORMAT, "dataset": binding.dataset, "version": binding.version, "kind": binding.kind,
                "key_id": binding.key_id}
    for key, value in expected.items():
        if doc.get(key) != value:
            raise IntegrityFailure(f"{where}: field `{key}` is {doc.get(key)!r}, expected {value!r}")
    entries = [Entry(int(p["index"]), int(p["rows"]), str(p["sha256"]), str(p["content_sha256"]))
               for p in doc["partitions"]]
    if [e.index for e in entries] != list(range(len(entries))):
        raise IntegrityFailure(f"{where}: partitions are not numbered 0..{len(entries) - 1} in order")
    if sum(e.rows for e in entries) != doc.get("row_count"):
        raise IntegrityFailure(f"{where}: partition row counts do not add up to `row_count`")
    return entries


def open_partition(binding: Binding, data_key: bytes, entry: Entry, blob: bytes) -> bytes:
    """Decrypt partition ``entry.index``; its ciphertext must be the one the manifest names."""
    where = f"dataset `{binding.dataset}` version {binding.version} partition {entry.index}"
    if hashlib.sha256(blob).hexdigest() != entry.sha256:
        raise IntegrityFailure(f"{where}: the file is not the one the manifest lists (swapped or edited)")
    try:
        parquet = decrypt_bytes(blob, fixed_key(data_key),
                                associated=aad.partition(binding.dataset, binding.version, binding.kind, entry.index))
    except DecryptionError as exc:
        raise DecryptionError(f"{where}: {exc}") from None
    if hashlib.sha256(parquet).hexdigest() != entry.content_sha256:
        raise IntegrityFailure(f"{where}: decrypted content does not match the manifest")
    return parquet


def store_partitions(objects: "ObjectStore", binding: Binding, data_key: bytes,
                     sealed: Iterable[SealedPartition]) -> tuple[str, str, list[Entry]]:
    """Store every sealed partition, then the manifest; (manifest address, content hash, entries).

    Partitions arrive one at a time (memory bounded by one partition). On any
    failure every file already written is removed, so a failed write leaves
    nothing behind. Indexes must be exactly 0..n-1: Spark numbers partitions so.
    """
    written: list[str] = []
    entries: list[Entry] = []
    try:
        for part in sealed:
            address = objects.put_sealed(part.ciphertext)
            written.append(address)
            entries.append(Entry(part.index, part.rows, address, part.content_sha256))
        entries.sort(key=lambda e: e.index)
        if [e.index for e in entries] != list(range(len(entries))):
            raise IntegrityFailure(f"dataset `{binding.dataset}` version {binding.version}: the writer produced "
                                   f"partitions {[e.index for e in entries][:10]}, expected 0..{len(entries) - 1}")
        blob, content_hash = seal_manifest(binding, data_key, entries)
        address = objects.put_sealed(blob)
        written.append(address)
    except BaseException:
        for a in written:
            objects.delete_address(a)
        raise
    return address, content_hash, entries


def read_table(objects: "ObjectStore", binding: Binding, data_key: bytes, manifest_address: str,
               content_hash: str) -> "pa.Table":
    """Verify the manifest and every partition; the whole version as one Arrow table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    entries = open_manifest(binding, data_key, objects.get_sealed(manifest_address, what="manifest"), content_hash)
    tables = []
    for e in entries:
        blob = objects.get_sealed(e.sha256, what=f"partition {e.index}")
        table = pq.read_table(io.BytesIO(open_partition(binding, data_key, e, blob)))
        if table.num_rows != e.rows:
            raise IntegrityFailure(f"dataset `{binding.dataset}` version {binding.version} partition {e.index}: "
                                   f"{table.num_rows} rows, the manifest says {e.rows}")
        tables.append(table)
    if not tables:
        raise IntegrityFailure(f"dataset `{binding.dataset}` version {binding.version}: the manifest lists no partition")
    nonempty = [t for t in tables if t.num_rows] or tables[:1]
    return pa.concat_tables(nonempty, promote_options="permissive")


def read_frame(objects: "ObjectStore", binding: Binding, data_key: bytes, manifest_address: str,
               content_hash: str) -> "pd.DataFrame":
    """The version as a pandas frame, converted as ``pd.read_parquet`` converts a whole-file version."""
    import pyarrow.parquet as pq
    import pandas as pd

    table = read_table(objects, binding, data_key, manifest_address, content_hash)
    buf = io.BytesIO()  # in memory: the same pandas conversion (string dtype, metadata) as a single-file version
    pq.write_table(table, buf)
    buf.seek(0)
    return pd.read_parquet(buf, engine="pyarrow")


def partition_addresses(meta: dict[str, Any]) -> list[str]:
    """Addresses of a partitioned version's files (kept in clear so erasure can delete them unread)."""
    storage = meta.get("storage") if isinstance(meta, dict) else None
    if not isinstance(storage, dict) or storage.get("layout") != LAYOUT:
        return []
    return [str(a) for a in storage.get("partitions", [])]
