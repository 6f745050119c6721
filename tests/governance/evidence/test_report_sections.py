"""Each report section's data, gathered from a workspace that went through the whole lifecycle."""
from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import pytest
import yaml

from tests.conftest import REPO, new_workspace
from tests.governance.evidence.conftest import HOSTILE, PII_FINDINGS

SUITE = REPO / "examples" / "clinic" / "suite.json"


def _collect(ws, **scope):
    from governance.evidence.report import Scope
    from governance.evidence.report.collect import collect

    return collect(ws, Scope(**scope))


@pytest.fixture(scope="module")
def full(governed):
    return _collect(governed[0])


def test_audit_integrity_is_the_verified_chain(governed, full) -> None:
    from governance.evidence.verify import verify_workspace

    rep = verify_workspace(governed[0])
    assert full.integrity.ok and full.integrity.events == rep.events > 10
    assert full.integrity.checkpoints == rep.checkpoints > 0


def test_processing_record_comes_from_the_bound_policy_and_flags_gaps(full, tmp_path) -> None:
    from governance.evidence.report.gather_access import processing_records
    from governance.evidence.report.scope import Scope
    from policies.processing import REQUIRED_FIELDS

    by_ds = {p.dataset: p for p in full.processing}
    clinic = by_ds["clinic-visits"]
    declared = yaml.safe_load((REPO / "policies" / "examples" / "clinic.yaml").read_text())["processing"]
    assert clinic.missing == [] and clinic.problem is None
    assert dict(clinic.fields)["controller"] == declared["controller"]
    assert dict(clinic.fields)["data_subjects"] == "; ".join(declared["data_subjects"])
    assert by_ds[HOSTILE].missing == list(REQUIRED_FIELDS) and "no policy is bound" in by_ds[HOSTILE].problem
    # a bound policy that declares only some fields: the others are named as missing
    doc = yaml.safe_load((REPO / "policies" / "examples" / "adult.yaml").read_text())
    doc["processing"] = {"controller": "ACME", "purposes": ["x"], "retention": "  "}
    partial = tmp_path / "partial.yaml"
    partial.write_text(yaml.safe_dump(doc))
    ws, _ = new_workspace(tmp_path / "ws", bindings={"adult-census": (partial, ["census"], None)})
    with ws.session() as s:
        (entry,) = processing_records(s, Scope())
    assert entry.missing == [f for f in REQUIRED_FIELDS if f not in ("controller", "purposes")]
    from governance.evidence.report import build_report

    assert "missing: the bound policy does not declare retention" in build_report(ws)


def test_access_review_shows_token_ids_last_use_and_decisions_never_secrets(governed, full) -> None:
    ws, _, _, tokens = governed
    toks = {t.principal: t for t in full.access.tokens}
    for name, token in (("demo-ml-engineer", tokens["demo"]), ("mallory", tokens["mallory"])):
        assert toks[name].token_id in token and toks[name].state == "active" and toks[name].expires is not None
    assert toks["demo-ml-engineer"].last_used is not None  # the runs authenticated with it
    people = {p.name: p for p in full.access.principals}
    assert people["mallory"].last_deny and not people["mallory"].last_allow
    assert people["demo-ml-engineer"].last_allow
    grants = {(g.dataset, g.grant): g for g in full.access.grants}
    assert grants[("clinic-visits", "ml-train-readmission")].holders == "demo-ml-engineer"
    assert not any(g.dataset == "clinic-visits" and g.grant.startswith("ml-train-income") for g in full.access.grants)
    from governance.evidence.report.render import render

    html = render(full)
    for token in tokens.values():
        assert token not in html and token.split("_")[-1] not in html


def test_lineage_runs_from_the_source_to_predictions_with_the_erasure_marked(governed, full) -> None:
    _, _, uids, _ = governed
    g = full.lineage
    by_col: dict[int, list] = {}
    for n in g.nodes:
        by_col.setdefault(n.column, []).append(n)
    assert [n.label for n in by_col[0]] == ["clinic-visits source"]
    assert len(by_col[2]) >= 2 and len(by_col[3]) == 2 and len(by_col[4]) == 1
    erased = {n.label for n in g.nodes if n.erased}
    assert "clinic-visits v1" in erased and f"run {uids[0][:12]}" in erased and f"model {uids[0][:12]}" in erased
    assert f"model {uids[1][:12]}" not in erased
    assert {"ingested", "trained", "model", "predicted"} <= {e.relation for e in g.edges}
    ds = {d.name: d for d in full.datasets}
    assert ds["clinic-visits"].privacy_unit == "patient_id" and ds["clinic-visits"].tags == "phi"
    assert ds["clinic-visits"].versions == len(full.versions) == 4 and ds[HOSTILE].policy_hash is None
    # drawn left to right between columns, downwards inside one (a version to its quarantine)
    assert all(e.x2 > e.x1 or (e.x2 == e.x1 and e.y2 > e.y1) for e in g.edges)
    assert any(e.relation == "quarantine" and e.x2 == e.x1 for e in g.edges)


