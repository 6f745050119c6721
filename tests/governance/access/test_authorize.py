"""The one authorization path, attacked by insiders holding valid (or almost valid) tokens:
every refusal is an audited `deny` under the authenticated name (or `unauthenticated`, with the
claimed name), refused runs store nothing, and model use is decided under the run's dataset."""
from __future__ import annotations

import datetime as dt
import itertools
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import new_workspace
from tests.governance.access.conftest import (
    PEOPLE, blobs, denies_after, events_after, grant, head, ledger, no_training, pipeline, privgov,
    versions, write_policy,
)

UNAUTH = "unauthenticated"
BAD_TOKEN = "pgv_" + "0" * 16 + "_" + "1" * 64


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A workspace with PEOPLE and one finished training run: (ws, tokens, run_uid, folder)."""
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline

    tmp = tmp_path_factory.mktemp("authz")
    ws, tokens = new_workspace(tmp / "ws", PEOPLE)
    summary = run_pipeline(ws, load_pipeline(pipeline(tmp, "trained", report=None)), tokens["demo"])
    assert summary.status == "succeeded" and summary.quarantine_version
    return ws, tokens, summary.run_uid, tmp


def _copy(trained, dest: Path):
    """An independent copy of the trained workspace, for tests that change it for good."""
    from governance.workspace import Workspace

    shutil.copytree(trained[0].root, dest)
    return Workspace.open(dest)


# --------------------------------------------------------------------------- every denial audited
def test_every_denial_is_audited_once_under_the_right_name(capsys, trained, tmp_path) -> None:
    from governance.access.identity import ApiToken, Principal, add_principal, issue_token, revoke_principal
    from governance.demo.sample_data import write_clinic
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline
    from governance.storage import catalog

    ws, tokens, run_uid, _ = trained
    w = str(ws.root)
    with ws.session() as s:
        add_principal(s, "rex", roles=["analyst"])
        rex = issue_token(s, "rex", ttl_days=1)
        add_principal(s, "olga", roles=["analyst"])
        olga = issue_token(s, "olga", ttl_days=1)
        catalog.get_or_create_dataset(s, "orphan", privacy_unit=None, row_id_column="row_id", tags=[])
    with ws.session() as s:
        revoke_principal(s, "rex")
        olga_id = s.query(Principal.id).filter(Principal.name == "olga").scalar()
        s.query(ApiToken).filter(ApiToken.principal_id == olga_id).update(
            {"expires_at": dt.datetime(2020, 1, 1)})
    # a data version whose `age` is a number (no age bands), for the analyst's fail-closed filter
    spec = load_pipeline(no_training(tmp_path, "raw-age"))
    steps = [st for st in spec.deid.steps if st["column"] != "age"]
    run_pipeline(ws, load_pipeline(no_training(tmp_path, "raw-age2", **{
        "deid.steps": steps, "deid.quasi_identifiers": ["sex"]})), tokens["demo"])
    qv = next(v for v, kind in versions(ws) if kind == "quarantine")
    csv = write_clinic(tmp_path / "visits.csv", 50, seed=1)
    deid = tmp_path / "deid.yaml"
    deid.write_text(yaml.safe_dump([{"column": "email", "action": "pseudonymize", "domain": "email"}]))
    suite = tmp_path / "suite.json"
    suite.write_text('{"name": "s", "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "age"}}]}')
    mine = write_policy(tmp_path / "mine.yaml",
                        lambda doc: doc["budgets"]["datasets"]["clinic-visits"].update(epsilon=1000))

    def tok(token):
        return [] if token is None else ["--token", token]

    def export(token, *extra, dataset="clinic-visits", purpose="quality-review"):
        return ["dataset", "export", dataset, "--purpose", purpose, "--out", str(tmp_path / "x.csv"), "-w", w,
                *extra, *tok(token)]

    folders = itertools.count()

    def run(token, **changes):
        name = f"p{next(folders)}"
        return ["run", str(pipeline(tmp_path, name, report=None, **changes)), "-w", w, *tok(token)]

    demo, ana = tokens["demo"], tokens["ana"]
    attempts = [
        # (what, argv, principal in the deny event, claimed name in its details)
        ("no token", export(None), UNAUTH, None),
        ("malformed token", export("not-a-token"), UNAUTH, None),
        ("unknown token", export(BAD_TOKEN), UNAUTH, None),
        ("expired token", export(olga), UNAUTH, None),
        ("revoked principal", export(rex), UNAUTH, None),
        ("wrong role", export(tokens["dora"]), "dora", None),
        ("wrong purpose", export(ana, purpose="marketing"), "ana", None),
        ("no purpose", export(ana, purpose=""), "ana", None),
        ("contractor deny rule on phi", export(tokens["mallory"]), "mallory", None),
        ("unknown dataset", export(ana, dataset="no-such-dataset"), "ana", None),
        ("glob as a dataset name", export(ana, dataset="clinic-*"), "ana", None),
        ("unbound dataset", export(ana, dataset="orphan"), "ana", None),
        ("quarantine export", export(ana, "--version", str(qv)), "ana", None),
        ("fail-closed row filter", export(ana), "ana", None),
        ("quarantine through quality validate", ["quality", "validate", f"dataset:clinic-visits@{qv}", "--suite",
                                                 str(suite), "--purpose", "quality-review", "-w", w, *tok(ana)],
         "ana", None),
        ("non-admin principal add", ["principal", "add", "eve", "--roles", "admin", "-w", w, *tok(demo)],
         "demo-ml-engineer", None),
        ("non-admin token issue", ["token", "issue", "admin", "-w", w, *tok(demo)], "demo-ml-engineer", None),
        ("non-admin keys rotate", ["keys", "rotate", "-w", w, *tok(demo)], "demo-ml-engineer", None),
        ("non-admin policy bind", ["policy", "bind", "clinic-visits", str(mine), "-w", w, *tok(demo)],
         "demo-ml-engineer", None),
        ("non-admin dataset erase", ["dataset", "erase", "clinic-visits", "--version", "1", "-w", w, *tok(ana)],
         "ana", None),
        ("pii apply without token", ["pii", "apply", str(csv), "--spec", str(deid), "--out", str(tmp_path / "p.csv"),
                                     "--dataset", "clinic-visits", "-w", w], UNAUTH, None),
        ("pii apply without ingest grant", ["pii", "apply", str(csv), "--spec", str(deid), "--out",
                                            str(tmp_path / "p.csv"), "--dataset", "clinic-visits", "-w", w, *tok(ana)],
         "ana", None),
        ("predict on an unknown run", ["predict", "feedface00000000", "--data", str(csv), "--out",
                                       str(tmp_path / "pr.csv"), "--purpose", "readmission-model", "-w", w, *tok(demo)],
         "demo-ml-engineer", None),
        ("predict without grant", ["predict", run_uid, "--data", str(csv), "--out", str(tmp_path / "pr.csv"),
                                   "--purpose", "quality-review", "-w", w, *tok(ana)], "ana", None),
        ("audit-model without train grant", ["audit-model", run_uid, "--skip-canary", "-w", w, *tok(ana)], "ana", None),
        ("pipeline without token", run(None), UNAUTH, "demo-ml-engineer"),
        ("pipeline with a bad token", run(BAD_TOKEN), UNAUTH, "demo-ml-engineer"),
        ("pipeline claiming a token as its principal", run(BAD_TOKEN, principal="pgv_" + "a" * 16 + "_" + "b" * 64),
         UNAUTH, "(withheld: looks like an API token)"),
        ("pipeline principal mismatch", run(tokens["dora"]), "dora", "demo-ml-engineer"),
        ("policy swap", run(demo, policy=str(mine)), "demo-ml-engineer", None),
        ("privacy unit change", run(demo, privacy_unit="visit_id"), "demo-ml-engineer", None),
        ("tags outside the binding", run(demo, tags=["phi", "research"]), "demo-ml-engineer", None),
        ("training denied by policy", run(demo, purpose="marketing"), "demo-ml-engineer", None),
        ("budget exceeded", run(demo, **{"training.epsilon": 2.95}), "demo-ml-engineer", None),
        ("per-run epsilon cap exceeded", run(demo, **{"training.epsilon": 50.0}), "demo-ml-engineer", None),
        ("resume another principal's run", run(tokens["dora"], principal="dora") + ["--resume", run_uid],
         "dora", None),
    ]
    assert len(attempts) >= 25
    start = head(ws)
    for what, argv, principal, claimed in attempts:
        before = head(ws)
        code, _, err = privgov(capsys, *argv)
        assert code == 3, f"{what}: exit {code}: {err}"
        denies = denies_after(ws, before)
        assert len(denies) == 1, f"{what}: {[(e.principal, e.action, e.reason) for e in denies]}"
        assert denies[0].principal == principal, what
        if claimed is not None:
            assert (denies[0].details or {}).get("claimed_principal") == claimed, what
        assert BAD_TOKEN not in str([(e.resource, e.purpose, e.reason, e.details) for e in events_after(ws, before)])
    assert len(denies_after(ws, start)) == len(attempts)
    code, out, _ = privgov(capsys, "audit", "verify", "-w", w)
    assert code == 0 and "audit log OK" in out


def test_a_token_pasted_into_the_wrong_argument_never_reaches_the_log(capsys, people, tmp_path) -> None:
    """The audit log is readable without a token; a token given as a dataset name, a run id, a
    purpose or a pipeline's principal is withheld from it, and each attempt is still one deny."""
    ws, tokens = people
    secret = tokens["ana"]
    w = str(ws.root)
    out = str(tmp_path / "o.csv")
    attempts = [
        ["dataset", "export", secret, "--purpose", "quality-review", "--out", out, "-w", w],  # --token forgotten
        ["dataset", "export", secret, "--purpose", "quality-review", "--out", out, "-w", w, "--token", secret],
        ["dataset", "export", "clinic-visits", "--purpose", secret, "--out", out, "-w", w, "--token", tokens["dora"]],
        ["predict", secret, "--data", out, "--out", out, "--purpose", "readmission-model", "-w", w,
         "--token", tokens["demo"]],
        ["run", str(pipeline(tmp_path, principal=secret, purpose=secret)), "-w", w, "--token", tokens["demo"]],
    ]
    start = head(ws)
    for argv in attempts:
        before = head(ws)
        assert privgov(capsys, *argv)[0] == 3, argv
        assert len(denies_after(ws, before)) == 1, argv
    extract = tmp_path / "audit.jsonl"
    assert privgov(capsys, "audit", "export", "--out", extract, "-w", w)[0] == 0
    assert secret not in extract.read_text() and secret[4:20] not in extract.read_text()
    assert len(denies_after(ws, start)) == len(attempts)
    assert privgov(capsys, "audit", "verify", "-w", w)[0] == 0


