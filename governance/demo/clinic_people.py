"""Synthetic patients: the identity attributes a clinic holds about each person.

Why its own module: these are the columns de-identification must find and
transform (name, email, phone, SSN, date of birth, ZIP), drawn once per patient
so that they repeat exactly across that patient's visits. The draw order on
``rng`` is part of the data's definition: changing it changes every dataset
generated for a seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from governance.demo.arrow_text import digits, join, lookup, padded
from privacy.deid.names import load_names

SEX_VALUES = ("female", "male")
RACE_VALUES = ("white", "black", "hispanic", "asian", "other")
_RACE_P = (0.60, 0.13, 0.18, 0.06, 0.03)

_EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com",
                  "aol.com", "comcast.net", "protonmail.com", "example.org", "mail.com")
_EMAIL_DOMAIN_P = (0.38, 0.16, 0.12, 0.09, 0.08, 0.05, 0.04, 0.03, 0.03, 0.02)

_EPOCH = np.datetime64("1970-01-01", "D")
_START_DAY = int((np.datetime64("2019-01-01", "D") - _EPOCH).astype(np.int64))
_FIRST_VISIT_SPAN_DAYS = 6 * 365


@dataclass(frozen=True)
class Patients:
    """One entry per patient; ``sex`` and ``race`` are codes into SEX_VALUES / RACE_VALUES.

    ``first_visit`` and ``dob_days`` are days since 1970-01-01; ``bmi_base``,
    ``diabetic`` and ``prior_base`` are the per-person traits the visits vary around.
    """

    patient_id: np.ndarray
    sex: np.ndarray
    name: pa.Array
    email: pa.Array
    phone: pa.Array
    ssn: pa.Array
    first_visit: np.ndarray
    dob_days: np.ndarray
    zip_code: pa.Array
    race: np.ndarray
    bmi_base: np.ndarray
    diabetic: np.ndarray
    prior_base: np.ndarray


def _zip_pool(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, 0x5A1])
    pool = rng.choice(np.arange(1001, 99951), size=3000, replace=False)
    w = 1.0 / (np.arange(3000) + 10.0)
    return pool, w / w.sum()


def _valid_nxx(rng: np.random.Generator, n: int) -> np.ndarray:
    """NANP area code / exchange: NXX with N in 2-9, not N11, second digit != 9."""
    n1 = rng.integers(2, 10, n)
    n2 = rng.integers(0, 9, n)
    n3 = rng.integers(0, 10, n)
    n3 = np.where((n2 == 1) & (n3 == 1), 0, n3)
    return n1 * 100 + n2 * 10 + n3


def draw_patients(rng: np.random.Generator, n_pat: int, id_offset: int, seed: int) -> Patients:
    """Draw ``n_pat`` patients; ids start at ``10_000_001 + id_offset``.

    ``seed`` (not ``rng``) picks the ZIP pool, so every chunk of one dataset
    shares the same Zipf-weighted set of ZIP codes.
    """
    names = load_names()
    patient_id = 10_000_001 + id_offset + np.arange(n_pat, dtype=np.int64)

    sex = (rng.random(n_pat) >= 0.52).astype(np.int8)  # 0 female, 1 male
    nf, nm, nl = len(names.first_female), len(names.first_male), len(names.last)
    first_code = np.where(sex == 0, rng.integers(0, nf, n_pat), nf + rng.integers(0, nm, n_pat))
    first = lookup(names.first_female + names.first_male, first_code)
    last = lookup(names.last, rng.integers(0, nl, n_pat))
    name = pc.binary_join_element_wise(first, last, " ")

    sep = lookup((".", "_", ""), rng.choice(3, n_pat, p=(0.6, 0.2, 0.2)))
    number = digits(rng.integers(1, 1000, n_pat))
    number = pc.if_else(pa.array(rng.random(n_pat) < 0.6), number, "")
    domain = lookup(_EMAIL_DOMAINS, rng.choice(len(_EMAIL_DOMAINS), n_pat, p=_EMAIL_DOMAIN_P))
    email = pc.utf8_lower(join(first, sep, last, number, "@", domain))

    area, exch = digits(_valid_nxx(rng, n_pat)), digits(_valid_nxx(rng, n_pat))
    sub = padded(rng.integers(0, 10000, n_pat), 4)
    phone_fmt = pa.array(rng.choice(5, n_pat, p=(0.35, 0.3, 0.1, 0.15, 0.1)).astype(np.int8))
    phone = pc.choose(
        phone_fmt,
        join("(", area, ") ", exch, "-", sub),
        join(area, "-", exch, "-", sub),
        join(area, ".", exch, ".", sub),
        join("+1 ", area, " ", exch, " ", sub),
        join("+1", area, exch, sub),
    )

    ssn_area = rng.integers(1, 899, n_pat)
    ssn_area = np.where(ssn_area == 666, 667, ssn_area)
    ssn = join(padded(ssn_area, 3), "-", padded(rng.integers(1, 100, n_pat), 2), "-",
               padded(rng.integers(1, 10000, n_pat), 4))

    first_visit = _START_DAY + rng.integers(0, _FIRST_VISIT_SPAN_DAYS, n_pat)
    age0 = np.clip(rng.normal(52.0, 19.0, n_pat), 0.05, 99.5)
    dob_days = first_visit - np.round(age0 * 365.2425).astype(np.int64)

    zpool, zp = _zip_pool(seed)
    zip_code = padded(zpool[rng.choice(len(zpool), n_pat, p=zp)], 5)
    race = rng.choice(len(RACE_VALUES), n_pat, p=_RACE_P).astype(np.int8)

    bmi_base = np.clip(rng.normal(28.0, 5.5, n_pat), 16.0, 55.0)
    diabetic = rng.random(n_pat) < 0.18
    prior_base = rng.poisson(1.5, n_pat)
    return Patients(patient_id=patient_id, sex=sex, name=name, email=email, phone=phone, ssn=ssn,
                    first_visit=first_visit, dob_days=dob_days, zip_code=zip_code, race=race,
                    bmi_base=bmi_base, diabetic=diabetic, prior_base=prior_base)