def test_quality_is_per_expectation_with_the_suite_hash(full) -> None:
    from governance.data.quality import load_suite
    from governance.run.stages import suite_sha256

    expected = json.loads(SUITE.read_text())["expectations"]
    digest = suite_sha256(load_suite(SUITE))
    assert digest == hashlib.sha256(json.dumps(load_suite(SUITE), sort_keys=True, separators=(",", ":"),
                                               default=str).encode()).hexdigest()
    assert len(full.quality) >= 4  # raw and cleaned, twice
    for rec in full.quality:
        assert rec.suite_hash == digest
        assert [e.type for e in rec.expectations] == [x["type"] for x in expected]
        assert rec.success == all(e.outcome == "pass" for e in rec.expectations)
        assert all(e.outcome == "pass" or e.failing > 0 or e.error for e in rec.expectations)


def test_deid_shows_each_column_with_its_method_name(full) -> None:
    spec = yaml.safe_load((REPO / "examples" / "clinic" / "pipeline.yaml").read_text())["deid"]["steps"]
    rows = [r for r in full.deid if r.version == full.deid[-1].version]
    assert [r.column for r in rows] == [s["column"] for s in spec]
    want = {"drop": "drop", "pseudonymize": "pseudonymize (HMAC-SHA256)"}
    assert [r.method for r in rows] == [want.get(s["action"], f"generalize: {s.get('method')}") for s in spec]
    age = next(r for r in rows if r.column == "age")
    assert "width=20" in age.parameters and "distinct_after=" in age.counts
    assert full.cleaning and all(not c.step.isdigit() for c in full.cleaning)


def test_pii_findings_from_version_metadata(full) -> None:
    shown = [(p.column, p.pii_type, p.kind, p.action) for p in full.pii]
    # the metadata injected on the latest version, exactly as stored ...
    injected = [(f["column"], f["pii_type"], f["kind"], f["action"]) for f in PII_FINDINGS]
    assert all(t in shown for t in injected)
    assert any(p.column == "email" and p.confidence == "0.98" for p in full.pii)
    # ... and the real gate's findings on the earlier governed run (the clinic names are transformed)
    assert ("name", "person_name", "direct", "transformed") in shown


def test_key_status_names_the_shredded_key_and_the_rotation(governed, full) -> None:
    ws = governed[0]
    keys = full.keys
    assert [k.kek_id for k in keys.keks if k.active] == [ws.keyring.active_kek_id]
    assert all(k.age_days == 0 for k in keys.keks)
    assert any("clinic-visits v1 (data)" in s.protected for s in keys.shredded)
    assert "erase" in [e.action for e in keys.events]
    assert keys.live_data_keys == sum(k.live_data_keys for k in keys.keks) > 0


def test_budget_over_time_follows_the_ledger(governed, full) -> None:
    by_ds = {b.dataset: b for b in full.budgets}
    assert by_ds["adult-census"].points == [] and by_ds["adult-census"].status.epsilon_cap == 10.0  # bound, unused
    b = by_ds["clinic-visits"]
    st = b.status
    committed = [r for r in st.runs if r.committed_at is not None]
    assert len(b.points) == len(committed) == 3  # two trainings and the audit's retraining
    shares = [p[1] for p in b.points]
    assert shares == sorted(shares) and shares[-1] == pytest.approx(st.rdp_spent / st.rdp_budget)
    assert [p[0] for p in b.points] == sorted(p[0] for p in b.points)
    assert {"budget", "quality"} <= set(full.plots)
    # two trainings and the audit's retraining, each with the ledger as it committed
    assert len(full.budget_runs) == 3 and all(r.before != "not recorded" for r in full.budget_runs)
    afters = sorted(float(r.after) for r in full.budget_runs)
    assert afters[-1] == pytest.approx(st.spent, abs=1e-4) and afters == sorted(set(afters))


def test_fairness_cards_and_audits(governed, full) -> None:
    _, _, uids, _ = governed
    assert {f.run_uid for f in full.fairness} == set(uids)
    for f in full.fairness:
        for g in f.groups:
            assert g.suppressed == g.n.startswith("<") and (not g.suppressed or set(g.figures) == {g.n})
    card = next(c for c in full.cards if c.run_uid == uids[1])
    model = dict(dict(card.sections)["model"])
    assert card.model_type == "mlp" and model["hidden"] == "64"
    kinds = {(a.run_uid, a.kind) for a in full.audits}
    assert (uids[1], "black-box one-run canaries") in kinds and (uids[1], "membership inference (black-box)") in kinds
    assert (uids[0], "not audited") in kinds


