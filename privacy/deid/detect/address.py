"""Street addresses: ``usaddress`` (a CRF parser of US addresses) for US-style values, and
street-type words in 9 languages plus a house number and a validated postal code elsewhere.

A value is an address when (a) ``usaddress`` tags it as a street address with a house number,
a street name and a street type or ZIP code, or (b) it holds a street-type word (rue, Straße,
via, calle, straat, rua, road, marg, ...) next to a house number, or (c) a house number and a
postal code in one of the known national formats, or (d) Japanese block notation (丁目/番地).
A column is an address column when >= 70% of its sampled values are.
"""
from __future__ import annotations

import re

from privacy.deid.detect.base import ColumnSample, Verdict, confidence, hinted

__all__ = ["AddressDetector", "is_address", "POSTCODE_PATTERNS", "DETECTORS"]

_STREET = (r"street|st|road|rd|avenue|ave|lane|ln|drive|dr|court|ct|place|pl|boulevard|blvd|way|"
           r"terrace|square|close|crescent|grove|gardens|hill|park|row|walk|mews|parkway|trail|"
           r"stra(?:ß|ss)e|str|weg|allee|platz|gasse|ring|damm|ufer|"
           r"rue|avenue|boulevard|bd|chemin|impasse|allée|quai|"
           r"calle|c/|avenida|avda|av|paseo|plaza|pza|carrera|camino|ronda|travesía|"
           r"via|viale|piazza|corso|largo|vicolo|contrada|"
           r"straat|laan|plein|gracht|kade|steeg|dreef|singel|"
           r"rua|travessa|praça|rodovia|alameda|ladeira|estrada|vila|"
           r"marg|nagar|chowk|colony|sector|gali|path")
_STREET_RE = re.compile(rf"(?i)(?:\b(?:{_STREET})\b\.?|\w+(?:straße|strasse|str\.|weg|straat|laan|gracht|plein|kade))")
_NUMBER_RE = re.compile(r"(?<![\d.,]\d)(?<!\d)\d{1,5}[a-zA-Z]?(?!\d)(?![.,:]\d)")
POSTCODE_PATTERNS = {
    "GB": r"\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b",
    "NL": r"\b\d{4} ?[A-Z]{2}\b",
    "BR": r"\b\d{5}-?\d{3}\b",
    "CA": r"\b[A-Z]\d[A-Z] ?\d[A-Z]\d\b",
    "JP": r"\b\d{3}-\d{4}\b",
    "IN": r"\b[1-9]\d{5}\b",
    "US/DE/FR/ES/IT": r"\b\d{5}(?:-\d{4})?\b",
}
_POSTCODE_RE = re.compile("|".join(f"(?:{p})" for p in POSTCODE_PATTERNS.values()))
_JP_RE = re.compile(r"\d+丁目|\d+番地?|\d+号|[都道府県].+[市区町村]")
HINTS = r"_(address|addr|street|street_address|address_line|address1|address2|residence|home_address|adresse|direccion|indirizzo|endereco|adres)_"


def is_address(value: str) -> bool:
    """Whether one value reads as a street address. Total."""
    try:
        s = str(value).strip()
        if not 6 <= len(s) <= 200 or _JP_RE.search(s) and len(s) <= 80:
            return 6 <= len(s) <= 80 and bool(_JP_RE.search(s))
        flat = re.sub(r"\s*\n\s*", ", ", s)
        has_num = _NUMBER_RE.search(flat) is not None
        if not has_num:
            return False
        if _STREET_RE.search(flat):
            return True
        if _POSTCODE_RE.search(flat) and len(flat.split()) >= 3 and re.search(r"[^\W\d_]{3,}", flat):
            return True
        return len(flat.split()) >= 3 and _usaddress_ok(flat)
    except Exception:
        return False


def _usaddress_ok(s: str) -> bool:
    try:
        import usaddress

        tagged, kind = usaddress.tag(s)
        return kind == "Street Address" and "AddressNumber" in tagged and "StreetName" in tagged and (
            "StreetNamePostType" in tagged or "ZipCode" in tagged)
    except Exception:
        return False


class AddressDetector:
    name = "street_address"
    pii_types = ("street_address",)
    kind = "direct"
    description = "street addresses (usaddress for US; street words + postcodes in 9 languages)"
    hints = HINTS
    strength = 1

    def detect(self, col: ColumnSample) -> Verdict | None:
        vals = col.distinct(200)
        if len(vals) == 0 or col.is_numeric:
            return None
        if col.mean_len < 8 or col.mean_len > 150:
            return None
        is_hinted = hinted(self.hints, col.column)
        hits = 0
        for i, v in enumerate(vals.tolist()):
            if i == 30 and hits < 12:
                return None  # early exit
            hits += is_address(v)
        share = hits / len(vals)
        if share < (0.4 if is_hinted else 0.7):
            return None
        ev = (f"{share:.0%} of {len(vals)} sampled values read as street addresses "
              "(usaddress / street words + house number / postcode)" + ("; column name hints it" if is_hinted else ""))
        return Verdict("street_address", "direct", round(share, 4), confidence(share, is_hinted, 0.9), ev, is_hinted)


DETECTORS = [AddressDetector()]
