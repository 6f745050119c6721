"""OpenLineage events from real governed runs: validated against the vendored OpenLineage schema,
received over a real local HTTP server, FAIL on a refused run, nothing when off, and a failing
transport never fails the run (it is audited as lineage_error)."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import REPO, new_workspace
from tests.governance.run.test_runner import small_spec

pytest.importorskip("openlineage.client", reason="openlineage-python is a dependency: pip install -e .")
from jsonschema import Draft202012Validator  # noqa: E402
from referencing import Registry, Resource  # noqa: E402

DATA = REPO / "tests" / "data" / "openlineage"
CORE_URIS = ("https://openlineage.io/spec/1-0-2/OpenLineage.json", "https://openlineage.io/spec/2-0-2/OpenLineage.json")
STANDARD = {"schema": "SchemaDatasetFacet", "version": "DatasetVersionDatasetFacet",
            "errorMessage": "ErrorMessageRunFacet", "jobType": "JobTypeJobFacet",
            "tags": "TagsRunFacet"}  # the client tags each run with its own version
CLINIC_SUITE = REPO / "examples" / "clinic" / "suite.json"


# --------------------------------------------------------------------------- schema validation, offline
def _registry() -> Registry:
    """The vendored core under the URIs the facet schemas use (its `definitions` also reachable as
    `$defs`: the same objects), the vendored facet schemas and privgov's own facet schema."""
    from governance.evidence.lineage_facets import SCHEMA_FILE

    core = json.loads((DATA / "OpenLineage.json").read_text())
    core = {**core, "$defs": core["definitions"]}
    resources = [(uri, Resource.from_contents(core)) for uri in CORE_URIS]
    for name in set(STANDARD.values()):
        doc = json.loads((DATA / f"{name}.json").read_text())
        resources.append((doc["$id"], Resource.from_contents(doc)))
    ours = json.loads(SCHEMA_FILE.read_text())
    resources.append((ours["$id"], Resource.from_contents(ours)))
    return Registry().with_resources(resources)


def _check_formats(event: dict) -> None:
    """The formats the core declares: runId a UUID, eventTime RFC 3339, producer and _producer/_schemaURL URIs."""
    uuid.UUID(event["run"]["runId"])
    assert dt.datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00")).tzinfo is not None
    uris = [event["producer"]]
    for holder in [event["run"], event["job"], *event.get("inputs", []), *event.get("outputs", [])]:
        for facet in (holder.get("facets") or {}).values():
            uris += [facet["_producer"], facet["_schemaURL"]]
    for u in uris:
        assert urlsplit(u).scheme, u


def validate_event(event: dict) -> None:
    """Core RunEvent, then each facet against its own schema (standard ones by name, privgov's by _schemaURL)."""
    registry = _registry()
    core = json.loads((DATA / "OpenLineage.json").read_text())
    Draft202012Validator(core, registry=registry).validate(event)
    _check_formats(event)
    for holder in [event["run"], event["job"], *event.get("inputs", []), *event.get("outputs", [])]:
        for key, facet in (holder.get("facets") or {}).items():
            if key in STANDARD:
                doc = json.loads((DATA / f"{STANDARD[key]}.json").read_text())
                ref = f"{doc['$id']}#/$defs/{STANDARD[key]}"
            else:
                assert facet["_schemaURL"].startswith("urn:privgov:spec:facets:1-0-0#/$defs/Privgov"), key
                ref = facet["_schemaURL"]
            Draft202012Validator({"$ref": ref}, registry=registry).validate(facet)


def test_validation_rejects_a_facet_without_producer_and_a_leaked_field() -> None:
    """The checks above have teeth: the core requires _producer; privgov facets allow no extra field."""
    import jsonschema

    good = {"eventType": "START", "eventTime": "2026-12-02T00:00:00+00:00", "producer": "urn:x",
            "run": {"runId": str(uuid.uuid4()), "facets": {"privgov": {
                "_producer": "urn:x", "_schemaURL": "urn:privgov:spec:facets:1-0-0#/$defs/PrivgovRunFacet",
                "runUid": "ab12", "dataset": "d", "principal": "p", "status": "running"}}},
            "job": {"namespace": "n", "name": "j"}}
    validate_event(good)
    no_producer = json.loads(json.dumps(good))
    del no_producer["run"]["facets"]["privgov"]["_producer"]
    with pytest.raises(jsonschema.ValidationError):
        validate_event(no_producer)
    leaked = json.loads(json.dumps(good))
    leaked["run"]["facets"]["privgov"]["email"] = "someone@example.org"
    with pytest.raises(jsonschema.ValidationError):
        validate_event(leaked)


