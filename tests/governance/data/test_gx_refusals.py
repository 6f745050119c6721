"""Same answers as Great Expectations, including refusals; severity; the GX round trip.

A quality gate that silently passes is worse than none: every suite is checked with GX's
own rules at load, an expectation that could not run is an `error` (exit 2), never a pass
or a fail, and results open in GX itself (Data Docs) with their severities."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from governance.cli import main
from governance.data.quality import fast, load_suite, parse_suite, validate
from governance.data.quality.engines import _fast_one
from governance.data.quality.gx_engine import run_gx
from governance.errors import InputError
from tests.governance.data.gx_cases import ORDINARY, REFUSED, frame

_ROWWISE = fast.MAP_TYPES


@pytest.fixture(scope="module")
def ordinary():
    df = frame()
    suite = {"name": "cases", "expectations": [{"type": t, "kwargs": kw} for t, kw, _, _ in ORDINARY]}
    return validate(df, suite, engine="fast"), validate(df, suite, engine="gx")


def test_table_covers_every_fast_type() -> None:
    assert {t for t, *_ in ORDINARY} == fast.FAST_TYPES and len(fast.FAST_TYPES) == 19
    assert {t for t, *_ in REFUSED} <= fast.FAST_TYPES


def test_ordinary_cases_agree_with_gx(ordinary) -> None:
    f, g = ordinary
    for (etype, kwargs, want, ids), rf, rg in zip(ORDINARY, f.results, g.results):
        case = (rf.index, etype, kwargs)
        # really two engines (the fast one hands what it cannot reproduce to GX)
        assert (rf.engine, rg.engine) == ("gx" if want == "error" else "fast", "gx"), case
        assert rg.status == want, case  # GX itself gives the table's answer
        assert rf.status == rg.status, case
        if etype in _ROWWISE:
            assert rf.failing_row_ids == rg.failing_row_ids == ids, case


def _suite(*exps: dict) -> dict:
    return {"name": "s", "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "x"}}, *exps]}


@pytest.mark.parametrize("etype,kwargs,key,how", REFUSED, ids=[f"{t[7:]}-{k}-{h}" for t, _, k, h in REFUSED])
def test_refused_at_load_in_one_line(etype, kwargs, key, how, tmp_path) -> None:
    p = tmp_path / "cases.json"
    p.write_text(json.dumps(_suite({"type": etype, "kwargs": kwargs})))
    with pytest.raises(InputError) as exc:
        load_suite(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}: expectations[1].{key}: "), msg
    assert "\n" not in msg and len(msg) < 400
    # and never reaches either engine: validate() re-checks a suite given as a dict
    for engine in ("fast", "gx"):
        with pytest.raises(InputError, match=re.escape(f"expectations[1].{key}: ")):
            validate(frame(), _suite({"type": etype, "kwargs": kwargs}), engine=engine)


def test_gx_itself_refuses_what_we_refuse() -> None:
    """Our refusals are GX's: its expectation class refuses the arguments, or reads them as
    other values, or (a range with min > max) GX accepts them and then cannot run."""
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    at_run = []
    for etype, kwargs, _, how in REFUSED:
        try:
            obj = ExpectationConfiguration(type=etype, kwargs=dict(kwargs)).to_domain_obj()
        except Exception:
            obj = None
        assert (obj is None) == (how == "construct"), (etype, kwargs)
        if how == "coerced":
            assert any(obj.configuration.kwargs[k] != v for k, v in kwargs.items()), (etype, kwargs)
        if how == "run":
            at_run.append((len(at_run), {"type": etype, "kwargs": kwargs}))
    assert at_run
    # bypass our check: GX's own verdict, read from its per-metric exception_info
    results = run_gx(frame(), at_run, "row_id", "raw")
    assert [r.status for r in results] == ["error"] * len(at_run)
    assert all(r.error == "MetricResolutionError" and r.failing_row_ids == [] for r in results)


def test_could_not_run_is_an_error_for_both_engines() -> None:
    """GX stores a per-metric exception (numbers compared with strings); that is neither
    a pass nor "failed, 0 rows" - for the GX engine and for the fast engine's fallback."""
    suite = {"name": "e", "expectations": [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "z", "min_value": 0},
         "severity": "warning"},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"}, "severity": "info"},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "n"}}]}
    for engine in ("fast", "gx"):
        r = validate(frame(), suite, engine=engine)
        assert r.status == "error" and r.success is False
        assert [x.status for x in r.results] == ["error", "fail", "pass"]
        assert r.errors == [r.results[0]] and r.failed == [r.results[1]]
        assert r.results[0].error == "MetricResolutionError" and r.results[0].unexpected_count == 0
        assert [x.severity for x in r.results] == ["warning", "info", "critical"]
        doc = r.to_dict()
        assert doc["status"] == "error" and doc["statistics"]["errors"] == 1
        assert doc["results"][0]["status"] == "error"


