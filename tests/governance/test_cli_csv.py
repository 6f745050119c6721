"""One reader for every command: CSV options on scan/suggest/validate, --json, and one-line errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from governance.cli import main

ROWS = [("Ann Smith", "ann.smith@example.org", "536-22-1234", "02134"),
        ("Bob Jones", "bob.jones@mail.com", "412-67-8810", "90210"),
        ("Cara Diaz", "cara.diaz@example.net", "287-65-4321", "01002")]
# (SSNs that stdnum accepts: 219-09-9999 and 457-55-5462 are known-void advertising numbers)


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def headerless(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    path.write_text("".join(",".join(r) + "\n" for r in ROWS * 10))
    return path


def test_scan_headerless_file_with_names(capsys, headerless) -> None:
    code, out, err = run(capsys, "scan", "--no-header", "--names", "a,b,c,d", str(headerless), "--json")
    assert code == 0, err
    found = {f["column"]: f for f in json.loads(out)}
    assert found["b"]["pii_type"] == "email" and found["b"]["kind"] == "direct"
    assert found["c"]["pii_type"] == "ssn"
    assert not any(v in out for row in ROWS for v in row)  # types and shares, never values
    # without the options the first row is taken for the header: no column is called `b`
    code, out, _ = run(capsys, "pii", "scan", str(headerless), "--json")
    assert code == 0 and "b" not in {f["column"] for f in json.loads(out)}


def test_text_table_and_suggest(capsys, headerless, tmp_path) -> None:
    code, out, _ = run(capsys, "pii", "scan", "--no-header", "--names", "a,b,c,d", str(headerless))
    assert code == 0 and "email" in out and "ann.smith" not in out
    spec = tmp_path / "deid.yaml"
    code, out, _ = run(capsys, "pii", "suggest", "--no-header", "--names", "a,b,c,d", str(headerless),
                       "--out", str(spec), "--json")
    assert code == 0
    steps = json.loads(out)["steps"]
    assert {"column": "b", "action": "pseudonymize"} in steps
    from policies.schema import load_yaml_file
    from privacy.deid.spec import deid_steps_from_yaml

    assert deid_steps_from_yaml(load_yaml_file(spec, "spec")) == steps  # a valid spec file, ready to review


def test_validate_and_suggest_keep_zip_leading_zeros(capsys, headerless, tmp_path) -> None:
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"name": "z", "expectations": [
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "zip", "regex": r"^\d{5}$"}}]}))
    names = "name,email,ssn,zip"
    code, out, _ = run(capsys, "quality", "validate", str(headerless), "--suite", str(suite),
                       "--no-header", "--names", names, "--json")
    assert code == 0 and json.loads(out)["success"] is True
    # forcing the ZIP to a number loses the zeros, and the same suite then fails
    code, out, _ = run(capsys, "quality", "validate", str(headerless), "--suite", str(suite),
                       "--no-header", "--names", names, "--dtype", "zip=int", "--json")
    assert code == 1
    code, out, _ = run(capsys, "quality", "suggest", str(headerless), "--out", str(tmp_path / "s.json"),
                       "--no-header", "--names", names, "--json")
    assert code == 0 and json.loads(out)["expectations"]


def _latin1(tmp_path: Path) -> Path:
    p = tmp_path / "latin.csv"
    p.write_bytes("name,city\nJos\xe9,M\xe1laga\n".encode("latin-1"))
    return p


def _semicolons(tmp_path: Path) -> Path:
    p = tmp_path / "semi.csv"
    p.write_text("a;b;c\n1;2;3\n")
    return p


BAD = {
    "names count": (lambda p, t: [str(p), "--no-header", "--names", "a,b"], "option names"),
    "no names": (lambda p, t: [str(p), "--no-header"], "--names"),
    "duplicate names": (lambda p, t: [str(p), "--no-header", "--names", "a,a,b,c"], "names"),
    "unknown encoding": (lambda p, t: [str(p), "--encoding", "utf-9"], "encoding"),
    "wrong encoding": (lambda p, t: [str(_latin1(t))], "encoding"),
    "long delimiter": (lambda p, t: [str(p), "--delimiter", ";;"], "delimiter"),
    "wrong delimiter": (lambda p, t: [str(_semicolons(t))], "delimiter"),
    "dtype syntax": (lambda p, t: [str(p), "--dtype", "zip"], "--dtype"),
    "dtype type": (lambda p, t: [str(p), "--dtype", "zip=decimal"], "--dtype"),
    "dtype column": (lambda p, t: [str(p), "--no-header", "--names", "a,b,c,d", "--dtype", "zz=str"], "dtype"),
    "dtype values": (lambda p, t: [str(p), "--no-header", "--names", "a,b,c,d", "--dtype", "a=int"], "dtype a=int"),
    "missing file": (lambda p, t: [str(t / "nope.csv")], "not found"),
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("command", [("quality", "suggest"), ("pii", "suggest"), ("pii", "scan")])
def test_bad_csv_option_one_line_exit_2_nothing_written(capsys, headerless, tmp_path, case, command) -> None:
    args, needle = BAD[case]
    out_file = tmp_path / "out.file"
    argv = [*command, *args(headerless, tmp_path)]
    if command != ("pii", "scan"):
        argv += ["--out", str(out_file)]
    code, out, err = run(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0]
    assert "Traceback" not in err and out == ""
    assert not out_file.exists()
    assert ".csv" in lines[0]  # the file is named
    assert not any(v in err for row in ROWS for v in row)  # no cell value in the message
