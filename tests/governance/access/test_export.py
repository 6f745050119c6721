"""Releasing stored versions (`dataset export`, `quality ... dataset:NAME@V`) as an insider would
try it: the quarantine is its own action, it leaves de-identified, masks apply, row filters that
cannot be evaluated deny, and no message tells a caller more than the decision allows."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import REPO
from tests.governance.access.conftest import (
    denies_after, grant, head, no_training, privgov, write_policy,
)

DROPPED = ["name", "ssn", "phone", "date_of_birth"]  # the example pipeline's `drop` steps


@pytest.fixture
def stored(people, tmp_path):
    """One governed run without training on the example workspace: (ws, tokens, data v, quarantine v)."""
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline

    ws, tokens = people
    summary = run_pipeline(ws, load_pipeline(no_training(tmp_path)), tokens["demo"])
    assert summary.quarantine_version is not None and summary.rows_quarantined > 0
    return ws, tokens, summary.version, summary.quarantine_version


def _export(capsys, ws, token, *extra: str, dataset: str = "clinic-visits", purpose: str = "quality-review", out=None):
    args = ["dataset", "export", dataset, "--purpose", purpose, "--out", str(out), "-w", str(ws.root)]
    if token is not None:
        args += ["--token", token]
    return privgov(capsys, *args, *extra)


def test_analyst_may_not_export_the_quarantine(capsys, stored, tmp_path) -> None:
    ws, tokens, _, qv = stored
    before = head(ws)
    out = tmp_path / "q.csv"
    code, _, err = _export(capsys, ws, tokens["ana"], "--version", str(qv), out=out)
    assert code == 3 and not out.exists()
    [deny] = denies_after(ws, before)
    assert (deny.principal, deny.action, deny.version) == ("ana", "read_quarantine", qv)
    # the message names what was asked (`export`), not the kind of the version
    assert "read_quarantine" not in err and "may not `export`" in err


def test_quarantine_export_leaves_deidentified_and_masked(capsys, stored, tmp_path) -> None:
    """dora holds `read_quarantine` (purpose pipeline, patient_id hashed, zip partial): the rows
    come without the run's dropped identifiers, with pseudonymized columns hashed."""
    from governance.demo.sample_data import generate_clinic

    ws, tokens, _, qv = stored
    out = tmp_path / "q.csv"
    code, _, err = _export(capsys, ws, tokens["dora"], "--version", str(qv), purpose="pipeline", out=out)
    assert code == 0, err
    df = pd.read_csv(out, dtype=str)
    raw = generate_clinic(3000, seed=7).astype(str)  # row ids are assigned at ingest: 0, 1, 2, ...
    assert len(df) > 0 and not set(DROPPED) & set(df.columns)
    mine = raw.iloc[df["row_id"].astype(int).to_numpy()]
    assert df["email"].dropna().str.fullmatch(r"[0-9a-f]{16}").all()  # pseudonymized by the run → hashed here
    assert df["patient_id"].dropna().str.fullmatch(r"[0-9a-f]{16}").all()  # the grant's mask: hash
    assert "zip" not in df.columns  # the run drops zip: so does the quarantine release
    text = out.read_text()
    for col in ("name", "ssn", "phone", "email"):  # (birth dates may coincide with visit dates)
        assert not any(str(v) in text for v in mine[col].dropna() if len(str(v)) > 4), col
    assert not any(re.search(rf"\b{re.escape(str(p))}\b", text) for p in mine["patient_id"].dropna())


def test_quarantine_export_for_another_purpose_is_denied(capsys, stored, tmp_path) -> None:
    ws, tokens, _, qv = stored
    before = head(ws)
    code, _, _ = _export(capsys, ws, tokens["dora"], "--version", str(qv), purpose="quality-review",
                         out=tmp_path / "q.csv")
    assert code == 3 and len(denies_after(ws, before)) == 1


def test_row_filter_on_numeric_age_fails_closed(capsys, people, tmp_path) -> None:
    """The analyst's filter `age not_in ["0-19"]` is written for 20-year bands; on a version whose
    `age` is a number it would keep children. The export is denied and audited instead."""
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline

    ws, tokens = people
    spec = load_pipeline(no_training(tmp_path))
    steps = [s for s in spec.deid.steps if s["column"] != "age"]
    path = no_training(tmp_path, "raw-age", **{"deid.steps": steps, "deid.quasi_identifiers": ["sex"]})
    run_pipeline(ws, load_pipeline(path), tokens["demo"])
    before = head(ws)
    out = tmp_path / "a.csv"
    code, _, err = _export(capsys, ws, tokens["ana"], out=out)
    assert code == 3 and "fail closed" in err and not out.exists()
    [deny] = denies_after(ws, before)
    assert deny.principal == "ana" and "fail closed" in deny.reason and "age" in deny.reason


