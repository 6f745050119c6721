"""The PII gate of a governed run: a detected direct identifier left untransformed stops the run
before anything is stored (audited deny), an acknowledged keep needs the policy's permission,
and the findings travel with the run summary and the stored version.

Each test runs the real pipeline (SQLite workspace, encryption, bound policy, audit log) on a
small CSV whose identifier columns have neutral names, so only their values can give them away."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import new_workspace
from tests.governance.run.test_runner import cli, error_line

ROWS = 120
# Names from several cultures, and case numbers: no pattern names them, only values can.
NAMES = ["Aiko Yamamoto", "Giulia Esposito", "Wojciech Kowalczyk", "Farida Benali", "Chidi Eze",
         "Mateus Carvalho", "Ingrid Halvorsen", "Rahul Venkatesh", "Siobhan Gallagher", "Lucia Ferreira",
         "Tomasz Zielinski", "Amara Diallo", "Hiroshi Nakamura", "Elif Yilmaz", "Jens Bergstrom"]


def _policy(tmp: Path, **pii) -> Path:
    doc = {
        "version": 1, "name": "people", "roles": ["data-engineer"],
        "grants": [{"id": "load", "roles": ["data-engineer"], "actions": ["ingest", "validate"],
                    "datasets": ["people"], "purposes": ["pipeline"]}],
    }
    if pii:
        doc["pii"] = pii
    path = tmp / f"policy-{len(list(tmp.glob('policy-*')))}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _csv(tmp: Path) -> Path:
    """c1 emails, c2 US SSNs (valid area/group/serial), zip with leading zeros, a measurement."""
    lines = ["c1,c2,zip,mail_zip,amount"]
    for i in range(ROWS):
        ssn = f"{101 + i:03d}-{10 + i % 80:02d}-{1000 + i:04d}"
        zip_code = ["02134", "01002", "00501", "90210", "04101"][i % 5]
        lines.append(f"person{i}@example.org,{ssn},{zip_code},{zip_code},{10 + i * 0.5}")
    path = tmp / "people.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _pipeline(tmp: Path, data: Path, steps: list[dict], pii: dict | None = None, **extra) -> Path:
    doc = {"name": "people-load", "dataset": "people", "source": {"path": str(data)},
           "principal": "loader", "purpose": "pipeline", "deid": {"steps": steps}, **extra}
    if pii:
        doc["pii"] = pii
    path = tmp / "pipeline.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _workspace(tmp: Path, policy: Path):
    return new_workspace(tmp / "ws", {"loader": ("loader", ["data-engineer"])},
                         bindings={"people": (policy, [], None)})


def _stored(ws) -> tuple[int, int]:
    """(dataset versions, object files): what a refused run must leave at zero."""
    from governance.storage.store import DatasetVersion

    with ws.session() as s:
        versions = s.query(DatasetVersion).count()
    return versions, sum(1 for p in (ws.root / "objects").rglob("*") if p.is_file())


def _events(ws, action: str) -> list:
    from governance.evidence.audit import AuditEvent

    with ws.session() as s:
        rows = s.query(AuditEvent).filter(AuditEvent.action == action).order_by(AuditEvent.seq).all()
        return [(r.principal, r.decision, r.reason, dict(r.details or {})) for r in rows]


def _run(ws, path: Path, token: str):
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline

    return run_pipeline(ws, load_pipeline(path), token)


def test_identifiers_under_neutral_names_refused_before_storage(tmp_path) -> None:
    from privacy.errors import AccessDenied

    ws, tokens = _workspace(tmp_path, _policy(tmp_path))
    data = _csv(tmp_path)
    path = _pipeline(tmp_path, data, [{"column": "c2", "action": "pseudonymize"}])
    with pytest.raises(AccessDenied) as info:
        _run(ws, path, tokens["loader"])
    msg = str(info.value)
    assert "`c1`" in msg and "email" in msg and "deid.steps" in msg and "action: keep" in msg and "allow_keep" in msg
    assert "\n" not in msg and "person0@" not in msg  # one line, no cell value
    assert _stored(ws) == (0, 0)  # nothing encrypted, nothing in the catalog
    denies = _events(ws, "pii_gate")
    assert [(p, d) for p, d, _, _ in denies] == [("loader", "deny")]  # the authenticated identity
    details = denies[0][3]
    assert details["column"] == "c1" and details["pii_type"] == "email" and details["confidence"] >= 0.8
    assert "evidence" in details and "person0" not in json.dumps(details)
    # the run refused without validating: the gate ran before validation and storage
    assert _events(ws, "validate") == [] and _events(ws, "store") == []


@pytest.mark.parametrize("step", [{"column": "c1", "action": "keep"},
                                  {"column": "c1", "action": "suppress_rare", "k": 2, "other": "other"}])
def test_a_deid_step_that_leaves_values_in_clear_does_not_pass_the_gate(tmp_path, step) -> None:
    """A pipeline author cannot dodge the policy's allow_keep by writing `keep` (or a
    count-based step that leaves unique values as they are) into deid.steps."""
    from privacy.errors import AccessDenied

    ws, tokens = _workspace(tmp_path, _policy(tmp_path))
    path = _pipeline(tmp_path, _csv(tmp_path), [step, {"column": "c2", "action": "drop"}])
    with pytest.raises(AccessDenied, match="`c1`"):
        _run(ws, path, tokens["loader"])
    assert _stored(ws) == (0, 0)
    assert [(p, d) for p, d, _, _ in _events(ws, "pii_gate")] == [("loader", "deny")]


def test_cli_run_refused_exit_3_one_line(tmp_path) -> None:
    ws, tokens = _workspace(tmp_path, _policy(tmp_path))
    path = _pipeline(tmp_path, _csv(tmp_path), [])  # neither column transformed
    res = cli("run", str(path), "--workspace", str(ws.root), env={"PRIVGOV_TOKEN": tokens["loader"]})
    assert res.returncode == 3, res.stderr
    line = error_line(res)
    assert "PII gate" in line and "`c1`" in line and "1 more: c2" in line
    assert _stored(ws) == (0, 0)
    assert {d["column"] for _, _, _, d in _events(ws, "pii_gate")} == {"c1", "c2"}


def _names_csv(tmp: Path, second: str) -> Path:
    lines = ["c3,c4,amount"]
    for i in range(ROWS):
        c4 = f"CR-{2019 + i % 5}-{(i * 7919) % 100000:05d}" if second == "case" else str(i % 7)
        lines.append(f"{NAMES[i % len(NAMES)]},{c4},{i}")
    path = tmp / "names.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_renamed_name_column_refused(tmp_path) -> None:
    from privacy.errors import AccessDenied

    ws, tokens = _workspace(tmp_path, _policy(tmp_path))
    with pytest.raises(AccessDenied, match="`c3`"):
        _run(ws, _pipeline(tmp_path, _names_csv(tmp_path, "none"), []), tokens["loader"])
    assert _stored(ws) == (0, 0)


def test_case_number_column_refused(tmp_path) -> None:
    from privacy.errors import AccessDenied

    ws, tokens = _workspace(tmp_path, _policy(tmp_path))
    steps = [{"column": "c3", "action": "drop"}]
    with pytest.raises(AccessDenied, match="`c4`"):
        _run(ws, _pipeline(tmp_path, _names_csv(tmp_path, "case"), steps), tokens["loader"])
    assert _stored(ws) == (0, 0)


def test_keep_without_policy_permission_refused(tmp_path) -> None:
    from privacy.errors import AccessDenied

    ws, tokens = _workspace(tmp_path, _policy(tmp_path, threshold=0.8))  # allow_keep defaults to false
    path = _pipeline(tmp_path, _csv(tmp_path), [{"column": "c2", "action": "drop"}],
                     pii={"c1": {"action": "keep", "reason": "contact address needed by the help desk"}})
    with pytest.raises(AccessDenied, match="allow_keep"):
        _run(ws, path, tokens["loader"])
    assert _stored(ws) == (0, 0)
    (principal, decision, reason, details), = _events(ws, "pii_keep")
    assert (principal, decision) == ("loader", "deny") and "allow_keep" in reason
    assert details["column"] == "c1" and details["pii_type"] == "email"


def test_keep_with_permission_stored_and_findings_recorded(tmp_path) -> None:
    from governance.storage import catalog

    ws, tokens = _workspace(tmp_path, _policy(tmp_path, threshold=0.8, allow_keep=True))
    reason = "contact address needed by the help desk"
    path = _pipeline(tmp_path, _csv(tmp_path), [{"column": "c2", "action": "pseudonymize"}],
                     pii={"c1": {"action": "keep", "reason": reason}})
    summary = _run(ws, path, tokens["loader"])
    assert summary.status == "succeeded" and summary.version == 1
    by_col = {f["column"]: f for f in summary.pii_findings}
    assert by_col["c1"]["action"] == "keep" and by_col["c1"]["pii_type"] == "email"
    assert by_col["c2"]["action"] == "transformed" and by_col["c2"]["transform"] == "pseudonymize"
    assert set(by_col["c1"]) >= {"column", "pii_type", "kind", "confidence", "evidence", "action"}
    (principal, decision, got_reason, details), = _events(ws, "pii_keep")
    assert (principal, decision, got_reason) == ("loader", "allow", reason) and details["column"] == "c1"
    with ws.session() as s:
        version = catalog.get_version(s, catalog.find_dataset(s, "people"), 1)
        meta = dict(version.meta_json or {})
    assert meta["pii_findings"] == summary.pii_findings
    assert "person0@" not in json.dumps(meta)  # names and types, never values


def test_threshold_from_the_bound_policy(tmp_path) -> None:
    """Findings below the bound policy's threshold are recorded (action none) but do not stop the run."""
    ws, tokens = _workspace(tmp_path, _policy(tmp_path, threshold=1.0))
    summary = _run(ws, _pipeline(tmp_path, _csv(tmp_path), []), tokens["loader"])
    assert summary.status == "succeeded"
    confidences = {f["column"]: f["confidence"] for f in summary.pii_findings}
    assert confidences["c1"] < 1.0 and {f["action"] for f in summary.pii_findings} == {"none"}


