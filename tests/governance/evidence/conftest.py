"""A governed workspace with something in every report section, built once for the report tests.

Two real runs of the clinic pipeline (shrunk), a prediction, a black-box audit, an erasure
of the first version, a denied request, PII findings as the PII gate stores them, and a
dataset whose name is hostile markup. Nothing is mocked: each step is what a user runs.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import new_workspace

HOSTILE = "<script>alert(1)</script>&co"
PII_FINDINGS = [
    {"column": "email", "pii_type": "email", "kind": "direct", "confidence": 0.98,
     "evidence": "pattern match in 97% of sampled rows", "action": "transformed"},
    {"column": "zip", "pii_type": "postal_code", "kind": "quasi", "confidence": 0.71,
     "evidence": "column name and 5-digit shape", "action": "transformed"},
]


@pytest.fixture(scope="session")
def governed(tmp_path_factory):
    """(ws, tmp, run uids, tokens): a workspace that has been through the whole lifecycle."""
    from governance.data.splitting import split_for_training
    from governance.run.models import audit_model, predict
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline
    from governance.storage import catalog
    from governance.storage.store import Dataset
    from privacy.errors import AccessDenied
    from tests.governance.run.test_runner import small_spec

    tmp = tmp_path_factory.mktemp("report")
    ws, tokens = new_workspace(tmp / "ws", {
        "admin": ("admin", ["admin"]),
        "demo": ("demo-ml-engineer", ["ml-engineer", "data-engineer"]),
        "mallory": ("mallory", ["contractor"]),
    })
    uids = []
    for name in ("one", "two"):
        (tmp / name).mkdir()
        spec = load_pipeline(small_spec(tmp / name, **{"report": None, "training.epsilon": 0.5}))
        uids.append(run_pipeline(ws, spec, tokens["demo"]).run_uid)
    with pytest.raises(AccessDenied):  # a contractor on PHI: denied and audited
        run_pipeline(ws, spec, tokens["mallory"])
    with ws.session() as s:
        ds = catalog.find_dataset(s, spec.dataset)
        first = catalog.versions_of(s, ds, kind="data")[0]
        data = catalog.read_version(ws, s, ds, first)
        latest = catalog.versions_of(s, ds, kind="data")[-1]
        latest.meta_json = {**(latest.meta_json or {}), "pii_findings": PII_FINDINGS}
        s.add(Dataset(name=HOSTILE, lineage_id="hostile", tags=[]))
    _, test = split_for_training(data, spec.privacy_unit, spec.training.test_fraction, spec.training.seed)
    test.drop(columns=[spec.training.target]).head(200).to_csv(tmp / "score.csv", index=False)
    predict(ws, "demo-ml-engineer", uids[0], tmp / "score.csv", tmp / "pred.csv", "readmission-model")
    audit_model(ws, "demo-ml-engineer", uids[1], "readmission-model", canaries=50, device="cpu")
    with ws.session() as s:
        ds = catalog.find_dataset(s, spec.dataset)
        rep = catalog.erase_version(ws, s, ds, first.version)
        ws.audit.record(s, principal="admin", action="erase", decision="info", resource=ds.name,
                        version=first.version, details={"affected_runs": len(rep.affected_runs)})
        ws.audit.checkpoint(s)
    catalog.finalize_erasure(ws, rep)
    return ws, tmp, uids, tokens


@pytest.fixture(scope="session")
def governed_report(governed) -> Path:
    """The report of the governed workspace, written as `privgov report` writes it."""
    from governance.evidence.report import write_report

    ws, tmp = governed[0], governed[1]
    return write_report(ws, tmp / "report.html")
