"""CLI subcommands as a pipeline or an operator calls them: exit codes and outputs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from governance.cli import main
from tests.conftest import ADULT_DIR


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def dirty_csv(tmp_path: Path) -> Path:
    from governance.demo.sample_data import write_clinic

    return write_clinic(tmp_path / "visits.csv", 400, seed=3)


def test_quality_validate_exit_codes_and_no_values(capsys, tmp_path, dirty_csv) -> None:
    suite = Path(__file__).resolve().parents[2] / "examples" / "clinic" / "suite.json"
    code, out, _ = run(capsys, "quality", "validate", str(dirty_csv), "--suite", str(suite), "--format", "json")
    assert code == 1  # the raw data is dirty: the gate fails
    result = json.loads(out)
    assert result["success"] is False and result["failing_row_ids"]
    import pandas as pd

    emails = pd.read_csv(dirty_csv)["email"].dropna().astype(str).head(50)
    assert not any(e in out for e in emails)  # row ids only, never values
    good = tmp_path / "suite-ok.json"
    good.write_text(json.dumps({"name": "ok", "expectations": [
        {"type": "expect_column_to_exist", "kwargs": {"column": "patient_id"}}]}))
    assert run(capsys, "quality", "validate", str(dirty_csv), "--suite", str(good))[0] == 0
    bad = tmp_path / "suite-bad.json"
    bad.write_text(json.dumps({"name": "bad", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "nope"}}]}))
    code, _, err = run(capsys, "quality", "validate", str(dirty_csv), "--suite", str(bad))
    assert code == 2 and "nope" in err


@pytest.mark.skipif(not (ADULT_DIR / "adult.data").exists(), reason="UCI Adult files not present")
def test_quality_suggest_then_validate_on_adult(capsys, tmp_path) -> None:
    import pandas as pd

    names = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
             "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country", "income"]
    df = pd.read_csv(ADULT_DIR / "adult.data", names=names, skipinitialspace=True, na_values=["?"])
    data = tmp_path / "adult.csv"
    df.to_csv(data, index=False)
    suite = tmp_path / "suite.json"
    assert run(capsys, "quality", "suggest", str(data), "--out", str(suite))[0] == 0
    assert json.loads(suite.read_text())["expectations"]
    code, out, _ = run(capsys, "quality", "validate", str(data), "--suite", str(suite))
    assert code == 0, out  # a suite suggested from the data passes on that data


def test_pii_scan_names_types_not_values(capsys, dirty_csv) -> None:
    code, out, _ = run(capsys, "pii", "scan", str(dirty_csv), "--format", "json")
    assert code == 0
    found = {f["column"]: f["pii_type"] for f in json.loads(out)}
    assert found.get("email") == "email" and found.get("ssn") == "ssn"
    import pandas as pd

    ssns = pd.read_csv(dirty_csv, dtype=str)["ssn"].dropna().head(50)
    assert not any(v in out for v in ssns)


def test_admin_commands_need_admin_token(capsys, workspace) -> None:
    ws, tokens = workspace
    w = str(ws.root)
    code, _, err = run(capsys, "principal", "add", "eve", "--roles", "analyst", "-w", w, "--token", tokens["demo"])
    assert code == 3 and "admin" in err
    assert run(capsys, "principal", "add", "eve", "--roles", "analyst", "-w", w, "--token", tokens["admin"])[0] == 0
    code, out, _ = run(capsys, "token", "issue", "eve", "-w", w, "--token", tokens["admin"])
    assert code == 0 and out.strip().startswith("pgv_")
    assert run(capsys, "principal", "revoke", "eve", "-w", w, "--token", tokens["admin"])[0] == 0
    code, _, err = run(capsys, "quality", "validate", "dataset:clinic-visits", "--suite", "x.json", "-w", w,
                       "--token", out.strip())
    assert code in (2, 3)


def test_rotate_erase_export_and_audit_extract(capsys, workspace, tmp_path) -> None:
    """Rotate twice, erase one version: the rest still decrypts, the erased one cannot,
    the model trained on it is flagged, and the audit extract verifies elsewhere."""
    from governance.storage import catalog
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline
    from tests.governance.run.test_runner import small_spec

    ws, tokens = workspace
    w = str(ws.root)
    spec = load_pipeline(small_spec(tmp_path))
    first = run_pipeline(ws, spec, tokens["demo"])
    second = run_pipeline(ws, spec, tokens["demo"])
    for _ in range(2):
        assert run(capsys, "keys", "rotate", "-w", w, "--token", tokens["admin"])[0] == 0
    code, out, _ = run(capsys, "dataset", "erase", "clinic-visits", "--version", str(first.version), "-w", w,
                       "--token", tokens["admin"])
    assert code == 0 and first.run_uid in out and str(first.quarantine_version) in out
    from governance.workspace import Workspace

    fresh = Workspace.open(ws.root)  # a new process' view, after rotation
    with fresh.session() as s:
        ds = catalog.find_dataset(s, "clinic-visits")
        assert len(catalog.read_version(fresh, s, ds, catalog.get_version(s, ds, second.version))) == second.rows_clean
        with pytest.raises(Exception, match="erased"):
            catalog.read_version(fresh, s, ds, catalog.get_version(s, ds, first.version))
        from governance.storage.store import Run

        flagged = {r.run_uid for r in s.query(Run).filter(Run.affected_by_erasure.is_(True))}
    assert flagged == {first.run_uid}
    extract = tmp_path / "audit.jsonl"
    assert run(capsys, "audit", "export", "--out", str(extract), "-w", w)[0] == 0
    assert run(capsys, "audit", "verify", "--file", str(extract))[0] == 0
    lines = extract.read_text().splitlines()
    lines[3] = lines[3].replace('"action": "', '"action": "x', 1).replace('"action":"', '"action":"x', 1)
    extract.write_text("\n".join(lines) + "\n")
    assert run(capsys, "audit", "verify", "--file", str(extract))[0] == 4
    assert run(capsys, "report", "--out", str(tmp_path / "r.html"), "-w", w)[0] == 0
    assert "trained on erased data" in (tmp_path / "r.html").read_text()


def test_policy_test_and_access_review(capsys, workspace, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    root = Path(__file__).resolve().parents[2] / "policies" / "examples"
    assert run(capsys, "policy", "test", str(root / "clinic.yaml"), str(root / "clinic_cases.yaml"))[0] == 0
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline
    from tests.governance.run.test_runner import small_spec

    ws, tokens = workspace
    run_pipeline(ws, load_pipeline(small_spec(tmp_path, training=None)), tokens["demo"])
    code, out, _ = run(capsys, "access", "review", "-w", str(ws.root))
    assert code == 0 and "demo-ml-engineer" in out and "mallory" not in out


def test_masked_export_honours_obligations(capsys, workspace, tmp_path) -> None:
    """An analyst's export drops/hashes what the policy says, and is audited; others are denied."""
    import pandas as pd

    from governance.evidence.audit import AuditEvent
    from governance.access.identity import add_principal, issue_token
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline
    from tests.governance.run.test_runner import small_spec

    ws, tokens = workspace
    with ws.session() as s:
        add_principal(s, "ana", roles=["analyst"])
        ana = issue_token(s, "ana", ttl_days=1)
    run_pipeline(ws, load_pipeline(small_spec(tmp_path, training=None)), tokens["demo"])
    out = tmp_path / "export.csv"
    w = str(ws.root)
    code, _, err = run(capsys, "dataset", "export", "clinic-visits", "--purpose", "quality-review", "--out", str(out),
                       "-w", w, "--token", ana)
    assert code == 0, err
    df = pd.read_csv(out)
    assert "email" not in df.columns  # mask: drop
    assert df["patient_id"].astype(str).str.fullmatch(r"[0-9a-f]{16}").all()  # mask: hash
    code, _, err = run(capsys, "dataset", "export", "clinic-visits", "--purpose", "marketing", "--out",
                       str(tmp_path / "no.csv"), "-w", w, "--token", ana)
    assert code == 3 and not (tmp_path / "no.csv").exists()
    code, _, _ = run(capsys, "dataset", "export", "clinic-visits", "--purpose", "quality-review", "--out",
                     str(tmp_path / "no.csv"), "-w", w, "--token", tokens["mallory"])
    assert code == 3
    with ws.session() as s:
        assert s.query(AuditEvent).filter(AuditEvent.action == "export").count() == 1
