"""National identifiers and financial numbers, validated by ``python-stdnum`` check digits.

Types: US SSN, UK NINO, DE tax id (IdNr), FR NIR, ES DNI/NIE, IT codice fiscale, NL BSN,
IN Aadhaar, BR CPF, IBAN and payment cards (IIN prefix + length + Luhn).

Why stdnum: each validator implements the issuing authority's checksum and structure rules
(mod 11, mod 97, Verhoeff, ...), so a random digit string passes with probability about 1/10
or less; we require 80% of a column's values to pass, which random numbers of the same length
(order numbers, counts) never reach. Two formats carry no checksum and stay ambiguous on values
alone, so they need a column-name hint: nine bare digits as a US SSN (the dashed form does not),
and nothing else. ``stdnum`` has no UK NINO module: the HMRC prefix rules are coded here.
"""
from __future__ import annotations

import re
from typing import Callable

from stdnum import iban as _iban
from stdnum import luhn as _luhn
from stdnum.br import cpf as _cpf
from stdnum.de import idnr as _idnr
from stdnum.es import dni as _dni
from stdnum.es import nie as _nie
from stdnum.fr import nir as _nir
from stdnum.in_ import aadhaar as _aadhaar
from stdnum.it import codicefiscale as _cf
from stdnum.nl import bsn as _bsn
from stdnum.us import ssn as _ssn

from privacy.deid.detect.patterns import ValidatedDetector

__all__ = ["is_valid_nino", "is_valid_card", "is_valid_es_id", "DETECTORS", "VALIDATORS"]


def _safe(fn: Callable[[str], object]) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        try:
            return bool(fn(str(value).strip()))
        except Exception:
            return False
    check.__name__ = getattr(fn, "__name__", "check")
    return check


_NINO = re.compile(r"(?!BG|GB|KN|NK|NT|TN)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]")


def is_valid_nino(value: object) -> bool:
    """UK National Insurance number: HMRC prefix rules (no D/F/I/Q/U/V, second letter not O,
    BG/GB/KN/NK/NT/TN never issued), six digits, suffix A-D. ``ZZ`` (the placeholder prefix
    used for temporary and test numbers) is accepted: a column of them is still a NINO column."""
    try:
        return bool(_NINO.fullmatch(str(value).strip().upper()))
    except Exception:
        return False


def is_valid_card(value: object) -> bool:
    """Payment card: 13-19 digits whose first digit is a card industry (2-6: Mastercard 2-series,
    Amex/Diners/JCB, Visa, Mastercard/Maestro, Discover/UnionPay/Maestro), or the 15-digit JCB
    1800/2131 ranges, or a 12-digit Maestro 50/56-69; and the Luhn check (stdnum.luhn), which a
    random number passes one time in ten."""
    try:
        d = re.sub(r"[ -]", "", str(value).strip())
        if not d.isdigit() or not 12 <= len(d) <= 19:
            return False
        ok_prefix = ((13 <= len(d) <= 19 and d[0] in "23456") or (len(d) == 15 and d[:4] in ("1800", "2131"))
                     or (len(d) == 12 and (d[:2] == "50" or "56" <= d[:2] <= "69")))
        return ok_prefix and bool(_luhn.is_valid(d))
    except Exception:
        return False


def is_valid_es_id(value: object) -> bool:
    """Spanish DNI (8 digits + control letter) or NIE (X/Y/Z + 7 digits + control letter)."""
    try:
        s = str(value).strip()
        return bool(_dni.is_valid(s) or _nie.is_valid(s))
    except Exception:
        return False


def _us_ssn(s: str) -> bool:
    return bool(_ssn.is_valid(s))


VALIDATORS = {
    "ssn": _safe(_us_ssn), "uk_nino": is_valid_nino, "de_idnr": _safe(_idnr.is_valid),
    "fr_nir": _safe(_nir.is_valid), "es_dni": is_valid_es_id, "it_codice_fiscale": _safe(_cf.is_valid),
    "nl_bsn": _safe(_bsn.is_valid), "in_aadhaar": _safe(_aadhaar.is_valid), "br_cpf": _safe(_cpf.is_valid),
    "iban": _safe(_iban.is_valid), "credit_card": is_valid_card,
}

