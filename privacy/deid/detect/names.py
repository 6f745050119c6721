"""Person names (given, family or full) recognised from their values against ``names-dataset``.

A value reads as a name when it is 1-6 alphabetic tokens in name case (``Ana``, ``O'Neil``,
``van der Berg``, ``KONDO``), optionally ``Last, First``, titles and suffixes aside, and at least
half of its non-particle tokens (and at least one) are given or family names known to the index
(see :mod:`privacy.deid.detect.name_index` for why that resource). A column is a name column
when >= 70% of its sampled values read as names (or >= 50% do, >= 90% are name-shaped
title-case words and >= 30% are distinct: rare surnames are in no list), and it is not a low-cardinality category
(a colour or a city list repeats; people's names mostly do not). Never uses the project's demo
generator list nor Faker (tested).
"""
from __future__ import annotations

import re
import unicodedata

from privacy.deid.detect.base import ColumnSample, Verdict, confidence, hinted
from privacy.deid.detect.name_index import load_index

__all__ = ["NameDetector", "name_form", "find_name_spans", "DETECTORS"]

_TITLES = {"mr", "mrs", "ms", "miss", "dr", "prof", "herr", "frau", "m", "mme", "mlle", "sr", "sra",
           "srta", "sig", "sigra", "dott", "dssa", "ing", "avv", "dhr", "mevr", "shri", "smt", "sir", "rev"}
_SUFFIXES = {"jr", "sr", "ii", "iii", "iv", "phd", "md", "dds", "dvm", "esq", "msc", "bsc"}
_PARTICLES = {"da", "de", "del", "della", "di", "van", "der", "den", "von", "du", "le", "la", "dos", "das",
              "do", "bin", "binti", "al", "el", "ben", "y", "e", "ter", "ten", "zu", "af", "st", "mc"}
_TOKEN = re.compile(r"[^\W\d_][^\W\d_'’.\-]*(?:['’\-][^\W\d_]+)*\.?")
# whole-column evidence is strong (hundreds of values must mostly be names), so any indexed
# name counts there; spans in free text need common names (SPAN_*_RANK below)
GIVEN_RANK = 60000
FAMILY_RANK = 60000


def _fold(tok: str) -> str:
    return unicodedata.normalize("NFC", tok.strip(".").lower())


def _known(tok: str) -> tuple[bool, bool]:
    ix = load_index()
    t = _fold(tok)
    parts = [p for p in re.split(r"[-'’]", t) if p] or [t]
    g = any((r := ix.first.get(p)) is not None and r <= GIVEN_RANK for p in parts + [t])
    f = any((r := ix.last.get(p)) is not None and r <= FAMILY_RANK for p in parts + [t])
    return g, f


def name_form(value: str) -> str | None:
    """'full', 'given', 'family' when ``value`` reads as a person's name, else None. Total."""
    try:
        s = str(value).strip()
        if not s or len(s) > 80:
            return None
        if s.count(",") == 1:
            last, first = (p.strip() for p in s.split(","))
            s = f"{first} {last}"
        toks = s.split()
        if not 1 <= len(toks) <= 6 or not all(_TOKEN.fullmatch(t) for t in toks):
            return None
        core = []
        for i, t in enumerate(toks):
            low = _fold(t)
            if (i == 0 and low in _TITLES) or (i == len(toks) - 1 and low in _SUFFIXES and len(toks) > 1):
                continue
            if low in _PARTICLES and i < len(toks) - 1:
                continue
            if len(low) == 1 and len(toks) > 1:  # an initial
                continue
            if not (t[0].isupper() and (t[1:].islower() or t.isupper() or any(c in t for c in "-'’")
                                         or t[1:2].isupper())):
                return None
            core.append(t)
        if not core:
            return None
        hits = [_known(t) for t in core]
        known = sum(1 for g, f in hits if g or f)
        if known == 0 or known * 2 < len(core):
            return None
        if len(core) >= 2:
            return "full"
        g, f = hits[0]
        return "given" if g and not f else "family" if f and not g else "given"
    except Exception:
        return None


def _place_names() -> frozenset[str]:
    """Country and territory names (pycountry, which names-dataset already depends on) plus the UK
    nations, folded like :func:`_fold_place`: many are also given or family names in the index
    (``Jamaica``, ``India``, ``Mexico``), so a column of countries would otherwise read as names."""
    names = {"england", "scotland", "wales", "northern ireland", "holland", "hong kong", "south korea",
             "north korea", "usa", "uk", "us"}
    try:
        import pycountry

        for c in pycountry.countries:
            for attr in ("name", "common_name", "official_name"):
                v = getattr(c, attr, None)
                if v:
                    names.add(_fold_place(v))
    except Exception:  # pragma: no cover - pycountry ships with names-dataset
        pass
    return frozenset(names)


def _fold_place(value: str) -> str:
    return " ".join(re.split(r"[\s\-_]+", unicodedata.normalize("NFC", str(value)).strip().lower()))