# --------------------------------------------------------------------------- refused runs
@pytest.mark.parametrize("changes, needle", [
    ({"purpose": "marketing"}, "marketing"),
    ({"training.epsilon": 2.95}, "budget"),
    ({"training.epsilon": 50.0}, "per-run cap"),
])
def test_a_refused_run_stores_nothing(capsys, people, tmp_path, changes, needle) -> None:
    """Training denied, budget exceeded, per-run cap exceeded: no version, no blob, no ledger entry."""
    from governance.storage.store import Run

    ws, tokens = people
    blobs_before = blobs(ws)
    code, _, err = privgov(capsys, "run", pipeline(tmp_path, report=None, **changes), "-w", ws.root,
                           "--token", tokens["demo"])
    assert code == 3 and needle in err
    assert versions(ws) == [] and blobs(ws) == blobs_before
    assert [r.state for r in ledger(ws).runs] == [] and ledger(ws).reserved == 0
    with ws.session() as s:
        assert [(r.status, r.version_id, r.model_blob_hash) for r in s.query(Run)] == [("denied", None, None)]


# --------------------------------------------------------------------------- models
def test_unknown_run_is_not_decided_under_a_dataset_named_like_it(capsys, trained, tmp_path) -> None:
    """Before: an unknown run was decided as dataset `run:<id>`; a dataset of that name (bound
    before names were checked) made the decision."""
    from governance.access.binding import policy_digest
    from governance.storage import catalog
    from governance.storage.store import PolicyRecord

    ws = _copy(trained, tmp_path / "ws")
    tokens = trained[1]
    generous = write_policy(tmp_path / "g.yaml", lambda doc: grant(doc, "ml-predict-readmission").update(
        datasets=["*"]))
    text = generous.read_text()
    with ws.session() as s:
        s.add(PolicyRecord(name="clinic", content_hash=policy_digest(text), text=text))
        ds = catalog.get_or_create_dataset(s, "run:feedface", privacy_unit=None, row_id_column="row_id", tags=[])
        ds.policy_hash = policy_digest(text)
    before = head(ws)
    code, _, err = privgov(capsys, "predict", "feedface", "--data", tmp_path / "none.csv", "--out", tmp_path / "o.csv",
                           "--purpose", "readmission-model", "-w", ws.root, "--token", tokens["demo"])
    assert code == 3 and "denied" in err
    assert [(e.decision, e.reason) for e in events_after(ws, before)] == [("deny", "no such run")]


