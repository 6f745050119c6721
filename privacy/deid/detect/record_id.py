"""Record identifiers: case, file, docket or patient numbers that no pattern names.

Rule, documented (the trade-off an auditor should know):
* per-row unique over the WHOLE column (full pass: distinct / non-null >= 0.95, >= 20 rows);
* code-like: >= 90% of sampled values are 4-40 characters of letters, digits and separators
  (``-/._ #``) containing at least one digit, with no spaces between words, and a stable shape
  (at most 5 letters/digits skeletons, after collapsing runs, cover >= 80% of values);
* not a number with a fractional part (a price, a measurement), not a date or timestamp, not a
  version string (``1.4.2``), not a UUID-free-text, and not another detector's type.
* Excluded on purpose: commerce/transaction codes whose letter prefix says so (ORD, INV, PO,
  SO, TXN, TRX, SKU, REF, SHP, RMA; an order number identifies an order, and an SKU repeats),
  bare digit strings (row numbers, counts, order numbers; they count only with a name hint
  such as case/file/mrn/docket/patient_id), and the declared row-id column (``row_id=`` in
  :func:`privacy.deid.scan.scan`), which the platform itself mints.
"""
from __future__ import annotations

import re

from privacy.deid.detect.base import ColumnSample, Verdict, confidence, hinted

__all__ = ["RecordIdDetector", "DETECTORS"]

_CODE = r"(?=[^\s]*\d)[A-Za-z0-9][A-Za-z0-9\-/._#:]{2,38}[A-Za-z0-9]"
_COMMERCE = r"(?i)(?:ORD|ORDER|INV|PO|SO|TXN|TRX|TX|SKU|REF|SHP|RMA|SN|PRD|ITEM|CART|PAY)[-_#/ ]?\d.*"
HINTS = (r"_(case|case_no|case_number|docket|file_no|file_number|mrn|record|record_id|patient_id|"
         r"person_id|subject_id|member_id|account_no|inmate|booking|booking_no|offender|cdc|fbi|sid)_")


def _shape(v: str) -> str:
    return re.sub(r"(A)+", "A", re.sub(r"(9)+", "9", re.sub(r"[A-Za-z]", "A", re.sub(r"\d", "9", v))))


class RecordIdDetector:
    name = "record_id"
    pii_types = ("record_id",)
    kind = "record_id"
    description = "record identifiers (per-row unique, code-like: case/file/docket numbers)"
    hints = HINTS
    strength = 0

    def detect(self, col: ColumnSample) -> Verdict | None:
        vals = col.distinct()
        if len(vals) < 20 or col.dtype == "float":
            return None
        is_hinted = hinted(self.hints, col.column)
        code = float(col.fullmatch(_CODE).mean())
        if code < 0.9:
            return None
        if col.fullmatch(r"v?\d+(?:\.\d+){1,3}(?:[-+][\w.]+)?").mean() > 0.5:
            return None  # version strings
        if col.fullmatch(r"[\d\-/.: T]+").mean() > 0.5 and col.fullmatch(r".*(?:\d{4}-\d{2}-\d{2}|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}).*").mean() > 0.5:
            return None  # dates, timestamps
        if col.fullmatch(_COMMERCE).mean() > 0.5:
            return None
        bare = float(col.fullmatch(r"\d+").mean())
        if bare > 0.5 and not is_hinted:
            return None
        shapes = vals.map(_shape).value_counts(normalize=True)
        top = float(shapes.iloc[:5].sum())
        if top < 0.8:
            return None  # no stable format: free-form codes or text
        full = col.full
        nn = full.dropna()
        if len(nn) < 20:
            return None
        uniq = float(nn.nunique()) / len(nn)
        if uniq < 0.95:
            return None
        ev = (f"{uniq:.1%} of {len(nn)} values unique (full pass); {code:.0%} code-like, "
              f"{min(5, len(shapes))} formats cover {top:.0%}" + ("; column name hints it" if is_hinted else ""))
        return Verdict("record_id", "record_id", round(float(uniq), 4), confidence(float(uniq), is_hinted, 0.8), ev,
                       is_hinted)


DETECTORS = [RecordIdDetector()]
