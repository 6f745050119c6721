"""`privgov lineage|tracking configure/off/show`: admin only, audited with the admin's identity, off by default."""
from __future__ import annotations

import json

import pytest

from governance.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def actions(ws) -> list[tuple[str, str, str]]:
    from governance.evidence.audit import AuditEvent

    with ws.session() as s:
        return [(e.action, e.decision, e.principal) for e in s.query(AuditEvent).order_by(AuditEvent.seq)]


def test_lineage_is_off_by_default_and_an_admin_turns_it_on_and_off(workspace, tmp_path, capsys) -> None:
    ws, tokens = workspace
    w = ["--workspace", str(ws.root)]
    code, out, _ = run(capsys, "lineage", "show", "--json", *w)
    assert code == 0 and json.loads(out) == {"enabled": False}
    target = tmp_path / "events.jsonl"
    code, out, err = run(capsys, "lineage", "configure", "--file", str(target), "--namespace", "team-a", *w,
                         "--token", tokens["admin"])
    assert code == 0, err
    shown = json.loads(run(capsys, "lineage", "show", "--json", *w)[1])
    assert shown["enabled"] and shown["transport"] == "file" and shown["target"] == str(target.resolve())
    assert shown["namespace"] == "team-a"
    assert ("lineage_configure", "info", "admin") in actions(ws)
    assert run(capsys, "lineage", "off", *w, "--token", tokens["admin"])[0] == 0
    assert json.loads(run(capsys, "lineage", "show", "--json", *w)[1]) == {"enabled": False}
    assert ("lineage_off", "info", "admin") in actions(ws)
    with ws.session() as s:
        assert ws.audit.verify(s).ok


def test_non_admin_is_refused_and_the_denial_audited(workspace, tmp_path, capsys) -> None:
    ws, tokens = workspace
    code, _, err = run(capsys, "lineage", "configure", "--url", "http://127.0.0.1:9/", "--workspace", str(ws.root),
                       "--token", tokens["demo"])
    assert code == 3 and err.startswith("error:") and "admin" in err
    assert ("lineage_configure", "deny", "demo-ml-engineer") in actions(ws)
    assert json.loads(run(capsys, "lineage", "show", "--json", "--workspace", str(ws.root))[1]) == {"enabled": False}


@pytest.mark.parametrize("args, needle", [
    (["--file", "x.jsonl", "--url", "http://127.0.0.1:1"], "exactly one"),
    ([], "exactly one"),
    (["--url", "ftp://host/x"], "http"),
    (["--url", "http://user:pw@127.0.0.1:1"], "credentials"),
    (["--file", "/no/such/dir/events.jsonl"], "directory does not exist"),
    (["--url", "http://127.0.0.1:1", "--api-key-env", "not a name"], "api_key_env"),
])
def test_bad_lineage_settings_are_one_line_errors(workspace, capsys, args, needle) -> None:
    ws, tokens = workspace
    code, _, err = run(capsys, "lineage", "configure", *args, "--workspace", str(ws.root), "--token", tokens["admin"])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], err
    assert "pw" not in err


def test_tracking_configure_show_off(workspace, tmp_path, capsys) -> None:
    ws, tokens = workspace
    w = ["--workspace", str(ws.root)]
    uri = (tmp_path / "mlruns").as_uri()
    assert run(capsys, "tracking", "configure", "--uri", uri, *w, "--token", tokens["admin"])[0] == 0
    assert json.loads(run(capsys, "tracking", "show", "--json", *w)[1]) == {"enabled": True, "uri": uri,
                                                                           "experiment": "privgov"}
    code, _, err = run(capsys, "tracking", "configure", "--uri", "s3://bucket/x", *w, "--token", tokens["admin"])
    assert code == 2 and "file:" in err
    assert run(capsys, "tracking", "off", *w, "--token", tokens["admin"])[0] == 0
    assert ("tracking_configure", "info", "admin") in actions(ws) and ("tracking_off", "info", "admin") in actions(ws)
