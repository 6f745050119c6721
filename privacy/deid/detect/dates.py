"""Dates of birth told apart from visit/event dates by the ages they imply.

A column is a date column when >= 90% of sampled values parse in one format (ISO, d/m/Y, m/d/Y,
d.m.Y, Y/m/d, '12 Mar 1985', 'March 12, 1985'; a midnight time part is allowed, any other time
of day means an event timestamp). Its values are dates of birth when the implied ages look like
a population: all between 0 and 120, none in the future, a median age of at least 15 years and
an interquartile range of at least 8 years. Visit, order or event dates fail because they
cluster within a few recent years (small spread, median age near 0). A name hint (dob, birth
...) lowers the bar to a median of 1 year and an IQR of 2 years and raises confidence.
"""
from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd

from privacy.deid.detect.base import ColumnSample, Verdict, confidence, hinted

__all__ = ["DobDetector", "parse_dates", "DETECTORS"]

_SHAPES = {
    "%Y-%m-%d": r"\d{4}-\d{1,2}-\d{1,2}", "%d/%m/%Y": r"\d{1,2}/\d{1,2}/\d{4}", "%m/%d/%Y": r"\d{1,2}/\d{1,2}/\d{4}",
    "%d.%m.%Y": r"\d{1,2}\.\d{1,2}\.\d{4}", "%Y/%m/%d": r"\d{4}/\d{1,2}/\d{1,2}", "%d-%m-%Y": r"\d{1,2}-\d{1,2}-\d{4}",
    "%Y%m%d": r"(?:19|20)\d{6}", "%d %b %Y": r"\d{1,2} [A-Za-z]{3} \d{4}", "%d %B %Y": r"\d{1,2} [A-Za-z]{3,9} \d{4}",
    "%b %d, %Y": r"[A-Za-z]{3} \d{1,2}, \d{4}", "%B %d, %Y": r"[A-Za-z]{3,9} \d{1,2}, \d{4}",
}
FORMATS = tuple(_SHAPES)
_TWO_DIGITS = re.compile(r"\d{2}")
HINTS = r"_(dob|birth|birthdate|birthday|dateofbirth|born|bday|date_of_birth|birth_date|geburtsdatum|naissance|nascimento|nacimiento)_"


def parse_dates(values: pd.Series) -> tuple[pd.Series, str | None]:
    """(parsed dates, format) for the format that parses the most values; never raises."""
    try:
        v = values.astype("str").str.replace(r"[ T]00:00(?::00(?:\.0+)?)?$", "", regex=True)
        best, best_fmt, best_n = None, None, 0
        texts = v.tolist()
        for fmt in FORMATS:
            rx = re.compile(_SHAPES[fmt])
            if sum(1 for t in texts if rx.fullmatch(t)) <= best_n:
                continue  # cannot beat the best format so far: skip the (slow) parse
            d = pd.to_datetime(v, format=fmt, errors="coerce")
            n = int(d.notna().sum())
            if n > best_n:
                best, best_fmt, best_n = d, fmt, n
                if n == len(v):
                    break
        if best is None:
            return pd.Series(pd.NaT, index=values.index), None
        return best, best_fmt
    except Exception:
        return pd.Series(pd.NaT, index=values.index), None


class DobDetector:
    name = "date_of_birth"
    pii_types = ("date_of_birth",)
    kind = "direct"
    description = "dates of birth (parseable dates whose implied ages form a population)"
    hints = HINTS
    strength = 1

    def detect(self, col: ColumnSample) -> Verdict | None:
        vals = col.distinct()
        if len(vals) < 5 or col.dtype == "float":
            return None
        if col.share(lambda t: 6 <= len(t) <= 30 and _TWO_DIGITS.search(t) is not None) <= 0.9:
            return None
        d, fmt = parse_dates(vals)
        ok = d.notna()
        share = float(ok.mean())
        if share < 0.9:
            return None
        today = pd.Timestamp(date.today())
        ages = ((today - d[ok]).dt.days / 365.25).to_numpy()
        if len(ages) == 0 or ages.min() < 0 or ages.max() > 120:
            return None
        med = float(np.median(ages))
        iqr = float(np.percentile(ages, 75) - np.percentile(ages, 25))
        is_hinted = hinted(self.hints, col.column)
        if not ((med >= 15 and iqr >= 8) or (is_hinted and med >= 1 and iqr >= 2)):
            return None
        ev = (f"{share:.0%} of {len(vals)} sampled values parse as dates ({fmt}); implied ages "
              f"median {med:.0f} y, IQR {iqr:.0f} y, range {ages.min():.0f}-{ages.max():.0f} y"
              + ("; column name hints it" if is_hinted else ""))
        return Verdict("date_of_birth", "direct", round(share, 4), confidence(share, is_hinted, 0.9), ev, is_hinted)


DETECTORS = [DobDetector()]
