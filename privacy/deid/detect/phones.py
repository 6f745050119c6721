"""Phone numbers validated by ``phonenumbers`` (Google libphonenumber metadata).

Values in E.164 / international form (``+49 30 1234567``) are parsed as they are; national
forms (``(0118) 496 0177``, ``06 12 34 56 78``) are tried against candidate regions, most
successful first, and the regions that validated are reported as evidence (region inference).

Decision, documented: values that are bare digit strings without a leading ``+`` or ``0`` and
without any separator (``3207763176``) are ambiguous with order numbers and counts; they count
only when the column name hints a phone, or when they are a minority in a column whose other
values are formatted phone numbers.
"""
from __future__ import annotations

from collections import Counter

import phonenumbers

from privacy.deid.detect.base import ColumnSample, Verdict, confidence, hinted

__all__ = ["PhoneDetector", "phone_region", "CANDIDATE_REGIONS", "DETECTORS"]

CANDIDATE_REGIONS = ["US", "GB", "DE", "FR", "ES", "IT", "NL", "BR", "IN", "JP", "MX", "CA", "AU", "PT"]
GATE = r"\+?[\d\s().\-/]{6,24}(?:\s*(?:x|ext\.?|#)\s*\d{1,6})?"
DATE_LIKE = r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:[ T][\d:.]+)?|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}"
HINTS = r"_(phone|phones|telephone|tel|mobile|cell|cellphone|fax|phone_number|contact_number|msisdn|telefon|telefono|telefone|portable)_"


def phone_region(value: str, regions: list[str] | None = None) -> str | None:
    """The region a value is a valid phone number of, or None. Numbers in +CC form whose length
    is possible for that country but that fail the stricter validity metadata give ``+CC``;
    parenthesised national numbers of a possible length give ``REGION?``. Total."""
    try:
        s = str(value).strip()
        if sum(ch.isdigit() for ch in s) < 6 or len(s) > 40:
            return None
        if s.startswith("+") or s.startswith("00"):
            n = phonenumbers.parse("+" + s.lstrip("+0") if s.startswith("00") else s, None)
            if phonenumbers.is_valid_number(n):
                return phonenumbers.region_code_for_number(n)
            # a number in international form whose length fits its country's plan
            return "+" + str(n.country_code) if phonenumbers.is_possible_number(n) else None
        for r in regions or CANDIDATE_REGIONS:
            try:
                n = phonenumbers.parse(s, r)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number_for_region(n, r):
                return r
        if "(" in s:  # a formatted national number, e.g. (0118) 496 0177: possible is enough
            for r in regions or CANDIDATE_REGIONS:
                try:
                    if phonenumbers.is_possible_number(phonenumbers.parse(s, r)):
                        return r + "?"
                except phonenumbers.NumberParseException:
                    continue
        return None
    except Exception:
        return None


class PhoneDetector:
    name = "phone"
    pii_types = ("phone",)
    kind = "direct"
    description = "phone numbers, E.164 and national formats (phonenumbers, region inference)"
    hints = HINTS
    strength = 1

    def detect(self, col: ColumnSample) -> Verdict | None:
        texts = col.texts()
        if not texts or col.dtype in ("float", "datetime", "bool"):
            return None
        keep = ~col.fullmatch(DATE_LIKE)
        if keep.sum() < 0.5 * len(texts):
            return None
        gmask = keep & col.fullmatch(GATE)
        is_hinted = hinted(self.hints, col.column)
        vals = [t for t, k in zip(texts, keep) if k]
        if gmask.sum() < (0.3 if is_hinted else 0.7) * len(vals):
            return None
        bare = col.fullmatch(r"[1-9]\d{5,14}")[gmask]
        if not is_hinted and bare.mean() > 0.5:
            return None
        gated = [t for t, g in zip(texts, gmask) if g]
        order = list(CANDIDATE_REGIONS)
        regions: Counter[str] = Counter()
        memo: dict[str, str | None] = {}
        ok = 0
        for i, v in enumerate(gated):
            if i == 20 and ok < 10:
                return None  # early exit: most candidates are not phones
            if v not in memo:
                found = phone_region(v, order)
                memo[v] = found
                if found is not None and found in order:  # try the regions that worked first
                    order.remove(found)
                    order.insert(0, found)
            r = memo[v]
            if r is not None:
                ok += 1
                regions[r] += 1
        share = ok / len(vals)
        if share < (0.5 if is_hinted else 0.8):
            return None
        top = ", ".join(f"{r} {c}" for r, c in regions.most_common(3))
        ev = (f"{share:.0%} of {len(vals)} sampled values are valid phone numbers (phonenumbers; "
              f"regions {top})" + ("; column name hints it" if is_hinted else ""))
        return Verdict("phone", "direct", round(share, 4), confidence(share, is_hinted, 0.9), ev, is_hinted)


DETECTORS = [PhoneDetector()]