def test_zip_keeps_leading_zeros_end_to_end(tmp_path) -> None:
    """Read (text first), validated (regex), de-identified (prefix), encrypted, read back: 02134 stays 02134."""
    from governance.access.export import read_authorized

    ws, tokens = _workspace(tmp_path, _policy(tmp_path))
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"name": "zips", "expectations": [
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "zip", "regex": r"^\d{5}$"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "amount", "min_value": 0}}]}))
    steps = [{"column": "c1", "action": "pseudonymize"}, {"column": "c2", "action": "drop"},
             {"column": "mail_zip", "action": "generalize", "method": "zip_prefix", "digits": 3}]
    path = _pipeline(tmp_path, _csv(tmp_path), steps, quality={"suite": str(suite)})
    summary = _run(ws, path, tokens["loader"])
    assert summary.raw_validation_success is True and summary.clean_validation_success is True
    df, _ = read_authorized(ws, tokens["loader"], "validate", "people", 1, "pipeline")
    expected = [["02134", "01002", "00501", "90210", "04101"][i % 5] for i in range(ROWS)]
    assert df["zip"].tolist() == expected
    assert df["mail_zip"].str[:3].tolist() == [z[:3] for z in expected]
    assert df["amount"].dtype.kind == "f"  # a measurement still becomes a number


