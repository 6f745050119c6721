"""`POST /v1/decisions`: the policy decision point over HTTP (the CLI/API `check_decision`).

Why the caller is always the token's principal: answering for another principal
would let any token holder map out someone else's grants; an admin who needs
that reads the bound policy (`privgov policy test`). A `principal` field in the
body is refused (422) rather than silently ignored. Nothing is read or changed;
the decision is audited (allow or deny, `check_only`) like the CLI's.
"""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from governance.api import check_for
from governance.server.auth import CurrentIdentity, WorkspaceDep
from policies.schema import ACTIONS

router = APIRouter(prefix="/v1", tags=["decisions"])

ActionName = Literal["read", "read_masked", "read_quarantine", "train", "predict", "validate", "erase", "admin",
                     "ingest"]
assert set(ActionName.__args__) == set(ACTIONS), "keep ActionName in step with policies.schema.ACTIONS"


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: ActionName = Field(description="The action asked about.", examples=["read_masked"])
    dataset: str = Field(min_length=1, max_length=200, description="Dataset name (the resource).",
                         examples=["clinic-visits"])
    purpose: str | None = Field(default=None, max_length=200, description="Why; required by every grant on data.",
                                examples=["quality-review"])
    version: int | None = Field(default=None, ge=1, description="Version asked about, recorded in the audit "
                                "event.", examples=[1])


class ObligationsOut(BaseModel):
    column_masks: dict[str, str] = Field(default_factory=dict, description="Column -> mask every release applies.",
                                         examples=[{"email": "drop", "patient_id": "hash"}])
    row_filter: str | None = Field(default=None, description="Rows released (canonical JSON conditions, AND-ed).",
                                   examples=['[{"column":"age","op":"not_in","value":["0-19"]}]'])
    epsilon_cap: float | None = Field(default=None, description="Largest ε one run may spend.", examples=[3.0])
    delta_cap: float | None = Field(default=None, description="Largest δ one run may spend.", examples=[1e-5])


class DecisionOut(BaseModel):
    principal: str = Field(description="The token's principal: the one decided for.", examples=["ana"])
    action: str = Field(examples=["read_masked"])
    dataset: str = Field(examples=["clinic-visits"])
    purpose: str | None = Field(examples=["quality-review"])
    decision: Literal["allow", "deny"] = Field(examples=["allow"])
    allowed: bool = Field(examples=[True])
    reason: str = Field(description="Why (a denial does not say whether the dataset exists; the audit log "
                        "holds the rule).", examples=["allowed by grant analyst-quality-review"])
    rule: str | None = Field(default=None, description="The deciding grant on allow.",
                             examples=["analyst-quality-review"])
    obligations: ObligationsOut = Field(description="What every release under this decision applies.")


@router.post("/decisions", name="decide", response_model=DecisionOut)
def decide(body: DecisionRequest, identity: CurrentIdentity, ws: WorkspaceDep) -> DecisionOut:
    """Would the bound policy allow the caller `action` on `dataset` for `purpose`? A deny is 200 with
    `allowed: false` (the question was answered), worded the same for unknown and forbidden datasets."""
    check = check_for(ws, identity, body.action, body.dataset, purpose=body.purpose, version=body.version)
    return DecisionOut(principal=check.principal, action=check.action, dataset=check.dataset, purpose=check.purpose,
                       decision="allow" if check.allowed else "deny", allowed=check.allowed, reason=check.reason,
                       rule=check.rule,
                       obligations=ObligationsOut(column_masks=check.column_masks, row_filter=check.row_filter,
                                                  epsilon_cap=check.epsilon_cap, delta_cap=check.delta_cap))