# regexes that find candidates inside free text (validated by VALIDATORS before they count)
SPAN_PATTERNS = {
    "ssn": r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])",
    "uk_nino": r"\b[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b",
    "de_idnr": r"(?<!\d)\d{2} ?\d{3} ?\d{3} ?\d{3}(?!\d)",
    "fr_nir": r"(?<!\d)[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}(?!\d)",
    "es_dni": r"\b[XYZ]?\d{7,8}-?[A-Z]\b",
    "it_codice_fiscale": r"\b[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]\b",
    "nl_bsn": r"(?<![\d.-])\d{9}(?![\d.-])",
    "in_aadhaar": r"(?<!\d)[2-9]\d{3} ?\d{4} ?\d{4}(?!\d)",
    "br_cpf": r"(?<!\d)\d{3}\.\d{3}\.\d{3}-\d{2}(?!\d)",
    "iban": r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
    "credit_card": r"(?<![\d-])\d{4}(?:[ -]?\d{4}){2}[ -]?\d{1,7}(?![\d-])|(?<![\d-])3[47]\d{2}[ -]?\d{6}[ -]?\d{5}(?![\d-])",
}


def _d(pii_type: str, gate: str, desc: str, vname: str, hints: str, *, strength: int = 3,
       needs_hint_gate: str | None = None) -> ValidatedDetector:
    return ValidatedDetector(name=pii_type, pii_type=pii_type, validate=VALIDATORS[pii_type], gate=gate,
                             description=desc, validator_name=vname, hints=hints, strength=strength,
                             needs_hint_gate=needs_hint_gate)


DETECTORS = [
    _d("iban", r"[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){8,30}", "IBAN (ISO 13616 mod 97)", "stdnum.iban",
       r"_(iban|bank_account|account|bank)_"),
    _d("credit_card", r"\d(?:[ -]?\d){11,18}", "payment cards (IIN + length + Luhn)",
       "IIN + stdnum.luhn", r"_(cc|card|credit_card|card_number|pan|ccnum|creditcard)_"),
    _d("br_cpf", r"\d{3}\.?\d{3}\.?\d{3}-?\d{2}", "BR CPF (stdnum.br.cpf)", "stdnum.br.cpf", r"_(cpf)_"),
    _d("fr_nir", r"[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[ABab]) ?\d{3} ?\d{3} ?\d{2}", "FR NIR / INSEE (stdnum.fr.nir)",
       "stdnum.fr.nir", r"_(nir|insee|secu|securite_sociale)_"),
    _d("de_idnr", r"\d{2} ?\d{3} ?\d{3} ?\d{3}", "DE tax id IdNr (stdnum.de.idnr)", "stdnum.de.idnr",
       r"_(idnr|steuer_id|steuerid|tax_id|steueridentifikationsnummer)_"),
    _d("in_aadhaar", r"[2-9]\d{3} ?\d{4} ?\d{4}", "IN Aadhaar (Verhoeff, stdnum.in_.aadhaar)",
       "stdnum.in_.aadhaar", r"_(aadhaar|aadhar|uid)_"),
    _d("nl_bsn", r"\d{8,9}|\d{4}\.\d{2}\.\d{3}", "NL BSN (11-proof, stdnum.nl.bsn)", "stdnum.nl.bsn",
       r"_(bsn|sofinummer|burgerservicenummer)_"),
    _d("it_codice_fiscale", r"[A-Za-z]{6}\d{2}[A-Za-z]\d{2}[A-Za-z]\d{3}[A-Za-z]",
       "IT codice fiscale (stdnum.it.codicefiscale)", "stdnum.it.codicefiscale", r"_(cf|codice_fiscale|codicefiscale)_"),
    _d("es_dni", r"[XYZxyz]?\d{7,8}-?[A-Za-z]", "ES DNI / NIE (stdnum.es)", "stdnum.es.dni/nie",
       r"_(dni|nie|nif)_"),
    _d("uk_nino", r"[A-Za-z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-Da-d]", "UK National Insurance number (HMRC rules)",
       "HMRC NINO prefix rules", r"_(nino|ni_number|national_insurance)_", strength=2),
    _d("ssn", r"\d{3}-\d{2}-\d{4}|\d{3} \d{2} \d{4}|\d{9}", "US SSN (stdnum.us.ssn; bare 9 digits need a name hint)",
       "stdnum.us.ssn", r"_(ssn|ssns|social_security|social_security_number|socsec)_", strength=2,
       needs_hint_gate=r"\d{9}"),
]
