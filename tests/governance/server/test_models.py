"""`POST /v1/models/{run}/predict` on a live server: the CLI's authorization, audited, bounded."""
from __future__ import annotations

import io

import pandas as pd

from tests.governance.server.conftest import events_after, head

ROWS = [{"row_id": 10 + i, "age": age, "sex": sex, "race": "white", "bmi": 27.0 + i, "systolic_bp": 130,
         "hba1c": 6.1, "num_prior_visits": i, "los_days": 3, "num_medications": 5}
        for i, (age, sex) in enumerate([("40-59", "female"), ("60-79", "male"), ("20-39", "female")])]


def _predict(live, who, purpose="readmission-model", **kw):
    run = live.job["run_uid"]
    with live.client(who) as c:
        return c.post(f"/v1/models/{run}/predict", params={"purpose": purpose} if purpose else {}, **kw)


def test_predict_json_rows_allowed_and_audited(jobs_live) -> None:
    before = head(jobs_live.ws)
    r = _predict(jobs_live, "demo", json={"rows": ROWS})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["rows"] == 3 and [p["row_id"] for p in out["predictions"]] == [10, 11, 12]
    assert all(0 <= p["probability"] <= 1 and p["prediction"] in (0, 1) for p in out["predictions"])
    assert "bmi" not in r.text  # no feature is echoed back
    evs = [e for e in events_after(jobs_live.ws, before) if e.action == "predict"]
    assert [(e.decision, e.principal) for e in evs] == [("allow", "demo-ml-engineer"), ("info", "demo-ml-engineer")]
    assert evs[1].details["rows"] == 3 and evs[1].details["via"] == "http"


def test_predict_csv_and_parquet_uploads_score_the_same(jobs_live) -> None:
    frame = pd.DataFrame(ROWS)
    as_json = _predict(jobs_live, "demo", json={"rows": ROWS}).json()["predictions"]
    csv = _predict(jobs_live, "demo", content=frame.to_csv(index=False).encode(),
                   headers={"Content-Type": "text/csv"})
    buf = io.BytesIO()
    frame.to_parquet(buf)
    parquet = _predict(jobs_live, "demo", content=buf.getvalue(),
                       headers={"Content-Type": "application/vnd.apache.parquet"})
    for r in (csv, parquet):
        assert r.status_code == 200, r.text
        got = r.json()["predictions"]
        assert [p["row_id"] for p in got] == [10, 11, 12]
        assert [round(p["probability"], 6) for p in got] == [round(p["probability"], 6) for p in as_json]


def test_wrong_purpose_other_principal_and_unknown_run_are_403_and_audited(jobs_live) -> None:
    before = head(jobs_live.ws)
    wrong = _predict(jobs_live, "demo", purpose="marketing", json={"rows": ROWS})
    other = _predict(jobs_live, "mallory", json={"rows": ROWS})
    with jobs_live.client("demo") as c:
        unknown = c.post("/v1/models/ffffffffffffffff/predict", params={"purpose": "readmission-model"},
                         json={"rows": ROWS})
    assert (wrong.status_code, other.status_code, unknown.status_code) == (403, 403, 403)
    denies = [(e.principal, e.purpose) for e in events_after(jobs_live.ws, before)
              if e.action == "predict" and e.decision == "deny"]
    assert ("demo-ml-engineer", "marketing") in denies and ("mallory", "readmission-model") in denies
    assert len(denies) == 3
    assert not [e for e in events_after(jobs_live.ws, before) if e.action == "predict" and e.decision == "info"]


def test_bad_bodies_are_refused_naming_the_field(jobs_live) -> None:
    r = _predict(jobs_live, "demo", json={"rows": []})
    assert r.status_code == 422 and "rows" in r.json()["error"]["message"], r.text
    r = _predict(jobs_live, "demo", json={"records": ROWS})
    assert r.status_code == 422 and "rows" in r.json()["error"]["message"]
    assert "records" in [f["field"] for f in r.json()["error"]["fields"]]
    r = _predict(jobs_live, "demo", json={"rows": [{**ROWS[0]}, {**ROWS[0]}]})  # duplicate row id
    assert r.status_code == 422 and "row id" in r.json()["error"]["message"]
    r = _predict(jobs_live, "demo", purpose=None, json={"rows": ROWS})
    assert r.status_code == 422 and "purpose" in r.json()["error"]["message"]
    r = _predict(jobs_live, "demo", content=b"not,a\ncsv", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    big = {"rows": ROWS * 40000}
    r = _predict(jobs_live, "demo", json=big)
    assert r.status_code == 413