_PLACES: frozenset[str] | None = None


def is_place_name(value: str) -> bool:
    """True for a country or territory name (``United-States``, ``Mexico``). Total."""
    global _PLACES
    if _PLACES is None:
        _PLACES = _place_names()
    try:
        return _fold_place(value) in _PLACES
    except Exception:
        return False


_NAME_WORD = r"(?:[A-Z][a-z\u00C0-\u024F'’]+(?:-[A-Z][a-z\u00C0-\u024F'’]+)?|[a-z]{1,4})"
_SHAPED = re.compile(rf"{_NAME_WORD}(?: {_NAME_WORD}){{0,4}}")


class NameDetector:
    name = "person_name"
    pii_types = ("person_name",)
    kind = "direct"
    description = "person names, given/family/full (names-dataset index, ~1.7M names, 105 countries)"
    hints = r"_(name|names|full_name|fullname|first_name|firstname|fname|last_name|lastname|lname|surname|given_name|family_name|forename|vorname|nachname|nom|prenom|nombre|apellido|cognome)_"
    strength = 1

    def detect(self, col: ColumnSample) -> Verdict | None:
        vals = col.distinct()
        if len(vals) == 0 or col.is_numeric:
            return None
        if col.share(lambda t: t[:1].isalpha()) < 0.5 or col.mean_len > 60:
            return None
        is_hinted = hinted(self.hints, col.column)
        texts = vals.tolist()
        forms = [None if is_place_name(v) else name_form(v) for v in texts]
        n = len(forms)
        # a category repeats: one value covering a quarter of the rows is a country, a colour or a
        # city list (Adult's native_country is 90% `United-States`), not people's names
        if not is_hinted and int(vals.value_counts().iloc[0]) >= 0.25 * n:
            return None
        share = sum(f is not None for f in forms) / n
        distinct = vals.nunique() / n
        shaped = sum(1 for v in texts if _SHAPED.fullmatch(v)) / n
        # rare surnames are missing from any list: a column that is mostly known names and
        # almost entirely name-shaped, with many distinct values, is a name column too
        strong = share >= 0.7 or (share >= 0.5 and shaped >= 0.9 and distinct >= 0.3)
        if vals.nunique() < 3:
            return None
        if not (strong or (is_hinted and share >= 0.4)) or (distinct < 0.05 and not is_hinted):
            return None
        share = max(share, min(shaped, 1.0)) if strong and share < 0.7 else share
        counts = {k: forms.count(k) for k in ("full", "given", "family")}
        top = max(counts, key=lambda k: counts[k])
        ev = (f"{share:.0%} of {n} sampled values read as person names in names-dataset "
              f"(mostly {top}: {counts[top]}); {distinct:.0%} distinct"
              + ("; column name hints it" if is_hinted else ""))
        return Verdict("person_name", "direct", round(share, 4), confidence(share, is_hinted, 0.9), ev, is_hinted)


_CAP = r"[A-Z][a-z\u00C0-\u024F'’\-]+"
_SPAN_RE = re.compile(rf"(?<![\w.])({_CAP}(?: (?:[A-Z]\.|{_CAP}|da|de|del|di|van|der|von|dos|la|le)){{1,3}})(?![\w])")


_COMMON = frozenset("""a an and the this that these those very good great best new old fast slow love
thank thanks please call met dear hello hi yes no not our your my his her their its we you they he she it
will would can could should may might must shall is are was were be been being have has had do does did
on in at by for with from to of as if or but so than then there here when where why how what who which
all any each every few more most other some such only own same too just also well still even back
monday tuesday wednesday thursday friday saturday sunday january february march april june july august
september october november december customer service product order item price quality delivery""".split())
SPAN_GIVEN_RANK = 4000
SPAN_FAMILY_RANK = 12000


def _span_ok(first: str, last: str) -> bool:
    if _fold(first) in _COMMON or _fold(last) in _COMMON:
        return False
    ix = load_index()
    g = ix.first.get(_fold(first))
    f = ix.last.get(_fold(last))
    return g is not None and g <= SPAN_GIVEN_RANK and f is not None and f <= SPAN_FAMILY_RANK


def find_name_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of likely full person names in free text: 2-4 capitalised tokens, the first a
    known given name and the last a known family name. Total."""
    out: list[tuple[int, int]] = []
    try:
        for m in _SPAN_RE.finditer(text):
            toks = [(t.start() + m.start(1), t.end() + m.start(1)) for t in re.finditer(r"\S+", m.group(1))]
            i = 0
            while i < len(toks) - 1:
                for j in range(len(toks) - 1, i, -1):
                    if _span_ok(text[toks[i][0]:toks[i][1]], text[toks[j][0]:toks[j][1]].rstrip(".")):
                        out.append((toks[i][0], toks[j][1]))
                        i = j
                        break
                i += 1
    except Exception:
        return out
    return out


DETECTORS = [NameDetector()]
