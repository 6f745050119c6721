"""`privgov policy bind` is the only way a policy comes to apply to a dataset: what a token holder
tries instead (their own policy, their own cap, tags, unit) is refused and audited, and what an
admin binds takes effect for the next decision without re-running anything."""
from __future__ import annotations

import pytest
import yaml

from tests.governance.access.conftest import (
    CLINIC_POLICY, blobs, denies_after, grant, head, ledger, no_training, pipeline, privgov, versions, write_policy,
)

GENEROUS = {
    "version": 1, "name": "clinic", "roles": ["ml-engineer", "data-engineer", "analyst", "contractor", "admin"],
    "grants": [{"id": "everything", "roles": ["ml-engineer", "data-engineer"],
                "actions": ["read", "read_masked", "read_quarantine", "train", "predict", "validate", "erase",
                            "admin", "ingest"],
                "datasets": ["*"], "purposes": ["readmission-model", "pipeline", "quality-review"],
                "epsilon_cap": 1000.0}],
    "budgets": {"datasets": {"clinic-visits": {"epsilon": 1000.0, "delta": 0.1}}},
}


def _bound_hash(ws, dataset: str = "clinic-visits") -> str | None:
    from governance.storage.store import Dataset

    with ws.session() as s:
        return s.query(Dataset.policy_hash).filter(Dataset.name == dataset).scalar()


def _bind(capsys, ws, token, policy, *extra, dataset="clinic-visits"):
    return privgov(capsys, "policy", "bind", dataset, policy, *extra, "-w", ws.root, "--token", token)


def _run(capsys, ws, token, spec):
    return privgov(capsys, "run", spec, "-w", ws.root, "--token", token)


def test_policy_swap_is_refused_and_the_bound_policy_still_decides(capsys, people, tmp_path) -> None:
    """A token holder writes a policy that grants everything with a cap of 1000 and points the
    pipeline at it: refused before anything is read, audited under the token's principal; the
    stored binding and the ledger cap do not move, and export still decides under the bound text."""
    ws, tokens = people
    assert _run(capsys, ws, tokens["demo"], no_training(tmp_path, "legit"))[0] == 0
    hash_before, cap_before, stored_before = _bound_hash(ws), ledger(ws).epsilon_cap, versions(ws)
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump(GENEROUS, sort_keys=False))
    for spec in (pipeline(tmp_path, "swap", policy=str(mine)),
                 pipeline(tmp_path, "swap-train", policy=str(mine), **{"training.epsilon": 50.0})):
        before = head(ws)
        code, _, err = _run(capsys, ws, tokens["demo"], spec)
        assert code == 3 and "only the bound policy applies" in err
        [deny] = denies_after(ws, before)
        assert (deny.principal, deny.action, deny.resource) == ("demo-ml-engineer", "run", "clinic-visits")
        assert "mine.yaml" in deny.reason
    assert _bound_hash(ws) == hash_before and ledger(ws).epsilon_cap == cap_before == 3.0
    assert versions(ws) == stored_before and ledger(ws).runs == []
    # under the swapped policy demo could export; under the bound one it may not
    before = head(ws)
    code, _, _ = privgov(capsys, "dataset", "export", "clinic-visits", "--purpose", "pipeline", "--out",
                         tmp_path / "x.csv", "-w", ws.root, "--token", tokens["demo"])
    assert code == 3 and not (tmp_path / "x.csv").exists()
    [deny] = denies_after(ws, before)
    assert deny.details["policy_hash"] == hash_before[:16]


def test_only_admins_bind(capsys, people, tmp_path) -> None:
    ws, tokens = people
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump(GENEROUS, sort_keys=False))
    hash_before = _bound_hash(ws)
    for key, principal in (("demo", "demo-ml-engineer"), ("ana", "ana"), ("mallory", "mallory")):
        before = head(ws)
        code, _, err = _bind(capsys, ws, tokens[key], mine)
        assert code == 3 and "admin" in err
        assert [(e.principal, e.action) for e in denies_after(ws, before)] == [(principal, "policy_bind")]
    before = head(ws)
    code = privgov(capsys, "policy", "bind", "clinic-visits", mine, "-w", ws.root)[0]
    assert code == 3
    assert [(e.principal, e.action) for e in denies_after(ws, before)] == [("unauthenticated", "policy_bind")]
    assert _bound_hash(ws) == hash_before and ledger(ws).epsilon_cap == 3.0


