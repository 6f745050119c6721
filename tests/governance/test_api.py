"""privgov.api: the documented Python API goes through the same authorization and audit as the CLI."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from privgov import api
from tests.conftest import REPO
from tests.governance.run.test_runner import small_spec


def _events(ws, **where):
    from governance.evidence.audit import AuditEvent

    with ws.session() as s:
        rows = s.query(AuditEvent).order_by(AuditEvent.seq).all()
        return [e for e in rows if all(getattr(e, k) == v for k, v in where.items())]


def _add_analyst(ws) -> str:
    from governance.access.identity import add_principal, issue_token

    with ws.session() as s:
        add_principal(s, "ana", kind="person", roles=["analyst"])
        return issue_token(s, "ana", ttl_days=1)


def test_privgov_api_is_governance_api_and_typed() -> None:
    import governance.api

    assert api.check_decision is governance.api.check_decision
    assert set(api.__all__) == set(governance.api.__all__)
    for name in api.__all__:
        assert getattr(api, name) is getattr(governance.api, name), name
    assert (REPO / "privgov" / "py.typed").is_file() and (REPO / "governance" / "py.typed").is_file()


def test_importing_the_api_is_light() -> None:
    """DAG files import it at parse time: no pandas, SQLAlchemy or torch until a function runs."""
    code = ("import sys\nimport privgov.api\n"
            "print(sorted(m for m in ('pandas', 'sqlalchemy', 'torch', 'great_expectations') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.strip() == "[]", out


def test_open_workspace_names_the_missing_one(tmp_path: Path) -> None:
    with pytest.raises(api.WorkspaceError, match="privgov init"):
        api.open_workspace(tmp_path / "nothing")


def test_check_decision_allows_under_the_bound_policy_and_audits_it(workspace) -> None:
    ws, tokens = workspace
    ws = api.open_workspace(ws.root)
    check = api.check_decision(ws, "train", "clinic-visits", purpose="readmission-model", token=tokens["demo"])
    assert check.allowed and check.rule == "ml-train-readmission" and check.principal == "demo-ml-engineer"
    assert check.epsilon_cap == 3.0 and check.delta_cap == 1e-5
    last = _events(ws, action="train")[-1]
    assert (last.principal, last.decision, last.resource, last.purpose) == (
        "demo-ml-engineer", "allow", "clinic-visits", "readmission-model")
    assert last.details.get("check_only") is True


def test_check_decision_denies_by_default_and_audits_the_deny(workspace, monkeypatch) -> None:
    ws, tokens = workspace
    monkeypatch.setenv("PRIVGOV_TOKEN", tokens["mallory"])  # the token may come from the environment
    check = api.check_decision(ws, "read_masked", "clinic-visits", purpose="quality-review")
    assert not check.allowed and check.rule is None and "denied" in check.reason
    assert "contractor" not in check.reason  # the caller learns no rule; the log keeps the reason
    deny = _events(ws, principal="mallory", decision="deny")[-1]
    assert deny.action == "read_masked" and "no-contractors-on-phi" in (deny.reason or "")
    unbound = api.check_decision(ws, "read", "no-such-dataset", purpose="x", token=tokens["demo"])
    assert not unbound.allowed and _events(ws, resource="no-such-dataset")[-1].decision == "deny"


def test_check_decision_refuses_bad_tokens_and_unknown_actions(workspace) -> None:
    ws, tokens = workspace
    with pytest.raises(api.AccessDenied):
        api.check_decision(ws, "train", "clinic-visits", purpose="readmission-model", token="pgv_forged")
    assert _events(ws, decision="deny")[-1].principal == "unauthenticated"
    with pytest.raises(api.InputError, match="expected one of"):
        api.check_decision(ws, "trian", "clinic-visits", purpose="readmission-model", token=tokens["demo"])


def test_run_read_and_verify_through_the_api(workspace, tmp_path: Path) -> None:
    ws, tokens = workspace
    pipeline = small_spec(tmp_path, training=None, report=None)
    stages: list[tuple[str, str]] = []
    summary = api.run_pipeline(ws, pipeline, tokens["demo"], progress=lambda st, state: stages.append((st, state)))
    assert summary.status == "succeeded" and summary.version is not None and summary.rows_clean > 0
    assert ("authenticate", "start") in stages and all(state != "failed" for _, state in stages)

    # the demo principal has no read grant: denied, audited, nothing released
    with pytest.raises(api.AccessDenied):
        api.read_version(ws, "clinic-visits", purpose="quality-review", token=tokens["demo"])
    assert _events(ws, principal="demo-ml-engineer", action="read_masked")[-1].decision == "deny"

    released = api.read_version(ws, "clinic-visits", purpose="quality-review", token=_add_analyst(ws))
    assert released.version == summary.version and released.kind == "data"
    frame = released.frame
    assert "email" not in frame.columns  # the grant's masks apply
    assert "0-19" not in set(frame["age"].astype(str))  # and its row filter
    assert 0 < len(frame) <= summary.rows_clean
    read = _events(ws, principal="ana", action="read")[-1]
    assert read.version == summary.version and read.details["rows"] == len(frame)

    report = api.verify_audit(ws)
    assert report.ok and report.events == len(_events(ws)) and report.checkpoints >= 1
    assert api.verify_audit(ws, trusted_key=str(ws.root / "keys" / "signing.pub")).ok  # a key file, as the CLI

    with ws.engine.begin() as conn:  # an insider edits one decision
        conn.execute(text("UPDATE audit_events SET decision='allow' WHERE principal='demo-ml-engineer' "
                          "AND decision='deny'"))
    broken = api.verify_audit(ws)
    assert not broken.ok and broken.problems
