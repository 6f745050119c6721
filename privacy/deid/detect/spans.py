"""PII spans inside free text (notes, comments): type, start, end. Never the matched text.

Each type has a candidate regex and the same validator its column detector uses (checksums,
``phonenumbers``, ``ipaddress``, the names index); overlapping candidates are resolved by
precedence (email, IBAN, card, national ids, phone, IP/MAC, date of birth, name). A date is a
date of birth only next to a birth word (born, DOB, birth, geboren, né(e), nacido, nato ...).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from privacy.deid.detect.base import ColumnSample, Verdict
from privacy.deid.detect.dates import parse_dates
from privacy.deid.detect.ids import SPAN_PATTERNS, VALIDATORS
from privacy.deid.detect.names import find_name_spans
from privacy.deid.detect.network import EMAIL_SPAN, IPV4_SPAN, IPV6_SPAN, MAC_SPAN, is_valid_email, is_valid_ip, is_valid_mac
from privacy.deid.detect.phones import phone_region

__all__ = ["Span", "find_spans", "FreeTextDetector", "SPAN_TYPES", "DETECTORS"]


@dataclass(frozen=True, order=True)
class Span:
    start: int
    end: int
    pii_type: str


_PHONE_SPAN = r"(?<![\w+])\+?\(?\d[\d ().\-/]{6,18}\d(?![\w])"
_DATE_SPAN = r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}[/.]\d{1,2}[/.]\d{4}\b|\b\d{1,2} [A-Z][a-z]{2,8} \d{4}\b|\b[A-Z][a-z]{2,8} \d{1,2}, \d{4}\b"
_DATE_LIKE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}")
_BIRTH = re.compile(r"(?i)\b(born|dob|d\.o\.b|birth|birthday|geboren|né|née|nacid[oa]|nat[oa]|nascid[oa]|geb\.)\b")


def _is_dob(text: str, start: int, end: int) -> bool:
    import pandas as pd

    if not _BIRTH.search(text[max(0, start - 30):start]):
        return False
    d, _ = parse_dates(pd.Series([text[start:end]]))
    return bool(d.notna().iloc[0])


_FINDERS: list[tuple[str, str, Callable[[str], bool]]] = [
    ("email", EMAIL_SPAN, is_valid_email),
    ("iban", SPAN_PATTERNS["iban"], VALIDATORS["iban"]),
    ("credit_card", SPAN_PATTERNS["credit_card"], VALIDATORS["credit_card"]),
    *[(t, SPAN_PATTERNS[t], VALIDATORS[t]) for t in ("br_cpf", "fr_nir", "it_codice_fiscale", "es_dni", "uk_nino",
                                                      "ssn", "in_aadhaar", "de_idnr", "nl_bsn")],
    ("mac_address", MAC_SPAN, is_valid_mac),
    ("ip_address", IPV4_SPAN + "|" + IPV6_SPAN, is_valid_ip),
    ("phone", _PHONE_SPAN, lambda v: not _DATE_LIKE.fullmatch(v) and phone_region(v) is not None),
]
_COMPILED = [(t, re.compile(p), v) for t, p, v in _FINDERS]
SPAN_TYPES = tuple(t for t, _, _ in _FINDERS) + ("date_of_birth", "person_name")


def find_spans(text: object) -> list[Span]:
    """All PII spans in one text, non-overlapping, sorted by start. Total: never raises."""
    try:
        s = str(text)
    except Exception:
        return []
    taken: list[Span] = []

    def free(a: int, b: int) -> bool:
        return all(b <= x.start or a >= x.end for x in taken)

    try:
        for t, rx, ok in _COMPILED:
            if t == "phone":  # dates of birth before phones: 1985-03-12 is also a dialable string
                for m in re.finditer(_DATE_SPAN, s):
                    if free(*m.span()) and _is_dob(s, *m.span()):
                        taken.append(Span(m.start(), m.end(), "date_of_birth"))
            for m in rx.finditer(s):
                a, b = m.span()
                if free(a, b) and ok(m.group(0)):
                    taken.append(Span(a, b, t))
        for a, b in find_name_spans(s):
            if free(a, b):
                taken.append(Span(a, b, "person_name"))
    except Exception:
        pass
    return sorted(taken)


class FreeTextDetector:
    name = "free_text"
    pii_types = ("free_text",)
    kind = "free_text"
    description = "PII spans in free text (all span types above)"
    hints = None
    strength = 0
    min_share = 0.05

    def detect(self, col: ColumnSample) -> Verdict | None:
        vals = col.distinct(200)
        if len(vals) == 0 or col.is_numeric:
            return None
        if col.mean_len < 25 or sum(len(t.split()) for t in col.texts(200)) / len(col.texts(200)) < 5:
            return None
        found = [find_spans(v) for v in vals.tolist()]
        with_pii = sum(1 for f in found if f)
        share = with_pii / len(vals)
        if share < self.min_share:
            return None
        counts: dict[str, int] = {}
        for f in found:
            for sp in f:
                counts[sp.pii_type] = counts.get(sp.pii_type, 0) + 1
        top = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:5])
        ev = f"{share:.0%} of {len(vals)} sampled texts contain PII spans ({top})"
        return Verdict("free_text", "free_text", round(share, 4), round(min(1.0, 0.5 + share), 4), ev, False)


DETECTORS = [FreeTextDetector()]