def test_model_use_is_decided_under_the_runs_dataset(capsys, trained, tmp_path) -> None:
    """An ml-engineer's purpose on adult-census (`income-model`) does not cover a clinic run."""
    ws, tokens, run_uid, _ = trained
    before = head(ws)
    code, _, err = privgov(capsys, "predict", run_uid, "--data", tmp_path / "none.csv", "--out", tmp_path / "o.csv",
                           "--purpose", "income-model", "-w", ws.root, "--token", tokens["demo"])
    assert code == 3 and "clinic-visits" in err
    [deny] = denies_after(ws, before)
    assert deny.resource == "clinic-visits" and "income-model" in deny.reason


def test_a_withdrawn_model_is_a_denial_in_the_log(capsys, trained, tmp_path) -> None:
    from governance.storage.store import Run

    ws = _copy(trained, tmp_path / "ws")
    tokens, run_uid = trained[1], trained[2]
    with ws.session() as s:
        version = s.query(Run).filter(Run.run_uid == run_uid).one().version_id
        from governance.storage.store import DatasetVersion

        number = s.get(DatasetVersion, version).version
    assert privgov(capsys, "dataset", "erase", "clinic-visits", "--version", number, "-w", ws.root,
                   "--token", tokens["admin"])[0] == 0
    for argv in (["predict", run_uid, "--data", tmp_path / "none.csv", "--out", tmp_path / "o.csv", "--purpose",
                  "readmission-model"], ["audit-model", run_uid, "--skip-canary"]):
        before = head(ws)
        code, _, err = privgov(capsys, *argv, "-w", ws.root, "--token", tokens["demo"])
        assert code == 3 and "withdrawn" in err
        [deny] = denies_after(ws, before)
        assert deny.principal == "demo-ml-engineer" and "withdrawn" in deny.reason
    assert privgov(capsys, "audit", "verify", "-w", ws.root)[0] == 0