def test_rebinding_changes_the_next_decision_without_a_rerun(capsys, people, tmp_path) -> None:
    ws, tokens = people
    assert _run(capsys, ws, tokens["demo"], no_training(tmp_path))[0] == 0

    def export():
        out = tmp_path / "dora.csv"
        out.unlink(missing_ok=True)
        return privgov(capsys, "dataset", "export", "clinic-visits", "--purpose", "pipeline", "--out", out,
                       "-w", ws.root, "--token", tokens["dora"])[0]

    assert export() == 3

    def dora_reads(doc):
        doc["grants"].append({"id": "engineer-masked", "roles": ["data-engineer"], "actions": ["read_masked"],
                              "datasets": ["clinic-visits"], "purposes": ["pipeline"], "masks": {"email": "drop"}})

    assert _bind(capsys, ws, tokens["admin"], write_policy(tmp_path / "v2.yaml", dora_reads))[0] == 0
    assert export() == 0
    assert _bind(capsys, ws, tokens["admin"], CLINIC_POLICY)[0] == 0
    before = head(ws)
    assert export() == 3
    assert len(denies_after(ws, before)) == 1
    assert len(versions(ws)) == 2  # nothing was re-run: the same data version and quarantine


def test_rebinding_a_different_budget_moves_the_ledger_cap(capsys, people, tmp_path) -> None:
    ws, tokens = people

    def budget(eps):
        def edit(doc):
            doc["budgets"]["datasets"]["clinic-visits"]["epsilon"] = eps
        return edit

    assert _bind(capsys, ws, tokens["admin"], write_policy(tmp_path / "b5.yaml", budget(5.0)))[0] == 0
    assert ledger(ws).epsilon_cap == 5.0
    code, out, _ = privgov(capsys, "budget", "show", "clinic-visits", "-w", ws.root)
    assert code == 0 and "cap ε=5" in out
    assert _bind(capsys, ws, tokens["admin"], write_policy(tmp_path / "b2.yaml", budget(2.0)))[0] == 0
    assert ledger(ws).epsilon_cap == 2.0


def test_a_pipeline_cannot_raise_the_cap(capsys, people, tmp_path) -> None:
    """There is no pipeline key for it, and a target above the grant's per-run cap is denied."""
    ws, tokens = people
    before, stored = head(ws), blobs(ws)
    code, _, err = _run(capsys, ws, tokens["demo"], pipeline(tmp_path, "budget", budget={"epsilon": 1000}))
    assert code == 2 and "budget" in err
    code, _, err = _run(capsys, ws, tokens["demo"], pipeline(tmp_path, "eps", **{"training.epsilon": 50.0}))
    assert code == 3 and "per-run cap 3" in err
    assert ledger(ws).epsilon_cap == 3.0 and ledger(ws).runs == []
    assert versions(ws) == [] and blobs(ws) == stored
    assert [(e.principal, e.action) for e in denies_after(ws, before)] == [("demo-ml-engineer", "train")]


def test_rebinding_without_a_budget_refuses_training(capsys, people, tmp_path) -> None:
    """The ledger keeps its old cap (entries stay counted); the bound policy decides whether
    training may spend any of it, as `policy bind` says."""
    ws, tokens = people
    nobudget = write_policy(tmp_path / "nobudget.yaml", lambda doc: doc.pop("budgets"))
    code, out, _ = _bind(capsys, ws, tokens["admin"], nobudget)
    assert code == 0 and "training is refused" in out
    before, stored = head(ws), blobs(ws)
    code, _, err = _run(capsys, ws, tokens["demo"], pipeline(tmp_path, policy=None))
    assert code == 3 and "no privacy budget" in err
    assert versions(ws) == [] and blobs(ws) == stored and ledger(ws).runs == []
    assert [(e.principal, e.action) for e in denies_after(ws, before)] == [("demo-ml-engineer", "budget_reserve")]


