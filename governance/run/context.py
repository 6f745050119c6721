"""The frozen context every stage of a governed run receives.

Why frozen and explicit: the old runner kept a dozen facts on `self` and
stages reached back into it for the audit hook. Here a stage gets exactly what
it may use - the workspace, the validated spec, who is running it (the
authenticated identity, never the name a pipeline declares), the dataset as
bound by an admin, the bound policy, and an audit recorder - and returns a
typed record. Nothing else carries state between stages.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from governance.access.authorize import DatasetRef, Identity
from governance.evidence.recorder import AuditRecorder

if TYPE_CHECKING:  # pragma: no cover
    from governance.run.spec import PipelineSpec
    from governance.workspace import Workspace
    from policies.schema import Policy

Progress = Callable[[str, str], None]


@dataclass(frozen=True)
class RunContext:
    ws: "Workspace"
    spec: "PipelineSpec"
    run_uid: str
    identity: Identity
    dataset: DatasetRef
    policy: "Policy"
    record: AuditRecorder

    @property
    def unit(self) -> str:
        """The privacy unit bound to the dataset (`row` when each row is its own person)."""
        return self.dataset.unit

    @property
    def unit_column(self) -> str | None:
        return self.dataset.privacy_unit
