"""`GET /v1/datasets`, `.../{name}/versions` and the masked, streamed download.

Why only through `governance.access`: which datasets a caller sees is decided
by `visibility` (docs/server.md), and a download is released by the same
`release_for_export` as `privgov dataset export` - decided as `read_masked`
(`read_quarantine` for a quarantine version), masks and row filter applied,
never the raw value of a masked column - then audited as an `export`. The frame
is serialized in memory and streamed; nothing is written to disk.
"""
from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from governance.access.export import record_export, release_for_export
from governance.access.visibility import require_visible, visible_datasets
from governance.server.auth import CurrentIdentity, WorkspaceDep
from governance.server.formats import MEDIA_TYPES, frame_chunks

router = APIRouter(prefix="/v1", tags=["datasets"])

DatasetName = Path(min_length=1, max_length=200, description="Dataset name.", examples=["clinic-visits"])


class DatasetOut(BaseModel):
    dataset: str = Field(examples=["clinic-visits"])
    tags: list[str] = Field(examples=[["phi"]])
    privacy_unit: str = Field(description="Who ε protects (`row`: each row is a person).", examples=["patient_id"])
    latest: int | None = Field(description="Latest data version (None before the first ingest).", examples=[1])
    rows: int | None = Field(description="Rows of the latest data version.", examples=[3000])
    validation: str | None = Field(description="Validation status of the latest data version.",
                                   examples=["passed"])


class VersionOut(BaseModel):
    version: int = Field(examples=[1])
    kind: str = Field(description="`data`, `quarantine` ...", examples=["data"])
    rows: int = Field(examples=[3000])
    content_sha256: str = Field(description="Hash of the plaintext content (encrypted at rest).",
                                examples=["9f2c..."])
    data_key_id: int | None = Field(examples=[3])
    validation: str = Field(examples=["passed"])
    parent: int | None = Field(description="Version this one was derived from.", examples=[None])
    erased_at: dt.datetime | None = Field(description="When it was crypto-shredded (unreadable since).",
                                          examples=[None])


@router.get("/datasets", name="list_datasets", response_model=list[DatasetOut])
def list_datasets(identity: CurrentIdentity, ws: WorkspaceDep) -> list[DatasetOut]:
    """The datasets the caller may see (admin, auditor: all; others: those their roles hold a live grant on)."""
    return [DatasetOut(dataset=v.ref.name, tags=list(v.ref.tags), privacy_unit=v.ref.unit,
                       latest=v.latest.version if v.latest is not None else None,
                       rows=v.latest.row_count if v.latest is not None else None,
                       validation=v.latest.validation_status if v.latest is not None else None)
            for v in visible_datasets(ws, identity)]


@router.get("/datasets/{name}/versions", name="list_versions", response_model=list[VersionOut])
def list_versions(identity: CurrentIdentity, ws: WorkspaceDep,
                  name: str = DatasetName) -> list[VersionOut]:
    """Every version of a visible dataset (metadata only); unknown and invisible datasets: the same 403."""
    from governance.storage import catalog
    from governance.storage.store import Dataset

    ref = require_visible(ws, identity, name, "list_versions")
    with ws.session() as s:
        versions = catalog.versions_of(s, s.get(Dataset, ref.id))
        number_of = {v.id: v.version for v in versions}
        return [VersionOut(version=v.version, kind=v.kind, rows=v.row_count, content_sha256=v.content_hash,
                           data_key_id=v.data_key_id, validation=v.validation_status,
                           parent=number_of.get(v.parent_id), erased_at=v.erased_at) for v in versions]


@router.get("/datasets/{name}/versions/{version}/download", name="download",
            response_class=StreamingResponse,
            responses={200: {"description": "The released rows (CSV or Parquet).",
                             "content": {MEDIA_TYPES["csv"]: {}, MEDIA_TYPES["parquet"]: {}}}})
def download(identity: CurrentIdentity, ws: WorkspaceDep, name: str = DatasetName,
             version: int = Path(ge=1, description="Version number.", examples=[1]),
             purpose: str = Query(min_length=1, max_length=200, description="Why (required for every access).",
                                  examples=["quality-review"]),
             format: Literal["csv", "parquet"] = Query("csv", description="File format of the download.")
             ) -> StreamingResponse:
    """The version as the caller may see it, like `privgov dataset export`; audited as `export`."""
    released = release_for_export(ws, identity, name, version, purpose)
    record_export(ws, identity, name, purpose, released, format=format, channel="http")
    chunks = frame_chunks(released.frame, format)  # encoded as it is sent
    filename = f"{name}-v{released.version}.{format}"
    return StreamingResponse(chunks, media_type=MEDIA_TYPES[format],
                             headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                      "Cache-Control": "no-store"})
