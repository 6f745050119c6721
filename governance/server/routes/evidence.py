"""Evidence over HTTP: the budget ledger, the audit log (export, verify) and the HTML report.

Why these roles: the CLI's `budget show`, `audit export/verify` and `report`
need no token because they need the workspace directory; over HTTP the token
is the credential, so (docs/server.md, `governance.access.visibility`):
the budget of a dataset is shown to whoever may see the dataset; the audit
log and the report - which name every principal, dataset and decision - to the
`admin` and `auditor` roles only. Each read is audited (allow or deny).
"""
from __future__ import annotations

import tempfile
from pathlib import Path as FilePath

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from governance.access.visibility import require_role, require_visible
from governance.evidence.chain import VerifyReport
from governance.evidence.report import Scope, build_report, parse_time
from governance.evidence.verify import verify_workspace
from governance.server.auth import CurrentIdentity, WorkspaceDep
from privacy.filter import BudgetStatus

router = APIRouter(prefix="/v1", tags=["evidence"])

Since = Query(None, max_length=40, description="ISO date or date-time (UTC): only what happened since then.",
              examples=["2026-11-01"])


class BudgetOut(BaseModel):
    dataset: str = Field(examples=["clinic-visits"])
    status: BudgetStatus = Field(description="The lineage's ledger, as `privgov budget show --json` prints it.")


class VerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trusted_key: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$", description="The Ed25519 "
                                    "public key you kept (64 hex characters); only hex - the server never reads "
                                    "a file named by a caller.", examples=["3b6a27bc" * 8])


@router.get("/budget/{dataset}", name="budget_show", response_model=BudgetOut)
def budget(identity: CurrentIdentity, ws: WorkspaceDep,
           dataset: str = Path(min_length=1, max_length=200, examples=["clinic-visits"])) -> BudgetOut:
    """Cap, spent, reserved and remaining ε of a visible dataset's lineage, with per-run history."""
    ref = require_visible(ws, identity, dataset, "budget_show")
    return BudgetOut(dataset=ref.name, status=ws.ledger.status(ref.lineage_id, ref.unit))


@router.get("/audit/export", name="audit_export", response_class=Response,
            responses={200: {"description": "A verifiable JSONL extract (header, events, checkpoints); check "
                             "it anywhere with `privgov audit verify --file`.",
                             "content": {"application/x-ndjson": {}}}})
def audit_export(identity: CurrentIdentity, ws: WorkspaceDep, since: str | None = Since) -> Response:
    """The `privgov audit export` extract (admin or auditor). Events hold no data values or secrets."""
    start = parse_time(since, "since") if since else None
    require_role(ws, identity, "audit_export")
    with tempfile.TemporaryDirectory(prefix="privgov-audit-") as tmp:
        out = FilePath(tmp) / "audit.jsonl"
        with ws.session() as s:
            ws.audit.export(s, start, out)
        data = out.read_bytes()
    return Response(data, media_type="application/x-ndjson",
                    headers={"Content-Disposition": 'attachment; filename="audit.jsonl"'})


@router.post("/audit/verify", name="audit_verify", response_model=VerifyReport)
def audit_verify(identity: CurrentIdentity, ws: WorkspaceDep, body: VerifyIn | None = None) -> VerifyReport:
    """Recompute the chain and check signatures, as `privgov audit verify` (admin or auditor).
    A broken log is an answer, not a server failure: 200 with `ok: false` and the problems."""
    require_role(ws, identity, "audit_verify")
    key = bytes.fromhex(body.trusted_key) if body is not None and body.trusted_key else None
    return verify_workspace(ws, key)


@router.get("/report", name="report", response_class=HTMLResponse)
def report(identity: CurrentIdentity, ws: WorkspaceDep, since: str | None = Since,
           dataset: str | None = Query(None, max_length=200, description="Only this dataset.",
                                       examples=["clinic-visits"])) -> HTMLResponse:
    """The self-contained HTML report of `privgov report` (admin or auditor)."""
    from governance.storage import catalog

    scope = Scope(dataset=dataset, since=parse_time(since, "since") if since else None)
    require_role(ws, identity, "report", resource=dataset)
    if dataset is not None:
        with ws.session() as s:
            catalog.find_dataset(s, dataset)  # a misspelt name is an error, not an empty report
    return HTMLResponse(build_report(ws, scope), headers={"Cache-Control": "no-store"})