@pytest.mark.parametrize("changes, needle", [
    ({"tags": ["phi", "research"]}, "research"),
    ({"tags": ["public"]}, "public"),
    ({"privacy_unit": "visit_id"}, "visit_id"),
    ({"privacy_unit": "row_id"}, "row_id"),
])
def test_pipeline_tags_and_unit_must_match_the_binding(capsys, people, tmp_path, changes, needle) -> None:
    ws, tokens = people
    before = head(ws)
    code, _, err = _run(capsys, ws, tokens["demo"], pipeline(tmp_path, **changes))
    assert code == 3 and needle in err
    [deny] = denies_after(ws, before)
    assert (deny.principal, deny.action) == ("demo-ml-engineer", "run") and needle in deny.reason
    assert versions(ws) == [] and ledger(ws).runs == []


@pytest.mark.parametrize("name", ["run:0123abcd", "clinic-*", "clinic-[a-z]isits", "../clinic", "_x", "a b"])
def test_bind_refuses_names_that_rules_or_runs_could_mistake(capsys, people, name) -> None:
    """Grants match dataset names with globs and model use names runs `run:<id>`; a dataset
    named like either would be matched by rules nobody wrote for it."""
    from governance.storage.store import Dataset

    ws, tokens = people
    code, _, err = _bind(capsys, ws, tokens["admin"], CLINIC_POLICY, dataset=name)
    assert code == 2 and "dataset name" in err
    with ws.session() as s:
        assert s.query(Dataset).filter(Dataset.name == name).count() == 0


def _per_row_clinic(tmp_path):
    from tests.conftest import ROW_STATEMENT, policy_with_privacy

    return policy_with_privacy(CLINIC_POLICY, tmp_path / "clinic-rows.yaml", {"unit": "row", "statement": ROW_STATEMENT})


def test_a_unit_bound_during_a_run_stops_the_run(tmp_path) -> None:
    """Rebinding a policy that declares a unit, racing a run (library callers hold no workspace
    lock): the run was admitted per row; it must not reserve or train on the per-row ledger while
    later runs charge a fresh cap per patient. Simulated deterministically from the progress hook."""
    from governance.access.authorize import Identity
    from governance.access.binding import bind_policy
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline
    from privacy.errors import AccessDenied
    from tests.conftest import new_workspace
    from tests.governance.access.conftest import PEOPLE

    ws, tokens = new_workspace(tmp_path / "ws", PEOPLE, {"clinic-visits": (_per_row_clinic(tmp_path), ["phi"], None)})

    def rebind(name: str, state: str) -> None:
        if (name, state) == ("ingest", "start"):
            bind_policy(ws, Identity("admin", ("admin",)), "clinic-visits", CLINIC_POLICY)

    spec = load_pipeline(pipeline(tmp_path, privacy_unit=None, report=None, policy=None))
    before = head(ws)
    with pytest.raises(AccessDenied, match="privacy unit .* changed during the run"):
        run_pipeline(ws, spec, tokens["demo"], rebind)
    assert len(versions(ws)) == 0
    assert ledger(ws).runs == []
    assert [(e.principal, e.action) for e in denies_after(ws, before)] == [("demo-ml-engineer", "run")]


