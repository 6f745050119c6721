"""A detector family built from a cheap regex gate plus a real validator, shared by most types.

Why a gate: validators (``phonenumbers``, ``python-stdnum``, ``ipaddress``) cost microseconds
per value; the vectorized regex discards most non-candidates first, and the validator then
runs on at most ``VALIDATE_LIMIT`` sampled values. The share reported is the share of
examined values that pass both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from privacy.deid.detect.base import ColumnSample, Verdict, confidence, hinted, share_valid

__all__ = ["ValidatedDetector"]


@dataclass(frozen=True)
class ValidatedDetector:
    """``gate`` (full-match regex) + ``validate`` (total function, never raises).

    ``needs_hint_gate``: values matching it count only when the column name carries a hint
    (ambiguous bare formats); ``min_share``: share of values needed without a hint.
    ``strength`` breaks ties between types (a checksum beats a format-only rule)."""

    name: str
    pii_type: str
    validate: Callable[[str], bool]
    gate: str
    description: str
    validator_name: str
    hints: str | None = None
    needs_hint_gate: str | None = None
    min_share: float = 0.8
    hint_min_share: float = 0.5
    kind: str = "direct"
    base: float = 0.95
    strength: int = 1

    @property
    def pii_types(self) -> tuple[str, ...]:
        return (self.pii_type,)

    def detect(self, col: ColumnSample) -> Verdict | None:
        texts = col.texts()
        if not texts:
            return None
        is_hinted = hinted(self.hints, col.column)
        mask = col.fullmatch(self.gate)
        if self.needs_hint_gate and not is_hinted:
            mask = mask & ~col.fullmatch(self.needs_hint_gate)
        n_gated = int(mask.sum())
        if n_gated < 0.5 * len(texts) * (self.hint_min_share if is_hinted else self.min_share):
            return None
        gated = [t for t, m in zip(texts, mask) if m]
        ok, _ = share_valid(gated, self.validate, give_up_below=0.3)
        share = ok * n_gated / len(texts)
        vals = texts
        if share < (self.hint_min_share if is_hinted else self.min_share):
            return None
        ev = (f"{share:.0%} of {len(vals)} sampled values pass {self.validator_name}"
              + ("; column name hints it" if is_hinted else ""))
        return Verdict(self.pii_type, self.kind, round(share, 4), confidence(share, is_hinted, self.base),
                       ev, is_hinted)

