"""One output convention: every command takes `--json`, and every read command's output
is one strict JSON document on stdout, on a workspace with a finished governed run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from governance.cli import app, main
from tests.conftest import REPO, new_workspace

READ_VERBS = {"list", "show", "scan", "verify", "status", "log", "review", "test", "validate", "model-card"}
POLICIES = REPO / "policies" / "examples"
SUITE = REPO / "governance" / "demo" / "examples" / "clinic" / "suite.json"


def leaf_commands() -> dict:
    """Every runnable command of the Typer app, by its space-separated path."""
    found: dict = {}

    def walk(cmd, path: tuple[str, ...]) -> None:
        if hasattr(cmd, "commands"):  # a group (typer ships its own click classes)
            for name, sub in cmd.commands.items():
                walk(sub, path + (name,))
        else:
            found[" ".join(path)] = cmd

    walk(typer.main.get_command(app), ())
    return found


def strict_json(text: str):
    """Parse as strict JSON: NaN and Infinity are not JSON."""
    def refuse(token: str):
        raise ValueError(f"non-standard JSON constant {token}")

    return json.loads(text, parse_constant=refuse)


def test_every_command_accepts_json_and_format_is_hidden() -> None:
    commands = leaf_commands()
    assert len(commands) >= 25  # the walk reached the sub-apps
    missing = sorted(path for path, cmd in commands.items()
                     if not any("--json" in p.opts for p in cmd.params))
    assert missing == []
    for path, cmd in commands.items():  # --format survives only as a hidden, deprecated alias
        for p in cmd.params:
            if "--format" in p.opts:
                assert getattr(p, "hidden", False), path


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo workspace (tests/conftest.py principals, example policies bound) after one
    governed training run, plus a raw sample file: (workspace root, tokens, run uid, csv)."""
    from governance.demo.sample_data import write_clinic
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline
    from tests.governance.run.test_runner import small_spec

    tmp = tmp_path_factory.mktemp("json")
    ws, tokens = new_workspace(tmp / "ws", {
        "admin": ("admin", ["admin"]),
        "demo": ("demo-ml-engineer", ["ml-engineer", "data-engineer"]),
    })
    summary = run_pipeline(ws, load_pipeline(small_spec(tmp)), tokens["demo"])
    assert summary.status == "succeeded" and summary.epsilon_spent is not None
    return ws.root, tokens, summary.run_uid, write_clinic(tmp / "visits.csv", 300, seed=5)


def read_invocations(root: Path, tokens: dict, run_uid: str, csv: Path) -> dict[str, list[str]]:
    w = ["-w", str(root)]
    return {
        "dataset list": [*w],
        "dataset show": ["clinic-visits", *w],
        "audit verify": [*w],
        "audit log": [*w, "--limit", "5"],
        "budget show": ["clinic-visits", *w],
        "principal list": [*w],
        "access review": [*w],
        "pii scan": [str(csv)],
        "scan": [str(csv)],
        "quality validate": [str(csv), "--suite", str(SUITE)],
        "policy test": [str(POLICIES / "clinic.yaml"), str(POLICIES / "clinic_cases.yaml")],
        "model-card": [run_uid, *w],
        "db status": [*w],
        "lineage show": [*w],
        "tracking show": [*w],
    }