# --------------------------------------------------------------------------- helpers
def configure(ws, **lineage) -> None:
    from governance.evidence.integrations import Integrations, LineageSettings, save

    save(ws.root, Integrations(lineage=LineageSettings(**lineage)))


def file_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


class Receiver:
    """A real HTTP endpoint on 127.0.0.1 that keeps every JSON body posted to it."""

    def __init__(self, status: int = 201) -> None:
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.paths.append(self.path)
                outer.bodies.append(json.loads(body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def audit_events(ws, action: str) -> list:
    from governance.evidence.audit import AuditEvent

    with ws.session() as s:
        return s.query(AuditEvent).filter(AuditEvent.action == action).order_by(AuditEvent.seq).all()


# --------------------------------------------------------------------------- a real governed run over HTTP
@pytest.fixture(scope="module")
def http_run(tmp_path_factory):
    """One successful demo-sized governed run whose events go to a local HTTP server."""
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline

    tmp = tmp_path_factory.mktemp("lineage")
    ws, tokens = new_workspace(tmp / "ws")
    with Receiver() as srv:
        configure(ws, transport="http", target=srv.url, namespace="clinic-team")
        summary = run_pipeline(ws, load_pipeline(small_spec(tmp)), tokens["demo"])
    return ws, summary, srv


def test_http_transport_delivers_start_and_complete_that_validate(http_run) -> None:
    ws, summary, srv = http_run
    assert summary.status == "succeeded"
    assert srv.paths == ["/api/v1/lineage"] * 2
    assert [e["eventType"] for e in srv.bodies] == ["START", "COMPLETE"]
    for event in srv.bodies:
        validate_event(event)
    start, complete = srv.bodies
    assert start["run"]["runId"] == complete["run"]["runId"]
    assert complete["job"]["namespace"] == "clinic-team" and complete["job"]["name"] == "clinic-readmission"
    assert complete["inputs"] == [{"namespace": "privgov-sample", "name": "clinic", "facets": {}}] or \
        [(i["namespace"], i["name"]) for i in complete["inputs"]] == [("privgov-sample", "clinic")]
    assert audit_events(ws, "lineage_error") == []


def test_complete_event_carries_the_run_facts_the_card_publishes(http_run) -> None:
    from governance.storage import catalog
    from governance.storage.store import Run

    ws, summary, srv = http_run
    complete = srv.bodies[-1]
    run = complete["run"]["facets"]["privgov"]
    with ws.session() as s:
        ds = catalog.find_dataset(s, "clinic-visits")
        version = catalog.get_version(s, ds, summary.version)
        card = s.query(Run).filter(Run.run_uid == summary.run_uid).one().model_card_json
        schema = [(c["name"], c["dtype"]) for c in version.schema_json]
        policy_hash = ds.policy_hash
    assert run["runUid"] == summary.run_uid and run["status"] == "succeeded"
    assert run["principal"] == "demo-ml-engineer" and run["policySha256"] == policy_hash
    assert run["epsilonSpent"] == pytest.approx(summary.epsilon_spent)
    assert run["epsilonTarget"] == pytest.approx(summary.epsilon_target) and run["delta"] == pytest.approx(1e-5)
    data, model = complete["outputs"]
    assert (data["namespace"], data["name"]) == ("privgov", "clinic-visits")
    assert data["facets"]["version"]["datasetVersion"] == str(summary.version)
    assert [(f["name"], f["type"]) for f in data["facets"]["schema"]["fields"]] == schema
    quality = data["facets"]["privgov_quality"]
    assert quality["suiteSha256"] == hashlib.sha256(CLINIC_SUITE.read_bytes()).hexdigest()
    assert [r["stage"] for r in quality["results"]] == ["raw", "cleaned"]
    assert quality["results"][0]["success"] is False and quality["results"][0]["failedExpectations"] >= 1
    methods = {c["column"]: c["method"] for c in data["facets"]["privgov_deidentification"]["columns"]}
    assert methods["email"] == "pseudonymize" and methods["ssn"] == "drop" and methods["age"] == "generalize:age_band"
    facet = model["facets"]["privgov_model"]
    assert facet["epsilon"] == pytest.approx(card["privacy"]["epsilon"]) and facet["differentiallyPrivate"] is True
    assert facet["metrics"]["accuracy"] == pytest.approx(card["metrics"]["accuracy"])
    assert set(facet["metrics"]) <= set(card["metrics"])  # nothing the card does not already publish


def test_events_carry_no_cell_values_and_no_row_counts(http_run) -> None:
    from governance.demo.sample_data import generate_clinic

    ws, summary, srv = http_run
    text = json.dumps(srv.bodies)
    raw = generate_clinic(3000, seed=7)
    probes = [str(v) for c in ("email", "ssn", "name", "phone") for v in raw[c].dropna().head(30)]
    assert not [p for p in probes if p in text]
    keys: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            keys.update(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(srv.bodies)
    assert not {k for k in keys if "row" in k.lower() or "count" in k.lower()}, keys


# --------------------------------------------------------------------------- FAIL, off, failing transport
def test_refused_run_emits_start_and_fail_to_a_file(workspace, tmp_path) -> None:
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline
    from privacy.errors import AccessDenied

    ws, tokens = workspace
    out = tmp_path / "events.jsonl"
    configure(ws, transport="file", target=str(out))
    with pytest.raises(AccessDenied):
        run_pipeline(ws, load_pipeline(small_spec(tmp_path, purpose="marketing")), tokens["demo"])
    events = file_events(out)
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    for event in events:
        validate_event(event)
    fail = events[-1]
    assert fail["run"]["facets"]["privgov"]["status"] == "denied"
    assert "marketing" in fail["run"]["facets"]["errorMessage"]["message"]
    assert fail["outputs"] == []  # nothing was stored


def test_only_refusal_messages_are_sent() -> None:
    """Refusals keep their one-line message; a quality gate's counts and any other error's text stay home."""
    from governance.evidence.lineage import _error_text
    from privacy.errors import AccessDenied, BudgetExceeded, InputError, QualityGateFailed

    assert _error_text(AccessDenied("dataset `d`: denied")) == "AccessDenied: dataset `d`: denied"
    assert _error_text(BudgetExceeded("over the cap")) == "BudgetExceeded: over the cap"
    assert "secret-cell" not in _error_text(ValueError("could not convert 'secret-cell'"))
    assert "secret-cell" not in _error_text(InputError("column c: bad value 'secret-cell'"))
    withheld = _error_text(QualityGateFailed("suite s: 17 rows still fail after cleaning"))
    assert withheld.startswith("QualityGateFailed") and "17" not in withheld


def test_off_by_default_emits_nothing(workspace, tmp_path, monkeypatch) -> None:
    """No integrations.json: the run neither builds a client nor writes events anywhere."""
    from governance.evidence import integrations, lineage
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline
    from privacy.errors import AccessDenied

    ws, tokens = workspace
    assert integrations.load(ws.root).lineage is None
    made = []
    monkeypatch.setattr(lineage, "make_client", lambda s: made.append(s))
    with pytest.raises(AccessDenied):
        run_pipeline(ws, load_pipeline(small_spec(tmp_path, purpose="marketing")), tokens["demo"])
    assert made == [] and not integrations.path_of(ws.root).exists()
    assert audit_events(ws, "lineage_error") == []


def test_failing_transport_never_fails_the_run_and_is_audited(tmp_path) -> None:
    """An HTTP endpoint nobody listens on: the run still succeeds, each undelivered event is a
    lineage_error in the audit log, and the log still verifies."""
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline

    ws, tokens = new_workspace(tmp_path / "ws")
    with Receiver() as srv:
        dead = srv.url  # closed on exit: connections are refused
    configure(ws, transport="http", target=dead, timeout_s=2)
    spec = small_spec(tmp_path, training=None)
    summary = run_pipeline(ws, load_pipeline(spec), tokens["demo"])
    assert summary.status == "succeeded" and summary.version == 1
    errors = audit_events(ws, "lineage_error")
    assert [(e.details or {}).get("event") for e in errors] == ["START", "COMPLETE"]
    assert all(e.principal == "demo-ml-engineer" and "Connection" in (e.reason or "") for e in errors)
    with ws.session() as s:
        report = ws.audit.verify(s)
    assert report.ok, report.problems


def test_http_error_status_is_audited_with_the_status(workspace) -> None:
    """An endpoint answering 503 (retried, then given up): a lineage_error naming the status, nothing raised."""
    from governance.evidence import lineage

    ws, _ = workspace
    facts = lineage.LineageRun(run_uid="ab12cd", pipeline="p", dataset="clinic-visits", principal="demo-ml-engineer",
                               sources=(("file", "/data/in.csv"),))
    with Receiver(status=503) as srv:
        configure(ws, transport="http", target=srv.url)
        lineage.run_started(ws, facts)
    assert len(srv.bodies) == 3  # the first try and two retries
    validate_event(srv.bodies[0])
    (err,) = audit_events(ws, "lineage_error")
    assert "503" in err.reason and err.details == {"run_uid": "ab12cd", "event": "START", "transport": "http"}
