"""What part of the workspace a report covers: `privgov report --since DATE --dataset NAME`.

Why one object: every section narrows the same way, so an auditor reading a report for
one dataset since one date never finds another dataset's rows in one table and not in
the next. Audit integrity is the exception and says so: the hash chain is verified whole,
because a chain checked from the middle proves nothing about what came before.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from privacy.errors import InputError


@dataclass(frozen=True)
class Scope:
    """A dataset name and/or a start time (naive UTC, like every time in the store)."""

    dataset: str | None = None
    since: dt.datetime | None = None

    def has_dataset(self, name: str | None) -> bool:
        return self.dataset is None or name == self.dataset

    def is_after(self, when: dt.datetime | str | None) -> bool:
        """True when `when` is at or after `since` (rows without a time are kept: nothing to hide them by)."""
        if self.since is None or when is None:
            return True
        if isinstance(when, str):
            try:
                when = parse_time(when, "time")
            except InputError:
                return True
        return when >= self.since

    def describe(self) -> str:
        parts = [f"dataset {self.dataset}" if self.dataset else "all datasets"]
        parts.append(f"since {self.since:%Y-%m-%d %H:%M} UTC" if self.since else "all time")
        return ", ".join(parts)


def parse_time(value: str, field: str = "--since") -> dt.datetime:
    """An ISO date or date-time as naive UTC; a one-line InputError naming `field` otherwise."""
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        raise InputError(f"{field}: expected an ISO date like 2026-11-01 (or 2026-11-01T09:30), got {value!r}") from None
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return when
