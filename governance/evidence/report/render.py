"""Render the gathered report with jinja2 (autoescape on) from the templates shipped in the package.

Why jinja2 with autoescape: every name in the report (datasets, columns, principals,
purposes, reasons) comes from users; escaping it once, in one place, is the only way
it is never escaped twice (`&amp;lt;` on screen) or not at all (script injection).
`StrictUndefined` makes a misspelt field fail the build instead of printing a blank.
"""
from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from governance.evidence.report.collect import ReportData


def _when(value: Any) -> str:
    """Times as `YYYY-MM-DD HH:MM` (UTC), empty for none."""
    if value is None or value == "":
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)[:16].replace("T", " ")


def _num(value: Any, fmt: str = ".4f") -> str:
    if value is None or isinstance(value, bool):
        return ""
    return format(value, fmt) if isinstance(value, (int, float)) else str(value)


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=PackageLoader("governance.evidence.report", "templates"),
                      autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["num"] = _num
    return env


def render(report: ReportData) -> str:
    return environment().get_template("report.html.j2").render(r=report)