def test_row_filter_fails_closed_on_the_quarantine(capsys, stored, tmp_path) -> None:
    """Grant the analyst the quarantine too (same masks, same filter): the quarantine holds raw
    integer ages, so the filter cannot be evaluated there and the export is denied."""
    ws, tokens, _, qv = stored

    def also_quarantine(doc):
        grant(doc, "analyst-quality-review")["actions"] = ["read_masked", "read_quarantine"]

    policy = write_policy(tmp_path / "clinic-q.yaml", also_quarantine)
    assert privgov(capsys, "policy", "bind", "clinic-visits", policy, "-w", ws.root, "--token", tokens["admin"])[0] == 0
    before = head(ws)
    out = tmp_path / "q.csv"
    code, _, err = _export(capsys, ws, tokens["ana"], "--version", str(qv), out=out)
    assert code == 3 and "fail closed" in err and not out.exists()
    evs = denies_after(ws, before)
    assert len(evs) == 1 and evs[0].principal == "ana" and evs[0].version == qv
    # the data version (age in bands) still exports under the same grant
    assert _export(capsys, ws, tokens["ana"], out=tmp_path / "d.csv")[0] == 0
    assert not (pd.read_csv(tmp_path / "d.csv", dtype=str)["age"] == "0-19").any()


def test_quality_checks_see_the_quarantine_as_export_releases_it(capsys, stored, tmp_path) -> None:
    """`quality validate dataset:NAME@Q` decrypts in-process; it gets what `dataset export` would
    give the same principal - not the raw quarantine with names and SSNs."""
    from governance.access.export import read_authorized

    ws, tokens, _, qv = stored
    df, rid = read_authorized(ws, tokens["dora"], "validate", "clinic-visits", qv, "pipeline")
    assert rid == "row_id" and len(df) > 0
    assert not set(DROPPED) & set(df.columns)
    assert df["patient_id"].dropna().astype(str).str.fullmatch(r"[0-9a-f]{16}").all()
    suite = tmp_path / "masked.json"
    suite.write_text(json.dumps({"name": "masked", "expectations": [
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "email", "regex": r"^[0-9a-f]{16}$"}},
    ]}))
    code, out, err = privgov(capsys, "quality", "validate", f"dataset:clinic-visits@{qv}", "--suite", suite,
                             "--format", "json", "-w", ws.root, "--token", tokens["dora"])
    assert code == 0, out + err
    # the analyst may validate nothing; the quarantine is `read_quarantine` whatever was asked
    before = head(ws)
    code, _, err = privgov(capsys, "quality", "validate", f"dataset:clinic-visits@{qv}", "--suite", suite,
                           "--purpose", "quality-review", "-w", ws.root, "--token", tokens["ana"])
    assert code == 3 and "read_quarantine" not in err
    assert [(e.principal, e.action) for e in denies_after(ws, before)] == [("ana", "read_quarantine")]


def test_version_number_of_another_dataset_reads_nothing(capsys, stored, tmp_path) -> None:
    """Version numbers are per dataset: asking adult-census for clinic's version 1 finds nothing."""
    ws, tokens, v, _ = stored
    code, _, err = _export(capsys, ws, tokens["ana"], "--version", str(v), dataset="adult-census",
                           out=tmp_path / "x.csv")
    assert code == 3 and not (tmp_path / "x.csv").exists()  # analysts have no grant on adult-census


# --------------------------------------------------------------------------- what messages reveal
def _cli(*args: str) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "GX_ANALYTICS_ENABLED": "False"}
    env.pop("PRIVGOV_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "governance.cli", *args], capture_output=True, cwd=REPO, env=env,
                          timeout=300)


def test_without_a_valid_token_known_and_unknown_datasets_look_alike(stored, tmp_path) -> None:
    """Every token variant against one stored workspace per backend (a governed run costs seconds; each
    call is refused, and audited, before any data is read, so no call changes what the next one gets)."""
    ws = stored[0]
    for token in (None, "pgv_nope", "pgv_" + "0" * 16 + "_" + "1" * 64):
        results = []
        for name in ("clinic-visits", "no-such-dataset"):
            args = ["dataset", "export", name, "--purpose", "quality-review", "--out", str(tmp_path / "o.csv"),
                    "-w", str(ws.root)]
            res = _cli(*args, *([] if token is None else ["--token", token]))
            results.append(res)
        assert [r.returncode for r in results] == [3, 3], token
        assert results[0].stderr == results[1].stderr, token  # byte for byte
        assert b"clinic-visits" not in results[0].stderr, token
        assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("extra", [[], ["--version", "QV"]])
def test_with_a_token_but_no_grant_known_and_unknown_datasets_look_alike(capsys, stored, tmp_path, extra) -> None:
    """dora may read neither: the existing dataset (and its quarantine version), an unbound
    dataset and a missing one give the same words, modulo the name."""
    from governance.storage import catalog

    ws, tokens, _, qv = stored
    with ws.session() as s:
        catalog.get_or_create_dataset(s, "orphan", privacy_unit=None, row_id_column="row_id", tags=[])
    extra = [str(qv) if x == "QV" else x for x in extra]
    messages = set()
    for name in ("clinic-visits", "orphan", "no-such-dataset"):
        code, _, err = _export(capsys, ws, tokens["dora"], *extra, dataset=name, purpose="quality-review",
                               out=tmp_path / "o.csv")
        assert code == 3
        messages.add(err.replace(name, "NAME"))
    assert len(messages) == 1, messages
    # mallory (contractor, explicit deny on PHI) reads the same words
    code, _, err = _export(capsys, ws, tokens["mallory"], *extra, out=tmp_path / "o.csv")
    assert code == 3 and err.replace("clinic-visits", "NAME").replace("mallory", "dora") in messages


def test_control_characters_in_a_purpose_stay_on_one_line(capsys, stored, tmp_path) -> None:
    ws, tokens, _, _ = stored
    code, _, err = _export(capsys, ws, tokens["ana"], purpose="x\nerror: all good", out=tmp_path / "o.csv")
    assert code == 3
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
