"""Datasets over HTTP: what a caller sees, and downloads released exactly as `dataset export` releases
them - masks, row filter, quarantine rule - with the raw values looked for in every byte."""
from __future__ import annotations

import io

import pandas as pd

from tests.governance.server.conftest import DATASET, PLAIN, UNKNOWN, events_after, head, same_denial


def _download(live, who, version, purpose="quality-review", fmt="csv", dataset=DATASET):
    with live.client(who) as c:
        return c.get(f"/v1/datasets/{dataset}/versions/{version}/download", params={"purpose": purpose,
                                                                                     "format": fmt})


def test_listing_shows_only_what_the_caller_may_see(live) -> None:
    with live.client("ana") as c:
        ana = c.get("/v1/datasets").json()
    with live.client("mallory") as c:
        mallory = c.get("/v1/datasets").json()
    with live.client("audrey") as c:
        auditor = c.get("/v1/datasets").json()
    assert [d["dataset"] for d in ana] == [DATASET]  # adult-census: no grant for analysts
    assert ana[0]["latest"] == live.data_version and ana[0]["privacy_unit"] == "patient_id"
    assert mallory == []  # contractors are denied PHI outright
    assert {d["dataset"] for d in auditor} == {DATASET, "adult-census"}


def test_versions_unknown_and_forbidden_are_byte_identical_and_audited(live) -> None:
    before = head(live.ws)
    with live.client("mallory") as c:
        same_denial(c, "/v1/datasets/{}/versions")
    denies = [(e.principal, e.action, e.resource) for e in events_after(live.ws, before) if e.decision == "deny"]
    assert denies == [("mallory", "list_versions", DATASET), ("mallory", "list_versions", UNKNOWN)]
    with live.client("ana") as c:
        versions = c.get(f"/v1/datasets/{DATASET}/versions").json()
    assert [(v["version"], v["kind"]) for v in versions] == [(live.data_version, "data"),
                                                             (live.quarantine_version, "quarantine")]


def test_download_never_contains_a_raw_masked_value(live) -> None:
    """ana's grant: email and phone dropped, patient_id hashed, zip partial, ages 0-19 filtered out."""
    before = head(live.ws)
    for fmt in ("csv", "parquet"):
        r = _download(live, "ana", live.data_version, fmt=fmt)
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        df = pd.read_csv(io.BytesIO(r.content), dtype=str) if fmt == "csv" else pd.read_parquet(io.BytesIO(r.content))
        assert {"email", "phone"}.isdisjoint(df.columns)
        assert len(df) == int((PLAIN["age"] != "0-19").sum()) and "0-19" not in set(df["age"])
        assert df["zip"].str.fullmatch(r"\d{3}\*\*").all()
        assert df["patient_id"].str.fullmatch(r"[0-9a-f]{16}").all()
        blob = r.content
        for col in ("patient_id", "email", "phone", "zip"):
            leaked = [v for v in PLAIN[col] if v.encode() in blob]
            assert not leaked, (fmt, col, leaked[:3])
    exports = [e for e in events_after(live.ws, before) if e.action == "export"]
    assert [(e.principal, e.decision, e.details["format"], e.details["channel"]) for e in exports] == [
        ("ana", "info", "csv", "http"), ("ana", "info", "parquet", "http")]
    assert exports[0].details["masked_columns"] == "email,patient_id,phone,zip"


def test_wrong_purpose_and_quarantine_are_403_and_audited(live) -> None:
    before = head(live.ws)
    wrong = _download(live, "ana", live.data_version, purpose="marketing")
    quarantine = _download(live, "ana", live.quarantine_version)
    unknown = _download(live, "ana", live.data_version, dataset=UNKNOWN)
    assert wrong.status_code == quarantine.status_code == unknown.status_code == 403
    assert "read_quarantine" not in quarantine.text and "may not `export`" in quarantine.text
    assert quarantine.content.replace(DATASET.encode(), UNKNOWN.encode()) == unknown.content
    denies = [(e.principal, e.action, e.purpose) for e in events_after(live.ws, before) if e.decision == "deny"]
    assert denies == [("ana", "read_masked", "marketing"), ("ana", "read_quarantine", "quality-review"),
                      ("ana", "read_masked", "quality-review")]


def test_bad_download_arguments_are_422_naming_the_field(live) -> None:
    r = _download(live, "ana", live.data_version, fmt="xlsx")
    assert r.status_code == 422 and r.json()["error"]["message"].startswith("format:")
    with live.client("ana") as c:
        r = c.get(f"/v1/datasets/{DATASET}/versions/{live.data_version}/download")
    assert r.status_code == 422 and r.json()["error"]["message"].startswith("purpose:")
