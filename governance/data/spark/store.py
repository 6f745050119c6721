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
    import pandas as pd
    from pyspark.sql import DataFrame
    from sqlalchemy.orm import Session

    from governance.storage.store import Dataset, DatasetVersion
    from governance.workspace import Workspace

_SEALED_SCHEMA = "index int, rows long, content_sha256 string, blob binary"


def timestamp_types(df: "pd.DataFrame") -> dict[str, Any]:
    """Arrow types of the frame's timestamp columns, to store them as the pandas path would.

    Why: Spark keeps every timestamp as microseconds in UTC; a version written by
    pandas keeps the frame's own unit and (naive) zone. Casting back on the
    executor makes the stored version read back as the same frame."""
    import pyarrow as pa

    schema = pa.Schema.from_pandas(df, preserve_index=False)
    return {f.name: f.type for f in schema if pa.types.is_timestamp(f.type)}


def _cast(batch: Any, types: dict[str, Any]) -> Any:
    import pyarrow as pa

    if not types:
        return batch
    cols = [batch.column(i).cast(types[name]) if name in types else batch.column(i)
            for i, name in enumerate(batch.schema.names)]
    return pa.RecordBatch.from_arrays(cols, names=batch.schema.names)


def sealer(sdf: "DataFrame", like: dict[str, Any] | None = None,
           ) -> Callable[[partitioned.Binding, bytes], Iterator[partitioned.SealedPartition]]:
    """The ``seal`` callable :func:`catalog.write_partitioned_version` runs with the binding and data key.

    ``like``: column -> Arrow type to cast to on the executor (see :func:`timestamp_types`)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    types = {k: v for k, v in (like or {}).items() if k in sdf.columns}
    empty = to_arrow_schema(sdf.schema, timezone="UTC")
    empty_schema = _cast(pa.RecordBatch.from_pylist([], schema=empty), types).schema

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
                batch = _cast(batch, types)
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
                  like: dict[str, Any] | None = None, kind: str = "data", parent_id: int | None = None, steps: list[dict[str, Any]] | None = None,
                  meta: dict[str, Any] | None = None, validation_status: str = "unvalidated") -> "DatasetVersion":
    """Store ``sdf`` as the dataset's next version, partition by partition, encrypted on the executors."""
    from pyspark.sql import functions as F

    from governance.storage import catalog

    unit_count = None
    if dataset.privacy_unit and dataset.privacy_unit in sdf.columns:
        unit_count = int(sdf.select(F.countDistinct(F.col(dataset.privacy_unit))).first()[0])
    return catalog.write_partitioned_version(
        ws, session, dataset, sealer(sdf, like), schema=schema_of(sdf), unit_count=unit_count, kind=kind,
        parent_id=parent_id, steps=steps, meta=meta, validation_status=validation_status)
