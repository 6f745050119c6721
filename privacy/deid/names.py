"""Loader for the embedded name lists in ``privacy/deid/names.txt``.

Used by the person-name PII detector and by the synthetic data generator
(``governance.demo.sample_data``), so both agree on what a "name" is.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

__all__ = ["NameLists", "load_names", "first_names", "last_names"]


@dataclass(frozen=True)
class NameLists:
    first_female: tuple[str, ...]
    first_male: tuple[str, ...]
    last: tuple[str, ...]

    @property
    def first(self) -> tuple[str, ...]:
        return self.first_female + self.first_male


@lru_cache(maxsize=1)
def load_names() -> NameLists:
    text = resources.files("privacy.deid").joinpath("names.txt").read_text(encoding="utf-8")
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        if current is not None:
            current.append(line)
    return NameLists(
        first_female=tuple(sections.get("first_female", ())),
        first_male=tuple(sections.get("first_male", ())),
        last=tuple(sections.get("last", ())),
    )


def first_names() -> tuple[str, ...]:
    return load_names().first


def last_names() -> tuple[str, ...]:
    return load_names().last