def test_a_unit_cannot_be_bound_once_the_row_ledger_was_charged(tmp_path) -> None:
    """Once a run reserved per row, narrowing the unit is refused at the bind: those charges were
    per row, and a dataset keeps one ledger. The run in flight finishes on the row ledger."""
    from governance.access.authorize import Identity
    from governance.access.binding import bind_policy
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline
    from governance.storage.store import Dataset
    from privacy.errors import InputError
    from tests.conftest import new_workspace
    from tests.governance.access.conftest import PEOPLE

    ws, tokens = new_workspace(tmp_path / "ws", PEOPLE, {"clinic-visits": (_per_row_clinic(tmp_path), ["phi"], None)})
    refused: list[str] = []

    def rebind(name: str, state: str) -> None:
        if (name, state) == ("encrypt", "start"):
            with pytest.raises(InputError) as info:
                bind_policy(ws, Identity("admin", ("admin",)), "clinic-visits", CLINIC_POLICY)
            refused.append(str(info.value))

    summary = run_pipeline(ws, load_pipeline(pipeline(tmp_path, privacy_unit=None, report=None, policy=None)),
                           tokens["demo"], rebind)
    assert summary.status == "succeeded" and refused and "cannot change" in refused[0]
    with ws.session() as s:
        assert s.query(Dataset.privacy_unit).filter(Dataset.name == "clinic-visits").scalar() is None


def test_bound_policy_text_is_what_decides_not_the_file(capsys, people, tmp_path) -> None:
    """Editing the bound file on disk changes nothing until an admin rebinds it."""
    ws, tokens = people
    assert _run(capsys, ws, tokens["demo"], no_training(tmp_path))[0] == 0
    copy = write_policy(tmp_path / "clinic.yaml", lambda doc: None)
    assert _bind(capsys, ws, tokens["admin"], copy)[0] == 0

    def dora_reads(doc):
        grant(doc, "analyst-quality-review")["roles"] = ["analyst", "data-engineer"]
        grant(doc, "analyst-quality-review")["purposes"] = ["quality-review", "pipeline"]

    write_policy(copy, dora_reads)  # edited in place, not rebound
    code = privgov(capsys, "dataset", "export", "clinic-visits", "--purpose", "pipeline", "--out", tmp_path / "o.csv",
                   "-w", ws.root, "--token", tokens["dora"])[0]
    assert code == 3
    # and a pipeline naming the edited file is refused: it is not the bound text any more
    code, _, err = _run(capsys, ws, tokens["demo"], no_training(tmp_path, "edited", policy=str(copy)))
    assert code == 3 and "only the bound policy applies" in err


# --------------------------------------------------------------------------- the privacy unit lives in the policy text


def test_binding_a_training_policy_without_a_unit_is_refused(capsys, people, tmp_path) -> None:
    """A policy that grants `train` must say who epsilon protects; without `privacy:` the bind
    stops with one line and nothing changes (binding, unit, cap)."""
    from tests.conftest import policy_with_privacy

    ws, tokens = people
    nounit = policy_with_privacy(CLINIC_POLICY, tmp_path / "nounit.yaml", None)
    hash_before, cap_before = _bound_hash(ws), ledger(ws).epsilon_cap
    code, _, err = _bind(capsys, ws, tokens["admin"], nounit)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "ml-train-readmission" in err and "privacy" in err, err
    assert _bound_hash(ws) == hash_before and ledger(ws).epsilon_cap == cap_before
    # where the same text lets nobody train (its train grant names clinic-visits only), it needs no unit
    assert _bind(capsys, ws, tokens["admin"], nounit, dataset="clinic-new")[0] == 0


def test_the_unit_comes_from_the_policy_and_the_flag_only_checks_it(capsys, people, tmp_path) -> None:
    from governance.storage.store import Dataset

    ws, tokens = people
    code, out, _ = _bind(capsys, ws, tokens["admin"], CLINIC_POLICY, dataset="clinic-b")
    assert code == 0 and "privacy unit patient_id (at most 24 rows per unit)" in " ".join(out.split())
    assert _bind(capsys, ws, tokens["admin"], CLINIC_POLICY, "--privacy-unit", "patient_id", dataset="clinic-b")[0] == 0
    code, _, err = _bind(capsys, ws, tokens["admin"], CLINIC_POLICY, "--privacy-unit", "visit_id", dataset="clinic-c")
    assert code == 2 and "visit_id" in err and "declares `patient_id`" in err
    with ws.session() as s:
        units = dict(s.query(Dataset.name, Dataset.privacy_unit).filter(Dataset.name.like("clinic-%")))
    assert units == {"clinic-visits": "patient_id", "clinic-b": "patient_id"}  # clinic-c was never created


