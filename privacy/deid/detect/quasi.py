"""Quasi-identifiers: postal code, sex, race/ethnicity and age. Alone none names a person; in
combination they often do (Sweeney: ZIP + sex + birth date single out 87% of the US), so
``scan`` reports them with ``kind="quasi"`` and a k-anonymity estimate over the quasi set.

Rules (values first, a name hint lowers the bar):
* postcode: >= 90% of values match one national format (GB, NL, CA, BR, JP, ZIP+4). Bare
  4-8 digit values count only as text of fixed width with some leading zeros or repeats (a ZIP
  read as text keeps its leading zeros; unique integers are more often counts or ids), or
  with a name hint. Indian PIN codes (6 digits, never a leading zero) need the hint.
* sex: <= 6 distinct values, >= 95% of them sex/gender words in 8 languages.
* race: >= 90% of values in census race/ethnicity vocabularies.
* age: integers 0-120 with >= 15 distinct values, median 18-70 and IQR >= 8; or a hint.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from privacy.deid.detect.base import ColumnSample, Verdict, confidence, hinted

__all__ = ["PostcodeDetector", "SexDetector", "RaceDetector", "AgeDetector", "DETECTORS"]

_POSTCODES = {
    "GB": r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}", "NL": r"\d{4} ?[A-Z]{2}", "CA": r"[A-Z]\d[A-Z] ?\d[A-Z]\d",
    "BR": r"\d{5}-\d{3}", "JP": r"\d{3}-\d{4}", "US ZIP+4": r"\d{5}-\d{4}",
}
_SEX = {"m", "f", "male", "female", "man", "woman", "men", "women", "w", "x", "u", "unknown", "other",
        "männlich", "weiblich", "divers", "homme", "femme", "masculin", "féminin", "hombre", "mujer",
        "masculino", "femenino", "feminino", "maschio", "femmina", "uomo", "donna", "man", "vrouw",
        "mannelijk", "vrouwelijk", "non-binary", "nonbinary", "h", "v", "mf"}
_RACE = {"white", "black", "asian", "hispanic", "latino", "latina", "latinx", "native american",
         "american indian", "alaska native", "pacific islander", "native hawaiian", "other", "unknown",
         "multiracial", "two or more races", "mixed", "black or african american", "african american",
         "american indian or alaska native", "native hawaiian or other pacific islander", "amer-indian-eskimo",
         "asian-pac-islander", "caucasian", "hispanic or latino", "not hispanic or latino", "middle eastern",
         "arab", "indian", "chinese", "south asian", "east asian", "white british", "black african",
         "black caribbean", "pakistani", "bangladeshi", "declined", "prefer not to say"}


class PostcodeDetector:
    name = "postcode"
    pii_types = ("postcode",)
    kind = "quasi"
    description = "postal codes (GB, NL, CA, BR, JP formats; US ZIP / 5-digit as fixed-width text)"
    hints = r"_(zip|zips|zipcode|zip_code|zip5|postal|postcode|postal_code|post_code|plz|cap|cep|pin_code|pincode)_"
    strength = 1

    def detect(self, col: ColumnSample) -> Verdict | None:
        vals = col.distinct()
        is_hinted = hinted(self.hints, col.column)
        # a ZIP column read as numbers (floats once it has a null) is still one when its name says so
        if len(vals) == 0 or (col.dtype in ("float", "int") and not is_hinted):
            return None
        best, share = None, 0.0
        for region, pat in _POSTCODES.items():
            s = float(col.fullmatch("(?i)" + pat).mean())
            if s > share:
                best, share = region, s
        widths = np.fromiter((len(t) for t in col.texts()), dtype=np.int64)
        w = int(np.bincount(widths).argmax())
        fixed = float((col.fullmatch(r"\d+") & (widths == w)).mean()) if 4 <= w <= 8 else 0.0
        if w == 4 and col.fullmatch(r"(?:18|19|20)\d{2}").mean() >= 0.95:
            fixed = 0.0  # years, not postcodes (see BirthYearDetector)
        if fixed > share and (col.dtype == "str" or is_hinted):
            lo_zero = float(np.mean([t.startswith("0") for t in col.texts()]))
            if is_hinted or (fixed >= 0.9 and (lo_zero > 0 or vals.nunique() < 0.9 * len(vals))):
                best, share = f"fixed-width {w}-digit text (ZIP / PLZ / CEP style)", fixed
        if best is None or share < (0.5 if is_hinted else 0.9):
            return None
        ev = f"{share:.0%} of {len(vals)} sampled values match {best} postal code format" + (
            "; column name hints it" if is_hinted else "")
        return Verdict("postcode", "quasi", round(share, 4), confidence(share, is_hinted, 0.85), ev, is_hinted)


class _Vocab:
    name = ""
    pii_types: tuple[str, ...] = ()
    hints: str | None = None
    description = ""
    kind = "quasi"
    strength = 1
    vocab: set[str] = set()
    min_share = 0.9
    max_distinct = 50
    label = ""

    def detect(self, col: ColumnSample) -> Verdict | None:
        vals = col.distinct()
        if len(vals) == 0 or col.is_numeric:
            return None
        low = vals.str.lower().str.strip()
        if low.nunique() > self.max_distinct:
            return None
        is_hinted = hinted(self.hints, col.column)
        share = float(low.isin(self.vocab).mean())
        if share < (0.6 if is_hinted else self.min_share):
            return None
        ev = f"{share:.0%} of {len(vals)} sampled values are {self.label} ({low.nunique()} distinct)" + (
            "; column name hints it" if is_hinted else "")
        return Verdict(self.pii_types[0], "quasi", round(share, 4), confidence(share, is_hinted, 0.85), ev, is_hinted)


class SexDetector(_Vocab):
    name = "sex"
    pii_types = ("sex",)
    description = "sex / gender categories (8 languages)"
    hints = r"_(sex|gender|geschlecht|sexe|sexo|genere|geslacht)_"
    vocab = _SEX
    min_share = 0.95
    max_distinct = 6
    label = "sex/gender words"


class RaceDetector(_Vocab):
    name = "race"
    pii_types = ("race",)
    description = "race / ethnicity categories (US census, UK ONS vocabularies)"
    hints = r"_(race|ethnicity|ethnic|ethnic_group|raza|etnia)_"
    vocab = _RACE
    label = "race/ethnicity categories"


class AgeDetector:
    name = "age"
    pii_types = ("age",)
    kind = "quasi"
    description = "ages in years (integers 0-120 with a population-like spread)"
    hints = r"_(age|ages|age_years|alter|edad|eta|idade|leeftijd)_"
    strength = 1

    def detect(self, col: ColumnSample) -> Verdict | None:
        vals = col.distinct()
        if len(vals) < 10 or col.dtype == "float":
            return None
        ints = pd.Series(col.fullmatch(r"\d{1,3}"), index=vals.index)
        if ints.mean() < 0.95:
            return None
        x = pd.to_numeric(vals[ints], errors="coerce").to_numpy(dtype=float)
        is_hinted = hinted(self.hints, col.column)
        med = float(np.median(x))
        iqr = float(np.percentile(x, 75) - np.percentile(x, 25))
        plausible = float(np.mean(x <= 120)) >= 0.98
        if not plausible:
            return None
        if not is_hinted and not (len(np.unique(x)) >= 15 and 18 <= med <= 70 and iqr >= 8):
            return None
        ev = (f"{len(vals)} sampled integers 0-120, median {med:.0f}, IQR {iqr:.0f}"
              + ("; column name hints it" if is_hinted else ""))
        base = 0.9 if is_hinted else 0.6
        return Verdict("age", "quasi", 1.0, confidence(1.0, is_hinted, base), ev, is_hinted)


class BirthYearDetector:
    """A DOB part: four-digit years whose implied ages look like a population (median 15-80,
    IQR >= 8), told apart from event years (recent, narrow) the same way as full dates."""

    name = "birth_year"
    pii_types = ("birth_year",)
    kind = "quasi"
    description = "birth years (a DOB part; implied ages form a population)"
    hints = r"_(birth_year|year_of_birth|yob|birthyear|geburtsjahr|annee_naissance|ano_nacimiento)_"
    strength = 1

    def detect(self, col: ColumnSample) -> Verdict | None:
        vals = col.distinct()
        if len(vals) < 10 or col.dtype == "float" or col.fullmatch(r"(?:18|19|20)\d{2}").mean() < 0.95:
            return None
        from datetime import date

        ages = date.today().year - pd.to_numeric(vals, errors="coerce").dropna().to_numpy(dtype=float)
        is_hinted = hinted(self.hints, col.column)
        med = float(np.median(ages))
        iqr = float(np.percentile(ages, 75) - np.percentile(ages, 25))
        if ages.min() < 0 or ages.max() > 120 or not ((15 <= med <= 80 and iqr >= 8) or is_hinted):
            return None
        ev = f"{len(vals)} sampled years; implied ages median {med:.0f}, IQR {iqr:.0f}" + (
            "; column name hints it" if is_hinted else "")
        return Verdict("birth_year", "quasi", 1.0, confidence(1.0, is_hinted, 0.7), ev, is_hinted)


DETECTORS = [PostcodeDetector(), SexDetector(), RaceDetector(), AgeDetector(), BirthYearDetector()]