def test_fast_engine_reports_an_error_instead_of_crashing() -> None:
    """The last line of defence: an argument that slipped past the load check (here a
    string bound, handed to the engine directly) is an `error`, not a TypeError."""
    df = frame()
    ids = df["row_id"].to_numpy()
    r = _fast_one(3, {"type": "expect_column_value_lengths_to_be_between",
                      "kwargs": {"column": "w", "min_value": "2"}, "severity": "warning"}, df, ids)
    assert (r.status, r.error, r.index, r.severity, r.success) == ("error", "TypeError", 3, "warning", False)
    r = _fast_one(0, {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "gone", "value_set": [1]}},
                  df, ids)
    assert (r.status, r.error) == ("error", "KeyError")


def test_severity_is_checked_and_kept_on_import_and_export(tmp_path) -> None:
    import great_expectations as gx

    p = tmp_path / "sev.json"
    p.write_text(json.dumps({"name": "sev", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"}, "severity": "warning"},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "n"}, "severity": "info"},
        {"type": "expect_column_to_exist", "kwargs": {"column": "x"}}]}))
    suite = load_suite(p)
    assert [e.get("severity") for e in suite["expectations"]] == ["warning", "info", None]
    gsuite = gx.ExpectationSuite(**suite)  # GX opens the suite we pass on, severities intact
    assert [e.severity.value for e in gsuite.expectations] == ["warning", "info", "critical"]
    exported = gsuite.to_json_dict()["expectations"]
    assert [e["severity"] for e in exported] == ["warning", "info", "critical"]
    assert [e.get("severity") for e in parse_suite({"name": "sev", "expectations": exported})["expectations"]] == \
        ["warning", "info", "critical"]
    assert [r.severity for r in validate(frame(), suite).results] == ["warning", "info", "critical"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "b", "expectations": [
        {"type": "expect_column_to_exist", "kwargs": {"column": "x"}, "severity": "high"}]}))
    with pytest.raises(InputError,
                       match=r"bad\.json: expectations\[0\]\.severity: expected one of critical, warning, info"):
        load_suite(bad)


# --------------------------------------------------------------------------- CLI and GX round trip


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def clinic_csv(tmp_path_factory) -> Path:
    from governance.demo.sample_data import write_clinic

    return write_clinic(tmp_path_factory.mktemp("clinic") / "visits.csv", 400, seed=3)


def test_cli_refused_suite_exits_2_in_one_line(capsys, tmp_path, clinic_csv) -> None:
    p = tmp_path / "refused.json"
    p.write_text(json.dumps({"name": "r", "expectations": [
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "age", "min_value": 120, "max_value": 0}}]}))
    code, out, err = _cli(capsys, "quality", "validate", str(clinic_csv), "--suite", str(p), "--json")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith(f"error: {p}: expectations[0].kwargs.min_value: 120 is greater than max_value 0")