@pytest.mark.parametrize("edit, needle", [
    (lambda doc: grant(doc, "ml-train-readmission").update(epsilon_cap=0.5), "per-run cap 0.5"),
    (lambda doc: doc.pop("budgets"), "no privacy budget"),
])
def test_canary_audit_follows_the_policy_bound_now(capsys, trained, tmp_path, edit, needle) -> None:
    """The canary audit retrains at the run's ε (1.0); after the admin lowers the per-run cap to
    0.5, or binds a policy without a budget, it is denied before any data is read or budget
    reserved; membership inference (no retraining) still runs."""
    ws = _copy(trained, tmp_path / "ws")
    tokens, run_uid = trained[1], trained[2]
    low = write_policy(tmp_path / "low.yaml", edit)
    assert privgov(capsys, "policy", "bind", "clinic-visits", low, "-w", ws.root, "--token", tokens["admin"])[0] == 0
    entries = len(ledger(ws).runs)
    before = head(ws)
    code, _, err = privgov(capsys, "audit-model", run_uid, "--canaries", "20", "-w", ws.root, "--token", tokens["demo"])
    assert code == 3 and needle in err
    assert [(e.principal, e.action) for e in denies_after(ws, before)] == [("demo-ml-engineer", "train")]
    assert not [e for e in events_after(ws, before) if e.action in ("read", "budget_reserve")]
    assert len(ledger(ws).runs) == entries
    assert privgov(capsys, "audit-model", run_uid, "--skip-canary", "-w", ws.root, "--token", tokens["demo"])[0] == 0


def test_only_its_principal_resumes_a_run(capsys, trained, tmp_path) -> None:
    """Resuming trains on the run's reservation and stores the model under the run: another
    principal allowed to train (here: a second ml-engineer) may not take it over."""
    from governance.access.identity import add_principal, issue_token
    from governance.storage.store import Run

    ws = _copy(trained, tmp_path / "ws")
    run_uid = trained[2]
    with ws.session() as s:
        add_principal(s, "ivy", roles=["ml-engineer", "data-engineer"])
        ivy = issue_token(s, "ivy", ttl_days=1)
        s.query(Run).filter(Run.run_uid == run_uid).update({"status": "failed"})  # as if it had crashed
    before = head(ws)
    code, _, err = privgov(capsys, "run", pipeline(tmp_path, "trained", report=None, principal="ivy"), "--resume",
                           run_uid, "-w", ws.root, "--token", ivy)
    assert code == 3 and "demo-ml-engineer" in err
    assert [(e.principal, e.action) for e in denies_after(ws, before)] == [("ivy", "run")]
    with ws.session() as s:
        assert s.query(Run).filter(Run.run_uid == run_uid).one().status == "failed"
