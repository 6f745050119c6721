"""`privgov dataset ...`: list, show, export (masked, audited) and erase."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from governance.access.authorize import require_admin
from governance.cli.common import JsonOpt, TokenOpt, WorkspaceOpt, _console, _open, _token, dataset_app, emit, jsonable


# --------------------------------------------------------------------------- datasets
@dataset_app.command("list")
def dataset_list(workspace: Optional[Path] = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """Datasets with their latest version, rows and validation status."""
    from rich.table import Table

    from governance.storage import catalog
    from governance.storage.store import Dataset

    ws = _open(workspace)
    table = Table("dataset", "versions", "latest", "rows", "validation", "tags", "lineage")
    found = []
    with ws.session() as s:
        for ds in s.query(Dataset).order_by(Dataset.name):
            vs = catalog.versions_of(s, ds, kind="data")
            last = vs[-1] if vs else None
            found.append({"dataset": ds.name, "versions": len(vs), "latest": last.version if last else None,
                          "rows": last.row_count if last else None,
                          "validation": last.validation_status if last else None,
                          "tags": list(ds.tags or []), "lineage_id": ds.lineage_id})
            table.add_row(ds.name, str(len(vs)), str(last.version if last else "-"),
                          f"{last.row_count:,}" if last else "-", last.validation_status if last else "-",
                          ",".join(ds.tags or []), ds.lineage_id[:12])
    emit(found, as_json, lambda: _console().print(table))


@dataset_app.command("show")
def dataset_show(name: str, workspace: Optional[Path] = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """Every version: rows, content hash, key id, validation status, lineage, erasure."""
    from rich.table import Table

    from governance.storage import catalog

    ws = _open(workspace)
    with ws.session() as s:
        ds = catalog.find_dataset(s, name)
        head = f"[bold]{ds.name}[/]  lineage {ds.lineage_id}  privacy unit {ds.privacy_unit or 'row'}  tags {ds.tags}"
        table = Table("version", "kind", "rows", "units", "content sha256", "data key", "validation", "parent", "erased")
        versions = catalog.versions_of(s, ds)
        number_of = {v.id: v.version for v in versions}
        result = {"dataset": ds.name, "lineage_id": ds.lineage_id, "privacy_unit": ds.privacy_unit or "row",
                  "tags": list(ds.tags or []), "versions": []}
        for v in versions:
            parent = number_of.get(v.parent_id)
            result["versions"].append({
                "version": v.version, "kind": v.kind, "rows": v.row_count, "units": v.unit_count,
                "content_sha256": v.content_hash, "data_key_id": v.data_key_id, "validation": v.validation_status,
                "parent": parent, "erased_at": v.erased_at})
            table.add_row(str(v.version), v.kind, f"{v.row_count:,}", str(v.unit_count or "-"), v.content_hash[:16],
                          str(v.data_key_id), v.validation_status, str(parent or "-"),
                          v.erased_at.strftime("%Y-%m-%d %H:%M") if v.erased_at else "")

    def human() -> None:
        out = _console()
        out.print(head)
        out.print(table)

    emit(result, as_json, human)


@dataset_app.command("erase")
def dataset_erase(
    name: str,
    version: int = typer.Option(..., "--version", help="Version to crypto-shred."),
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Crypto-shred a version (destroy its data key) and list everything derived from it."""
    from governance.storage import catalog

    ws = _open(workspace)
    with ws.lock():
        who = require_admin(ws, _token(token), "erase", resource=name).name
        with ws.session() as s:
            ds = catalog.find_dataset(s, name)
            rep = catalog.erase_version(ws, s, ds, version)
            ws.audit.record(s, principal=who, action="erase", decision="info", resource=name, version=version,
                            details={"affected_versions": rep.affected_versions, "affected_runs": len(rep.affected_runs),
                                     "kek_rotated_to": rep.rotated_to})
            ws.audit.checkpoint(s)
        catalog.finalize_erasure(ws, rep)

    def human() -> None:
        out = _console()
        out.print(f"Erased `{name}` version {version}: its data key is destroyed; the ciphertext can no longer be read.")
        out.print(f"  KEK rotated to {rep.rotated_to}; retired: {rep.retired_keks or 'none'}; "
                  f"blobs deleted: {rep.blobs_deleted}")
        out.print(f"  derived versions flagged: {rep.affected_versions or 'none'}")
        out.print(f"  models flagged (trained on it): {rep.affected_runs or 'none'}")
        out.print("  not covered: " + "; ".join(rep.not_covered))

    emit({"dataset": name, "version": version, **jsonable(rep)}, as_json, human)


@dataset_app.command("export")
def dataset_export(
    name: str,
    purpose: str = typer.Option(..., "--purpose", help="Why you need the data (required for every access)."),
    out: Path = typer.Option(..., "--out", help="CSV or Parquet file to write."),
    version: Optional[int] = typer.Option(None, "--version"),
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Write only what the principal may see (masks, row filters applied); the export is audited.

    Quarantine versions need the `read_quarantine` grant; a row filter that cannot be evaluated
    on the version denies."""
    from governance.access.export import export_version

    ws = _open(workspace)
    res = export_version(ws, _token(token), name, version, purpose, out)
    emit(res, as_json, lambda: _console().print(
        f"exported {res.rows:,} rows × {res.columns} columns of `{name}` v{res.version} ({res.kind}) to {out}"))