def test_gx_round_trip_and_data_docs(capsys, tmp_path, clinic_csv) -> None:
    """`--gx-out` writes a document GX loads with its own schema; GX builds Data Docs from it
    that name every expectation, keep severities, show the one that could not run as an
    exception, and hold no data value."""
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import expectationSuiteValidationResultSchema
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    suite = tmp_path / "clinic.json"
    suite.write_text(json.dumps({"name": "clinic-gx", "expectations": [
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "email", "regex": r"^[^@\s]+@[^@\s]+$"},
         "severity": "warning"},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "age", "min_value": 0, "max_value": 110}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "sex", "min_value": 0}, "severity": "info"},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "visit_id"}}]}))
    gx_json = tmp_path / "gx-result.json"
    code, out, err = _cli(capsys, "quality", "validate", str(clinic_csv), "--suite", str(suite), "--format", "json",
                          "--gx-out", str(gx_json))
    assert code == 2 and "expectations[2] (expect_column_values_to_be_between) could not run" in err
    ours = json.loads(out)
    assert [r["status"] for r in ours["results"]][2] == "error" and ours["status"] == "error"

    text = gx_json.read_text()
    values = pd.read_csv(clinic_csv, dtype=str)
    for col in ("email", "name", "ssn", "phone"):
        assert not any(v in text for v in values[col].dropna().head(200)), col  # row ids, never values
    loaded = expectationSuiteValidationResultSchema.load(json.loads(text))
    assert isinstance(loaded, gx.core.ExpectationSuiteValidationResult)
    assert loaded.success is False and loaded.suite_name == "clinic-gx"
    assert [r.expectation_config.severity.value for r in loaded.results] == ["warning", "critical", "info", "critical"]
    assert [r.exception_info["raised_exception"] for r in loaded.results] == [False, False, True, False]
    assert [r.success for r in loaded.results] == [r["success"] for r in ours["results"]]
    failing = [d["row_id"] for d in loaded.results[0].result["unexpected_index_list"]]
    assert failing == ours["results"][0]["failing_row_ids"] and failing
    assert loaded.statistics["evaluated_expectations"] == 4

    ctx = gx.get_context(mode="file", project_root_dir=str(tmp_path / "gxproject"))
    run_id = RunIdentifier(run_name=loaded.meta["run_id"]["run_name"], run_time=loaded.meta["run_id"]["run_time"])
    key = ValidationResultIdentifier(expectation_suite_identifier=ExpectationSuiteIdentifier(name="clinic-gx"),
                                     run_id=run_id, batch_identifier="visits")
    ctx.validation_results_store.set(key, loaded)
    sites = ctx.build_data_docs()
    assert "local_site" in sites
    pages = list((tmp_path / "gxproject").rglob("validations/clinic-gx/**/*.html"))
    assert len(pages) == 1
    html = pages[0].read_text()
    plain = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<script.*?</script>", "", html, flags=re.S)))
    for col in ("email", "age", "sex", "visit_id"):
        assert col in plain, col
    assert "values must be unique" in plain and "Evaluated Expectations 4" in plain
    assert "expect_column_values_to_be_between raised an exception" in plain
    for col in ("email", "name", "ssn"):
        assert not any(v in html for v in values[col].dropna().head(200)), col


def test_pipeline_stops_with_exit_2_when_an_expectation_could_not_run(workspace, tmp_path) -> None:
    """A governed run records the validation (evidence, status error) and stops before storing."""
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline
    from governance.storage.store import DatasetVersion, ValidationRecord
    from tests.conftest import REPO
    from tests.governance.run.test_runner import small_spec

    suite = json.loads((REPO / "examples" / "clinic" / "suite.json").read_text())
    suite["expectations"].append({"type": "expect_column_values_to_be_between",
                                  "kwargs": {"column": "sex", "min_value": 0}, "severity": "warning"})
    n = len(suite["expectations"]) - 1
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(suite))
    ws, tokens = workspace
    spec = load_pipeline(small_spec(tmp_path, **{"quality.suite": str(path)}))
    with pytest.raises(InputError, match=re.escape(f"expectations[{n}] (expect_column_values_to_be_between) "
                                                   "could not run (MetricResolutionError)")) as exc:
        run_pipeline(ws, spec, tokens["demo"])
    assert exc.value.exit_code == 2
    with ws.session() as s:
        recs = s.query(ValidationRecord).all()
        assert [(r.stage, r.success, r.result_json["status"]) for r in recs] == [("raw", False, "error")]
        assert recs[0].result_json["results"][n]["severity"] == "warning"
        assert s.query(DatasetVersion).count() == 0
