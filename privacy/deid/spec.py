"""De-identification spec files: a YAML list of steps, checked before any data is read.

Why here: the step models live in :mod:`privacy.deid.transforms`; a spec file is
the same list written by a person, so its errors must say which file, which
line, which step and which key (``spec.yaml:7: steps[2].width: Input should be
a valid integer``), never a KeyError from inside a transform.

Why it takes a parsed document, not a path: ``privacy`` sits below ``policies``
and may not import it, while the one hardened YAML reader of privgov lives in
``policies.schema``. Callers read with it and hand the document over::

    from policies.schema import load_yaml_file
    steps = deid_steps_from_yaml(load_yaml_file(path, "de-identification spec"))

The file is either a list of steps or a mapping with a single ``steps:`` key.
"""
from __future__ import annotations

from typing import Any, Optional, Protocol

from privacy.deid.transforms import StepProblem, parse_step
from privacy.errors import InputError


class YamlSource(Protocol):
    """What a parsed YAML document offers (``policies.schema.YamlDoc`` is one)."""

    data: Any
    source: str

    def line_of(self, loc: tuple[Any, ...]) -> Optional[int]: ...


def step_problem(raw: Any) -> Optional[str]:
    """``"KEY: what is wrong"`` for an invalid step, or None when it is valid."""
    try:
        parse_step(raw)
    except StepProblem as exc:
        return f"{exc.key}: {exc.message}" if exc.key else exc.message
    return None


def check_deid_steps(steps: Any, source: str, line_of: Any = None, prefix: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Validate a step list; raise one-line InputError ``SOURCE[:LINE]: steps[I].KEY: ...``.

    ``line_of(loc)`` maps a key path to its line, when the steps came from a file."""
    if not isinstance(steps, list):
        raise InputError(f"{source}: expected a YAML list of steps (or a mapping with `steps:`), "
                         f"got {type(steps).__name__}")
    for i, raw in enumerate(steps):
        try:
            parse_step(raw)
        except StepProblem as exc:
            loc = (*prefix, i) + ((exc.key.split(".")[0],) if exc.key else ())
            line = line_of(loc) if line_of is not None else None
            where = f"{source}:{line}" if line else source
            key = f".{_one_line(exc.key)}" if exc.key else ""
            raise InputError(f"{where}: steps[{i}]{key}: {_one_line(exc.message)}") from None
    return [dict(raw) for raw in steps]


def deid_steps_from_yaml(doc: YamlSource) -> list[dict[str, Any]]:
    """The validated steps of a parsed spec document (a list, or ``{steps: [...]}``)."""
    data = doc.data
    prefix: tuple[Any, ...] = ()
    if isinstance(data, dict):
        if "steps" not in data:
            raise InputError(f"{doc.source}: missing key `steps`; expected a list of steps "
                             "(a single step must still be a list item: `- {column: ..., action: ...}`)")
        extra = [k for k in data if k != "steps"]
        if extra:
            line = doc.line_of((extra[0],))
            where = f"{doc.source}:{line}" if line else doc.source
            raise InputError(f"{where}: unknown key {_one_line(repr(extra[0]))}; expected only `steps:`")
        data, prefix = data["steps"], ("steps",)
    return check_deid_steps(data, doc.source, doc.line_of, prefix)


def _one_line(text: str, limit: int = 200) -> str:
    out = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in str(text))
    return out if len(out) <= limit else out[: limit - 3] + "..."