def test_pipeline_csv_options_headerless_semicolons(tmp_path) -> None:
    """The pipeline's `source.csv` block takes the same options as the CLI (one reader)."""
    from governance.access.export import read_authorized

    ws, tokens = _workspace(tmp_path, _policy(tmp_path))
    data = tmp_path / "raw.txt"
    data.write_text("".join(f"{i};00{i % 10}12;n/a\n" if i % 4 == 0 else f"{i};00{i % 10}12;{i}.5\n"
                            for i in range(ROWS)), encoding="latin-1")
    csv_opts = {"header": False, "names": ["id", "code", "value"], "delimiter": ";", "encoding": "latin-1",
                "na_values": ["n/a"], "dtype": {"id": "str"}}
    path = _pipeline(tmp_path, data, [], source={"path": str(data), "format": "csv", "csv": csv_opts})
    summary = _run(ws, path, tokens["loader"])
    assert summary.rows_ingested == ROWS
    df, _ = read_authorized(ws, tokens["loader"], "validate", "people", 1, "pipeline")
    assert df["code"].tolist()[:3] == ["00012", "00112", "00212"] and df["id"].tolist()[:2] == ["0", "1"]
    assert df["value"].isna().sum() == ROWS // 4 and df["value"].dtype.kind == "f"


@pytest.mark.parametrize("csv_opts, needle", [
    ({"delimitr": ";"}, "delimitr"),
    ({"names": ["a", "b"]}, "option names"),
    ({"encoding": "utf-9"}, "encoding"),
    ({"dtype": {"zip": "decimal"}}, "dtype"),
])
def test_pipeline_bad_csv_option_exit_2_nothing_stored(tmp_path, csv_opts, needle) -> None:
    ws, tokens = _workspace(tmp_path, _policy(tmp_path))
    data = _csv(tmp_path)
    path = _pipeline(tmp_path, data, [], source={"path": str(data), "csv": csv_opts})
    res = cli("run", str(path), "--workspace", str(ws.root), env={"PRIVGOV_TOKEN": tokens["loader"]})
    assert res.returncode == 2, res.stderr
    line = error_line(res)
    assert needle in line and "Traceback" not in res.stderr
    assert _stored(ws) == (0, 0)


def test_pipeline_pii_block_is_checked_at_load(tmp_path) -> None:
    from governance.run.spec import load_pipeline
    from privacy.errors import InputError

    data = _csv(tmp_path)
    both = _pipeline(tmp_path, data, [{"column": "c1", "action": "drop"}],
                     pii={"c1": {"action": "keep", "reason": "help desk"}})
    with pytest.raises(InputError, match="c1.*keep.*transforms it"):
        load_pipeline(both)
    no_reason = _pipeline(tmp_path, data, [], pii={"c1": {"action": "keep", "reason": " "}})
    with pytest.raises(InputError, match="reason"):
        load_pipeline(no_reason)
    other = _pipeline(tmp_path, data, [], pii={"c1": {"action": "drop", "reason": "x"}})
    with pytest.raises(InputError, match="action"):
        load_pipeline(other)