def test_a_logreg_card_has_no_mlp_hyperparameters(workspace) -> None:
    from governance.evidence.report import build_report
    from governance.storage.store import Run
    from training.model_card import model_section

    cfg = SimpleNamespace(model="logreg", hidden=(64,), optimizer="adam", lr=0.01, epochs=3, batch_size=64, amp=False)
    assert "hidden" not in model_section(cfg) and model_section(cfg)["name"] == "logreg"
    assert model_section(SimpleNamespace(**{**vars(cfg), "model": "mlp"}))["hidden"] == [64]
    ws, _ = workspace
    old_card = {"model": {**model_section(cfg), "hidden": [777, 333]}, "privacy": {"epsilon": 1.0},
                "audit": {"audited_at": "2026-12-01T10:00:00", "claimed_epsilon": 1.0,
                          "whitebox": {"canaries": 1000, "epsilon_lower_bound": 0.31, "claimed_epsilon": 1.0,
                                       "confidence": 0.95, "k_pos": 40, "k_neg": 10, "guesses": 50, "correct": 41,
                                       "passed": True}}}
    with ws.session() as s:
        s.add(Run(run_uid="lr1", pipeline="p", dataset_name="d", principal="x", purpose="y", status="succeeded",
                  model_card_json=old_card, model_blob_hash="ab" * 32))
    html = build_report(ws)
    assert "<td>hidden</td>" not in html and "777, 333" not in html and "<td>optimizer</td>" in html
    assert "white-box gradient canaries" in html and "0.310" in html and "41/50 correct" in html


def test_names_are_escaped_exactly_once(workspace) -> None:
    from governance.evidence.report import build_report
    from governance.storage.store import Dataset, ValidationRecord

    ws, _ = workspace
    name, column = "x<script>&y", '<b>"c"&d'
    with ws.session() as s:
        s.add(Dataset(name=name, lineage_id="l", tags=["<t>"]))
        s.add(ValidationRecord(dataset_name=name, stage="raw", suite_name="s&s", success=False, evaluated=1,
                               failed_expectations=1, failing_rows=2,
                               result_json={"results": [{"index": 0, "type": "expect_column_to_exist",
                                                         "column": column, "success": False, "unexpected_count": 2,
                                                         "element_count": 9, "severity": "critical"}]}))
    html = build_report(ws)
    assert "x&lt;script&gt;&amp;y" in html and "&lt;b&gt;&#34;c&#34;&amp;d" in html and "s&amp;s" in html
    assert "<script" not in html and "&amp;lt;" not in html and "&amp;amp;" not in html
    assert "<td>critical</td>" in html  # severity shown when the result carries it


def test_scope_narrows_every_section_but_integrity(governed) -> None:
    import datetime as dt

    ws = governed[0]
    only = _collect(ws, dataset=HOSTILE)
    assert [p.dataset for p in only.processing] == [HOSTILE]
    assert not (only.runs or only.versions or only.quality or only.deid or only.budgets or only.lineage.nodes)
    assert only.integrity.ok and only.integrity.events > 10
    later = _collect(ws, since=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(days=1))
    assert not (later.runs or later.versions or later.quality or later.decisions or later.keys.shredded)
    assert len(later.processing) == 3  # datasets are described whatever the dates
    clinic = _collect(ws, dataset="clinic-visits")
    assert {r.dataset for r in clinic.runs} == {"clinic-visits"} and clinic.versions


def test_cli_report_scopes_and_refuses_bad_input(governed, tmp_path) -> None:
    from tests.governance.run.test_runner import cli, error_line

    ws = governed[0]
    out = tmp_path / "r.html"
    ok = cli("report", "--out", str(out), "--dataset", "clinic-visits", "--since", "2020-01-01",
             "--workspace", str(ws.root))
    assert ok.returncode == 0, ok.stderr
    html = out.read_text()
    assert "scope: dataset clinic-visits, since 2020-01-01 00:00 UTC" in html and HOSTILE not in html
    bad = cli("report", "--out", str(out), "--since", "last tuesday", "--workspace", str(ws.root))
    assert bad.returncode == 2 and "--since: expected an ISO date" in error_line(bad)
    missing = cli("report", "--out", str(out), "--dataset", "nope", "--workspace", str(ws.root))
    assert missing.returncode == 2 and "dataset `nope` not found" in error_line(missing)