def test_rebinding_another_unit_is_refused_and_the_same_unit_with_a_new_bound_works(capsys, people, tmp_path) -> None:
    from tests.conftest import policy_with_privacy

    ws, tokens = people
    visits = policy_with_privacy(CLINIC_POLICY, tmp_path / "visits.yaml", {"unit": "visit_id", "max_rows_per_unit": 1})
    code, _, err = _bind(capsys, ws, tokens["admin"], visits)
    assert code == 2 and "already has privacy unit `patient_id`" in err
    tighter = policy_with_privacy(CLINIC_POLICY, tmp_path / "tighter.yaml", {"unit": "patient_id", "max_rows_per_unit": 5})
    code, out, _ = _bind(capsys, ws, tokens["admin"], tighter)
    assert code == 0 and "at most 5 rows per unit" in " ".join(out.split())


def _legacy_binding(ws, tmp_path) -> None:
    """What a workspace bound before units lived in the policy holds: the clinic text without
    `privacy:` (stored by hash) bound to clinic-visits, whose unit was set by the old flag."""
    from governance.access.binding import policy_digest
    from governance.storage.store import Dataset, PolicyRecord
    from tests.conftest import policy_with_privacy

    text = policy_with_privacy(CLINIC_POLICY, tmp_path / "old.yaml", None).read_text()
    with ws.session() as s:
        s.add(PolicyRecord(name="clinic", content_hash=policy_digest(text), text=text))
        s.query(Dataset).filter(Dataset.name == "clinic-visits").update({"policy_hash": policy_digest(text)})


def test_training_under_a_policy_without_a_unit_is_refused_until_rebound(capsys, people, tmp_path) -> None:
    """An old workspace: one line naming the rebind command (no traceback), audited, nothing stored
    or charged; after `privgov policy bind` with the current text the same pipeline trains."""
    ws, tokens = people
    _legacy_binding(ws, tmp_path)
    before, stored = head(ws), blobs(ws)
    code, _, err = _run(capsys, ws, tokens["demo"], pipeline(tmp_path, policy=None))
    lines = [ln for ln in err.strip().splitlines() if ln.strip() and ln.startswith("error:")]
    assert code == 3 and len(lines) == 1 and "Traceback" not in err
    assert "declares no privacy unit" in lines[0] and "privgov policy bind clinic-visits" in lines[0]
    assert versions(ws) == [] and blobs(ws) == stored and ledger(ws).runs == []
    [deny] = denies_after(ws, before)
    assert (deny.principal, deny.action) == ("demo-ml-engineer", "train") and "privacy unit" in deny.reason
    assert _bind(capsys, ws, tokens["admin"], CLINIC_POLICY)[0] == 0
    code, _, err = _run(capsys, ws, tokens["demo"], pipeline(tmp_path, "again", report=None))
    assert code == 0, err
    assert [r.state for r in ledger(ws).runs] == ["committed"]


@pytest.mark.parametrize("bound", [100, 25, 3, 1])
def test_a_pipeline_cannot_loosen_or_change_the_rows_bound(capsys, people, tmp_path, bound) -> None:
    """The policy declares 24 rows per patient; a pipeline that names another bound (looser or
    narrower) is refused before anything is read, audited under the token's principal."""
    ws, tokens = people
    before, stored = head(ws), blobs(ws)
    code, _, err = _run(capsys, ws, tokens["demo"], pipeline(tmp_path, **{"training.options.max_rows_per_unit": bound,
                                                                          "training.bounding": "group"}))
    assert code == 3 and f"max_rows_per_unit {bound}" in err and "declares 24 rows per `patient_id`" in err
    [deny] = denies_after(ws, before)
    assert (deny.principal, deny.action) == ("demo-ml-engineer", "run") and "max_rows_per_unit" in deny.reason
    assert versions(ws) == [] and blobs(ws) == stored and ledger(ws).runs == []
