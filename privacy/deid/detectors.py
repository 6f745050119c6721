"""Value-level PII validators and the per-value registry (``detect_values``).

Column classification lives in :mod:`privacy.deid.detect` (values first, names as one signal);
``privacy.deid.scan.scan`` uses that. This module keeps the per-value API and the validators
it always had; person names are checked against the names-dataset index.


A :class:`Detector` decides, per value, whether a string is a PII value of its type. It works
in three stages, vectorized over a pandas Series:

1. a *strong* regex (full match after stripping whitespace): the format alone is convincing
   (``jane.doe@example.org``, ``(617) 555-0134``, ``078-05-1121``, ``4111 1111 1111 1111``);
2. a *weak* regex that only counts when the column name carries a hint for the type (a bare
   ``6175550134`` is a phone number in a ``phone`` column, an order number elsewhere);
3. a validator run on the (de-duplicated) regex matches: NANP area/exchange rules, SSN
   area/group/serial rules, Luhn + IIN prefix + length, IBAN mod-97, ``ipaddress`` parsing,
   plausible birth-date range, name lists, ZIP ranges.

Column-name heuristics (names are split into lower-case tokens, ``dateOfBirth`` ->
``_date_of_birth_``):

* a *hint* (``phone``, ``ssn``, ``dob``, ``zip`` ...) enables the weak pattern and raises the
  confidence that ``scan`` reports;
* an *anti-hint* (``order``, ``invoice``, ``sku``, ``tracking``, ``version``, ``build`` ...) vetoes
  the numeric-looking detectors (phone, SSN, credit card, IBAN, IP) unless a hint is also
  present. Decision, documented: ``1.2.3.4`` in a column called ``version`` / ``app_version`` /
  ``build`` / ``release`` / ``firmware`` is a version string, not an IP address; in a column with
  any other name (or no name) a valid dotted quad is an IPv4 address.
* Dates of birth and ZIP codes are never inferred from values alone (any date could be a visit
  date, any 5-digit number a count): they require a column-name hint.

When several detectors accept a value, the first in ``PRECEDENCE`` wins.

Register more with :func:`register_detector` (a :class:`Detector` or any object with the same
``pii_type`` / ``is_direct_identifier`` / ``match(series, column)`` / ``hinted(column)``).
Validators are total: they return ``False`` on any input they do not understand and never raise.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from privacy.deid.detect.name_index import load_index
from privacy.deid.detect.network import is_valid_email, is_valid_ip  # one implementation each
from privacy.errors import InputError

__all__ = [
    "Detector",
    "register_detector",
    "get_detector",
    "detectors",
    "PRECEDENCE",
    "column_tokens",
    "detect_values",
    "detect_value",
    "is_valid_email",
    "is_valid_nanp",
    "is_valid_phone",
    "is_valid_ssn",
    "luhn_ok",
    "is_valid_credit_card",
    "is_valid_iban",
    "is_valid_ip",
    "parse_date",
    "is_plausible_dob",
    "is_valid_zip",
    "is_person_name",
]


# ---- column names --------------------------------------------------------------------------
def column_tokens(column: object) -> str:
    """``"dateOfBirth"`` -> ``"_date_of_birth_"``; ``"Patient Phone#"`` -> ``"_patient_phone_"``."""
    if column is None:
        return "__"
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(column))
    toks = [t for t in re.split(r"[^a-z0-9]+", text.lower()) if t]
    return "_" + "_".join(toks) + "_"


_NUMERIC_ANTI = (r"_(order|orders|invoice|inv|sku|tracking|ticket|transaction|txn|serial|part|"
                 r"product|model|batch|lot|ref|reference|confirmation|po|isbn|upc|ean|barcode)_")
_VERSION_ANTI = r"_(version|versions|ver|vsn|release|build|firmware|fw|semver|oid)_"


# ---- validators (total functions: never raise) ---------------------------------------------------
def _digits(s: str) -> str:
    return "".join(ch for ch in s if "0" <= ch <= "9")


def _nxx_ok(d: str) -> bool:
    # NANP: first digit 2-9; N11 are service codes.
    return len(d) == 3 and d[0] in "23456789" and not (d[1] == "1" and d[2] == "1")


def is_valid_nanp(value: object) -> bool:
    """10 NANP digits (optionally prefixed by 1): NXX area (not N11, not N9X) + NXX exchange."""
    try:
        d = _digits(str(value))
        if len(d) == 11 and d[0] == "1":
            d = d[1:]
        if len(d) != 10:
            return False
        area, exch = d[:3], d[3:6]
        return _nxx_ok(area) and area[1] != "9" and _nxx_ok(exch)
    except Exception:
        return False


def is_valid_phone(value: object) -> bool:
    """NANP number in any common format, or an E.164 (+CC...) number of 8-15 digits."""
    try:
        s = str(value).strip()
        d = _digits(s)
        if s.startswith("+"):
            if d.startswith("1"):
                return len(d) == 11 and is_valid_nanp(d)
            return 8 <= len(d) <= 15 and d[0] != "0"
        return is_valid_nanp(d)
    except Exception:
        return False


_SSN_BLOCKLIST = frozenset({"078051120", "219099999"})  # SSA-published invalid (advertising) numbers


def is_valid_ssn(value: object) -> bool:
    """US SSN rules: area not 000/666/9xx, group not 00, serial not 0000."""
    try:
        s = str(value).strip()
        if not re.fullmatch(r"\d{3}([- ]?)\d{2}\1\d{4}", s):
            return False
        d = _digits(s)
        area, group, serial = d[:3], d[3:5], d[5:]
        return (area != "000" and area != "666" and area[0] != "9" and group != "00"
                and serial != "0000" and d not in _SSN_BLOCKLIST)
    except Exception:
        return False


def luhn_ok(digits: object) -> bool:
    try:
        d = str(digits)
        if not d or not d.isascii() or not d.isdigit():
            return False
        total = 0
        for i, ch in enumerate(reversed(d)):
            n = ord(ch) - 48
            if i % 2 == 1:
                n *= 2
                if n > 9:
                    n -= 9
            total += n
        return total % 10 == 0
    except Exception:
        return False


# (prefix range low, high, prefix length, allowed lengths)
_IIN_TABLE: tuple[tuple[int, int, int, tuple[int, ...]], ...] = (
    (4, 4, 1, (13, 16, 19)),                 # Visa
    (51, 55, 2, (16,)),                      # Mastercard
    (2221, 2720, 4, (16,)),                  # Mastercard 2-series
    (34, 34, 2, (15,)), (37, 37, 2, (15,)),  # American Express
    (6011, 6011, 4, (16, 17, 18, 19)),       # Discover
    (644, 649, 3, (16, 17, 18, 19)),
    (65, 65, 2, (16, 17, 18, 19)),
    (3528, 3589, 4, (16, 17, 18, 19)),       # JCB
    (300, 305, 3, (14, 15, 16, 17, 18, 19)),  # Diners Club
    (36, 36, 2, (14, 15, 16, 17, 18, 19)),
    (38, 39, 2, (16, 17, 18, 19)),
    (62, 62, 2, (16, 17, 18, 19)),           # UnionPay
    (5018, 5018, 4, (12, 13, 14, 15, 16, 17, 18, 19)),  # Maestro
    (5020, 5020, 4, (12, 13, 14, 15, 16, 17, 18, 19)),
    (5038, 5038, 4, (12, 13, 14, 15, 16, 17, 18, 19)),
    (6304, 6304, 4, (12, 13, 14, 15, 16, 17, 18, 19)),
    (6759, 6759, 4, (12, 13, 14, 15, 16, 17, 18, 19)),
    (6761, 6763, 4, (12, 13, 14, 15, 16, 17, 18, 19)),
)


def is_valid_credit_card(value: object) -> bool:
    """Payment card number: known IIN prefix, a length allowed for it, and the Luhn check."""
    try:
        s = str(value).strip()
        if not re.fullmatch(r"\d(?:[ -]?\d){11,18}", s):
            return False
        d = _digits(s)
        if not any(lo <= int(d[:plen]) <= hi and len(d) in lengths
                   for lo, hi, plen, lengths in _IIN_TABLE):
            return False
        return luhn_ok(d)
    except Exception:
        return False


_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20,
    "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30,
    "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}


def is_valid_iban(value: object) -> bool:
    """IBAN: known country, its length, check digits 02-98 and the ISO 7064 mod-97 == 1 check."""
    try:
        s = str(value).strip().replace(" ", "").upper()
        if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{8,30}", s):
            return False
        if _IBAN_LENGTHS.get(s[:2]) != len(s) or not 2 <= int(s[2:4]) <= 98:
            return False
        moved = s[4:] + s[:4]
        num = "".join(str(int(ch, 36)) for ch in moved)
        return int(num) % 97 == 1
    except Exception:
        return False


_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d", "%Y%m%d", "%d %b %Y",
                 "%d %B %Y", "%b %d, %Y", "%B %d, %Y", "%b. %d, %Y")


def parse_date(value: object) -> date | None:
    """Parse a date in one of the common formats (ISO, US m/d/Y, d.m.Y, Y/m/d, YYYYMMDD,
    '12 Mar 1985', 'March 12, 1985'); a trailing midnight time is accepted. None if not a date."""
    try:
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        s = str(value).strip()
        if len(s) > 40:
            return None
        s = re.sub(r"[ T]00:00(?::00(?:\.0+)?)?$", "", s)
        for fmt in _DATE_FORMATS:
            try:
                return datetime.strptime(s, fmt).date()
            except ValueError:
                continue
        return None
    except Exception:
        return None


MIN_BIRTH_DATE = date(1900, 1, 1)


def is_plausible_dob(value: object, today: date | None = None) -> bool:
    """A parseable date between 1900-01-01 and today (ages 0-126)."""
    try:
        d = parse_date(value)
        if d is None:
            return False
        return MIN_BIRTH_DATE <= d <= (today or date.today())
    except Exception:
        return False


def is_valid_zip(value: object) -> bool:
    """US ZIP (5 digits, 00501-99950) or ZIP+4 (``12345-6789``)."""
    try:
        s = str(value).strip()
        m = re.fullmatch(r"(\d{5})(?:-\d{4})?", s)
        return m is not None and 501 <= int(m.group(1)) <= 99950
    except Exception:
        return False


@lru_cache(maxsize=1)
def _name_sets() -> tuple[frozenset[str], frozenset[str]]:
    # names-dataset index (see privacy.deid.detect.name_index), never the demo generator's list
    n = load_index()
    return (frozenset(n.first), frozenset(n.last))


_NAME_TOKEN = re.compile(r"[A-Za-z][A-Za-z'\-]*\.?")


def is_person_name(value: object, *, hinted: bool = False) -> bool:
    """A person's name: ``First Last``, ``First M. Last`` or ``Last, First`` with the first name
    in the embedded first-name list and the surname in the surname list. With ``hinted=True``
    (the column is called name/first_name/surname ...) one known name token suffices."""
    try:
        s = str(value).strip()
        if not s or len(s) > 80:
            return False
        first_set, last_set = _name_sets()
        if "," in s:
            parts = [p.strip() for p in s.split(",")]
            if len(parts) != 2:
                return False
            s = parts[1] + " " + parts[0]
        toks = s.split()
        if not toks or len(toks) > 4 or not all(_NAME_TOKEN.fullmatch(t) for t in toks):
            return False
        low = [t.lower().rstrip(".") for t in toks]
        if len(low) >= 2 and low[0] in first_set and low[-1] in last_set:
            return True
        if hinted:
            return any(t in first_set or t in last_set for t in low)
        return False
    except Exception:
        return False


# ---- detector -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Detector:
    pii_type: str
    is_direct_identifier: bool
    validate: Callable[[str], bool]
    strong: str | None = None          # regex: the format alone is convincing
    weak: str | None = None            # regex: counts only with a column-name hint
    hints: str | None = None           # regex over column_tokens(column)
    anti_hints: str | None = None      # veto unless a hint is also present
    validate_weak: Callable[[str], bool] | None = None
    base_confidence: float = 0.9       # confidence of a strong-format match without a hint

    def hinted(self, column: object) -> bool:
        return (self.hints is not None and self.hints != "" and column is not None
                and re.search(self.hints, column_tokens(column)) is not None)

    def vetoed(self, column: object) -> bool:
        return (self.anti_hints is not None and self.anti_hints != "" and column is not None
                and re.search(self.anti_hints, column_tokens(column)) is not None
                and not self.hinted(column))

    def match(self, values: pd.Series, column: object = None) -> np.ndarray:
        """Boolean array: which values are PII of this type (nulls never are)."""
        text = _as_text(values)
        out = np.zeros(len(text), dtype=bool)
        if self.vetoed(column):
            return out
        hinted = self.hinted(column)
        nn = text.notna().to_numpy()
        if not nn.any():
            return out
        sv = text[nn]
        res = np.zeros(len(sv), dtype=bool)
        if self.strong:
            strong = _fullmatch(sv, self.strong)
            res |= _validated(sv, strong, self.validate)
        if self.weak and hinted:
            weak = _fullmatch(sv, self.weak) & ~res
            res |= _validated(sv, weak, self.validate_weak or self.validate)
        out[nn] = res
        return out


def _as_text(values: pd.Series) -> pd.Series:
    """Values as stripped strings (nulls kept as NA). Datetimes -> ISO dates; integral
    floats (an id column read with NaNs) -> integer strings; other floats/bools -> all NA."""
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s.dt.strftime("%Y-%m-%d").astype("str")
    if pd.api.types.is_bool_dtype(s.dtype):
        return pd.Series(None, index=s.index, dtype="str")
    if pd.api.types.is_float_dtype(s.dtype):
        arr = s.to_numpy(dtype=np.float64, na_value=np.nan)
        fin = np.isfinite(arr)
        if fin.any() and np.all(arr[fin] == np.round(arr[fin])) and np.all(np.abs(arr[fin]) < 1e18):
            return s.astype("Int64").astype("str")
        return pd.Series(None, index=s.index, dtype="str")
    if pd.api.types.is_integer_dtype(s.dtype):
        return s.astype("str")
    if not pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
        s = s.map(_cell_text, na_action="ignore")
    return s.astype("str").str.strip()


def _cell_text(v: object) -> object:
    if isinstance(v, str):
        return v
    if isinstance(v, (datetime, date)):
        return v.strftime("%Y-%m-%d")
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def _fullmatch(sv: pd.Series, pattern: str) -> np.ndarray:
    return np.asarray(sv.str.fullmatch(pattern).to_numpy(dtype=bool, na_value=False), dtype=bool)


def _validated(sv: pd.Series, cand: np.ndarray, validate: Callable[[str], bool]) -> np.ndarray:
    if not cand.any():
        return cand
    cv = sv[cand]
    ok = {u: bool(validate(u)) for u in pd.unique(cv)}
    res = cand.copy()
    res[cand] = cv.map(ok).to_numpy(dtype=bool)
    return res


# ---- registry ------------------------------------------------------------------------------
_REGISTRY: dict[str, Detector] = {}
PRECEDENCE: list[str] = []


def register_detector(detector: Detector, *, replace: bool = False) -> Detector:
    """Add a detector to the registry (appended to ``PRECEDENCE``)."""
    name = getattr(detector, "pii_type", None)
    if not isinstance(name, str) or not name:
        raise InputError("register_detector: detector.pii_type must be a non-empty string")
    if name in _REGISTRY and not replace:
        raise InputError(f"register_detector: a detector for {name!r} is already registered")
    _REGISTRY[name] = detector
    if name not in PRECEDENCE:
        PRECEDENCE.append(name)
    return detector


def get_detector(pii_type: str) -> Detector:
    try:
        return _REGISTRY[pii_type]
    except KeyError:
        raise InputError(f"pii_type: unknown detector {pii_type!r}; expected one of "
                         f"{', '.join(PRECEDENCE)}") from None


def detectors() -> list[Detector]:
    """Registered detectors in precedence order."""
    return [_REGISTRY[n] for n in PRECEDENCE]


def detect_values(values: pd.Series | Iterable[object], column: object = None,
                  types: Iterable[str] | None = None) -> pd.Series:
    """Per value, the PII type it is detected as (first match in ``PRECEDENCE``), or None."""
    s = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    out = np.full(len(s), None, dtype=object)
    undecided = np.ones(len(s), dtype=bool)
    wanted = None if types is None else set(types)
    for det in detectors():
        if wanted is not None and det.pii_type not in wanted:
            continue
        if not undecided.any():
            break
        hit = det.match(s, column) & undecided
        out[hit] = det.pii_type
        undecided &= ~hit
    return pd.Series(out, index=s.index, dtype=object)


def detect_value(value: object, column: object = None) -> str | None:
    found = detect_values(pd.Series([value], dtype=object), column).iloc[0]
    return None if found is None else str(found)


# ---- built-in detectors, in precedence order --------------------------------------------------
register_detector(Detector(
    pii_type="email", is_direct_identifier=True, validate=is_valid_email,
    strong=r"[^@\s]{1,64}@[^@\s]{1,253}\.[A-Za-z]{2,24}",
    hints=r"_(e_?mail|email_address|mail|e_mail_address)_", base_confidence=0.95,
))
register_detector(Detector(
    pii_type="iban", is_direct_identifier=True, validate=is_valid_iban,
    strong=r"[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){8,30}",
    hints=r"_(iban|bank_account|account_iban|bank)_", anti_hints=_NUMERIC_ANTI, base_confidence=0.95,
))
register_detector(Detector(
    pii_type="credit_card", is_direct_identifier=True, validate=is_valid_credit_card,
    strong=r"\d(?:[ -]?\d){11,18}",
    hints=r"_(cc|card|cc_number|credit_card|card_number|card_no|pan|ccnum|creditcard|cardnumber)_",
    anti_hints=_NUMERIC_ANTI, base_confidence=0.85,
))
register_detector(Detector(
    pii_type="ssn", is_direct_identifier=True, validate=is_valid_ssn,
    strong=r"\d{3}-\d{2}-\d{4}|\d{3} \d{2} \d{4}", weak=r"\d{9}",
    hints=r"_(ssn|ssns|social_security|social_security_number|socsec|ss_number|ss_no)_",
    anti_hints=_NUMERIC_ANTI, base_confidence=0.85,
))
register_detector(Detector(
    pii_type="phone", is_direct_identifier=True, validate=is_valid_phone,
    strong=(r"(?:\+?1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}"
            r"|\+1 ?\(\d{3}\) ?\d{3}[ .-]\d{4}"
            r"|\+[1-9][\d .()-]{6,20}\d"),
    weak=r"1?\d{10}",
    hints=r"_(phone|phones|telephone|tel|mobile|cell|cellphone|fax|phone_number|contact_number|msisdn)_",
    anti_hints=_NUMERIC_ANTI, base_confidence=0.85,
))
register_detector(Detector(
    pii_type="ip_address", is_direct_identifier=True, validate=is_valid_ip,
    strong=(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"
            r"|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?::\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})?"),
    hints=r"_(ip|ips|ip_address|ipaddr|ipv4|ipv6|client_ip|remote_addr|remote_ip|src_ip|dst_ip|host_ip)_",
    anti_hints=_VERSION_ANTI + "|" + _NUMERIC_ANTI, base_confidence=0.9,
))
register_detector(Detector(
    pii_type="date_of_birth", is_direct_identifier=False, validate=is_plausible_dob,
    weak=(r"\d{4}-\d{1,2}-\d{1,2}(?:[ T]00:00(?::00(?:\.0+)?)?)?|\d{1,2}/\d{1,2}/\d{4}"
          r"|\d{1,2}\.\d{1,2}\.\d{4}|\d{4}/\d{1,2}/\d{1,2}|\d{8}|\d{1,2} [A-Za-z]{3,9} \d{4}"
          r"|[A-Za-z]{3,9}\.? \d{1,2}, \d{4}"),
    hints=r"_(dob|birth|birthdate|birthday|dateofbirth|born|bday|date_of_birth|birth_date)_",
))
register_detector(Detector(
    pii_type="zip", is_direct_identifier=False, validate=is_valid_zip,
    weak=r"\d{5}(?:-\d{4})?",
    hints=r"_(zip|zips|zipcode|zip_code|zip5|zip4|postal|postcode|postal_code|post_code)_",
))
register_detector(Detector(
    pii_type="person_name", is_direct_identifier=True, validate=is_person_name,
    strong=r"[A-Za-z][A-Za-z'\-]*(?: [A-Za-z][A-Za-z'\-]*\.?){0,2} [A-Za-z][A-Za-z'\-]*|[A-Za-z][A-Za-z'\-]*, ?[A-Za-z][A-Za-z'\-]*(?: [A-Za-z]\.?)?",
    weak=r"[A-Za-z][A-Za-z'\-]*\.?(?:,? [A-Za-z][A-Za-z'\-]*\.?){0,3}",
    validate_weak=lambda v: is_person_name(v, hinted=True),
    hints=(r"_(name|names|full_name|fullname|first_name|firstname|fname|last_name|lastname|lname|"
           r"surname|given_name|family_name|patient_name|customer_name|contact_name)_"),
    base_confidence=0.8,
))