def test_every_read_command_prints_one_json_document(capsys, demo) -> None:
    root, tokens, run_uid, csv = demo
    calls = read_invocations(root, tokens, run_uid, csv)
    reads = {path for path in leaf_commands() if path.split()[-1] in READ_VERBS}
    assert reads <= set(calls), f"read commands without a JSON check: {sorted(reads - set(calls))}"
    docs = {}
    for path, args in calls.items():
        code = main([*path.split(), *args, "--json"])
        out, err = capsys.readouterr()
        assert code in (0, 1), f"{path}: exit {code}: {err}"  # 1: the raw sample fails its suite
        docs[path] = strict_json(out)  # stdout holds exactly one JSON document
    # the documents carry the results, not a placeholder
    listed = {d["dataset"]: d for d in docs["dataset list"]}
    assert listed["clinic-visits"]["rows"] > 0 and listed["clinic-visits"]["latest"] >= 1
    assert docs["dataset show"]["versions"][0]["content_sha256"]
    assert docs["audit verify"]["ok"] is True and docs["audit verify"]["events"] > 0
    assert len(docs["audit log"]) == 5 and all(isinstance(e["ts"], str) for e in docs["audit log"])
    assert docs["budget show"]["epsilon_cap"] == 3.0 and docs["budget show"]["runs"][0]["run_uid"] == run_uid
    assert {p["name"] for p in docs["principal list"]} == {"admin", "demo-ml-engineer"}
    assert any(r["principal"] == "demo-ml-engineer" for r in docs["access review"])
    assert {f["column"] for f in docs["pii scan"]} >= {"email", "ssn"}
    assert docs["scan"] == docs["pii scan"]  # the top-level shortcut is the same command
    assert docs["db status"]["state"] == "current" and docs["db status"]["revision"] == docs["db status"]["head"]
    assert docs["quality validate"]["success"] is False and docs["quality validate"]["failing_row_ids"]
    assert docs["policy test"]["ok"] is True and docs["policy test"]["total"] > 0
    assert docs["model-card"]  # the card itself
    assert docs["lineage show"] == {"enabled": False} and docs["tracking show"] == {"enabled": False}


def test_audit_verify_json_reports_a_broken_chain_and_exits_4(capsys, demo, tmp_path) -> None:
    root, *_ = demo
    extract = tmp_path / "audit.jsonl"
    assert main(["audit", "export", "--out", str(extract), "-w", str(root), "--json"]) == 0
    assert strict_json(capsys.readouterr().out)["events"] > 0
    lines = extract.read_text().splitlines()
    lines[3] = lines[3].replace('"action": "', '"action": "x', 1).replace('"action":"', '"action":"x', 1)
    extract.write_text("\n".join(lines) + "\n")
    code = main(["audit", "verify", "--file", str(extract), "--json"])
    out, err = capsys.readouterr()
    assert code == 4
    doc = strict_json(out)
    assert doc["ok"] is False and doc["problems"] and err.strip().splitlines()[-1].startswith("error: ")


def test_deprecated_format_warns_and_maps_to_json(capsys, demo) -> None:
    *_, csv = demo
    assert main(["pii", "scan", str(csv), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert {f["column"] for f in strict_json(out)} >= {"email"}
    assert "--format is deprecated" in err and "--json" in err
    assert main(["pii", "scan", str(csv), "--format", "yaml"]) == 2
    assert "--format" in capsys.readouterr().err


def test_write_commands_print_their_result_as_json(capsys, tmp_path) -> None:
    code = main(["init", "-w", str(tmp_path / "ws"), "--json"])
    doc = strict_json(capsys.readouterr().out)
    assert code == 0 and doc["token"].startswith("pgv_") and doc["workspace"] == str((tmp_path / "ws").resolve())
    w, admin = ["-w", str(tmp_path / "ws")], ["--token", doc["token"]]
    assert main(["principal", "add", "eve", "--roles", "analyst", *w, *admin, "--json"]) == 0
    assert strict_json(capsys.readouterr().out) == {"principal": "eve", "kind": "person", "roles": ["analyst"]}
    assert main(["token", "issue", "eve", *w, *admin, "--json"]) == 0
    assert strict_json(capsys.readouterr().out)["token"].startswith("pgv_")
    assert main(["keys", "rotate", *w, *admin, "--json"]) == 0
    assert strict_json(capsys.readouterr().out)["active_kek_id"]
    out = tmp_path / "s.csv"
    assert main(["sample", "clinic", "--rows", "20", "--out", str(out), "--json"]) == 0
    assert strict_json(capsys.readouterr().out) == {"out": str(out), "rows": 20, "seed": 0}
