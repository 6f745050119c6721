"""Write a Spark DataFrame as an encrypted, partitioned dataset version.

Why executors seal their own partitions: the plaintext of a partition exists
only in the memory of the executor that computed it. `mapInArrow` hands each
task its partition as Arrow batches; the task writes them as Parquet into a
memory buffer, encrypts that buffer with the version's data key
(:func:`governance.storage.partitioned.seal_partition`) and returns only
ciphertext. The driver pulls the sealed partitions one at a time
(`toLocalIterator`, so its memory is bounded by one partition), stores them and
seals the manifest. The task closure carries the data key of this one version
(32 bytes) and the public binding; the keyring and the key-encryption key stay
on the driver.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator

from governance.storage import partitioned

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame
    from sqlalchemy.orm import Session

    from governance.storage.store import Dataset, DatasetVersion
    from governance.workspace import Workspace

_SEALED_SCHEMA = "index int, rows long, content_sha256 string, blob binary"


def sealer(sdf: "DataFrame") -> Callable[[partitioned.Binding, bytes], Iterator[partitioned.SealedPartition]]:
    """The ``seal`` callable :func:`catalog.write_partitioned_version` runs with the binding and data key."""
    from pyspark.sql.pandas.types import to_arrow_schema

    empty_schema = to_arrow_schema(sdf.schema)

    def seal(binding: partitioned.Binding, data_key: bytes) -> Iterator[partitioned.SealedPartition]:
        def task(batches: Iterator[Any]) -> Iterator[Any]:  # runs on an executor
            import io

            import pyarrow as pa
            import pyarrow.parquet as pq
            from pyspark import TaskContext

            from governance.storage.partitioned import seal_partition

            ctx = TaskContext.get()
            index = ctx.partitionId() if ctx is not None else 0
            buf, writer, rows = io.BytesIO(), None, 0
            for batch in batches:
                if writer is None:
                    writer = pq.ParquetWriter(buf, batch.schema)
                writer.write_batch(batch)
                rows += batch.num_rows
            if writer is None:
                writer = pq.ParquetWriter(buf, empty_schema)
            writer.close()
            part = seal_partition(binding, data_key, index, buf.getvalue(), rows)
            yield pa.RecordBatch.from_pydict(
                {"index": [part.index], "rows": [part.rows], "content_sha256": [part.content_sha256],
                 "blob": [part.ciphertext]},
                schema=pa.schema([("index", pa.int32()), ("rows", pa.int64()), ("content_sha256", pa.string()),
                                  ("blob", pa.binary())]))

        for row in sdf.mapInArrow(task, _SEALED_SCHEMA).toLocalIterator():
            yield partitioned.SealedPartition(index=int(row["index"]), rows=int(row["rows"]),
                                              content_sha256=str(row["content_sha256"]),
                                              ciphertext=bytes(row["blob"]))

    return seal


def schema_of(sdf: "DataFrame") -> list[dict[str, str]]:
    return [{"name": name, "dtype": dtype} for name, dtype in sdf.dtypes]


def write_version(ws: "Workspace", session: "Session", dataset: "Dataset", sdf: "DataFrame", *,
                  kind: str = "data", parent_id: int | None = None, steps: list[dict[str, Any]] | None = None,
                  meta: dict[str, Any] | None = None, validation_status: str = "unvalidated") -> "DatasetVersion":
    """Store ``sdf`` as the dataset's next version, partition by partition, encrypted on the executors."""
    from pyspark.sql import functions as F

    from governance.storage import catalog

    unit_count = None
    if dataset.privacy_unit and dataset.privacy_unit in sdf.columns:
        unit_count = int(sdf.select(F.countDistinct(F.col(dataset.privacy_unit))).first()[0])
    return catalog.write_partitioned_version(
        ws, session, dataset, sealer(sdf), schema=schema_of(sdf), unit_count=unit_count, kind=kind,
        parent_id=parent_id, steps=steps, meta=meta, validation_status=validation_status)
