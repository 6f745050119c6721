"""The smallest training pipeline a job can run, and its files in a server data directory.

Shared by the job-manager and server tests: the clinic example shrunk to 800
generated rows and one epoch, its suite and policy copied into `data_dir` and
named relative to it (as a pipeline submitted to the server must)."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO


def make_data_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "examples" / "clinic" / "suite.json", path / "suite.json")
    shutil.copy(REPO / "policies" / "examples" / "clinic.yaml", path / "clinic.yaml")
    return path


def job_pipeline(**changes: Any) -> dict[str, Any]:
    """The pipeline as a mapping (dotted keys in `changes` set or, with None, remove a value)."""
    spec = yaml.safe_load((REPO / "examples" / "clinic" / "pipeline.yaml").read_text())
    spec["source"]["rows"] = 800
    spec["training"].update(epochs=1, device="cpu")
    spec["quality"]["suite"] = "suite.json"
    spec["policy"] = "clinic.yaml"
    spec.pop("report")
    return set_dotted(spec, changes)


def set_dotted(spec: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Apply `{"a.b": value}` changes to a nested mapping; None removes the key."""
    for dotted, value in changes.items():
        node = spec
        *head, last = dotted.split(".")
        for key in head:
            node = node[key]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return spec


def job_yaml(**changes: Any) -> str:
    return yaml.safe_dump(job_pipeline(**changes), sort_keys=False)


def wait_for_line(read_log, needle: str, timeout: float = 240) -> str:
    """Poll a job's log until `needle` appears (the run reached that stage)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = read_log()
        if needle in text:
            return text
        time.sleep(0.05)
    raise AssertionError(f"`{needle}` not in the job log after {timeout:g} s:\n{read_log()[-3000:]}")
