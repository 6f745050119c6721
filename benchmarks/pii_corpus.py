"""Seeded Faker corpus for evaluating PII detection (benchmark and tests; Faker is dev-only).

Independent of the detectors: values come from Faker's locale providers (and, for two ids Faker
does not produce validly, from stdnum's check-digit functions), never from the names-dataset
index the detectors use. Every column is named ``cNN`` so detection cannot lean on names.

``make_corpus(rows, tables_per_locale, seed)`` returns a list of :class:`Table` (one frame per
locale and repeat, labels per column) and ``make_notes(n, seed)`` free-text notes with the
offsets of the PII spans embedded in them.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd
from faker import Faker

LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR", "en_IN", "ja_JP"]
DIRECT_TYPES = ["person_name", "email", "phone", "date_of_birth", "street_address", "ip_address", "mac_address",
                "iban", "credit_card", "ssn", "uk_nino", "de_idnr", "fr_nir", "es_dni", "it_codice_fiscale",
                "nl_bsn", "in_aadhaar", "br_cpf", "record_id"]
QUASI_TYPES = ["postcode", "sex", "age"]
DISTRACTORS = ["order_number", "order_number_digits", "sku", "price", "timestamp", "version", "review",
               "measurement", "event_date", "quantity", "status"]


@dataclass
class Table:
    locale: str
    frame: pd.DataFrame
    labels: dict[str, str | None]              # column -> true pii type (None: no PII)
    generators: dict[str, str] = field(default_factory=dict)  # column -> generator name


def _person(f: Faker, loc: str) -> str:
    return f.romanized_name() if loc == "ja_JP" else f.name()


def _given(f: Faker, loc: str) -> str:
    return f.first_romanized_name() if loc == "ja_JP" else f.first_name()


def _family(f: Faker, loc: str) -> str:
    return f.last_romanized_name() if loc == "ja_JP" else f.last_name()


def _idnr(rng: random.Random) -> str:
    from stdnum.de import idnr

    while True:
        digits = [str(d) for d in rng.sample(range(10), 9)]
        digits.append(digits[rng.randrange(9)])
        rng.shuffle(digits)
        if digits[0] == "0":
            continue
        body = "".join(digits)
        num = body + idnr.calc_check_digit(body) if hasattr(idnr, "calc_check_digit") else None
        if num is None:
            from stdnum.iso7064 import mod_11_10
            num = body + mod_11_10.calc_check_digit(body)
        if idnr.is_valid(num):
            return num


def _aadhaar(rng: random.Random) -> str:
    from stdnum import verhoeff

    while True:
        body = str(rng.randint(2, 9)) + "".join(str(rng.randrange(10)) for _ in range(10))
        num = body + verhoeff.calc_check_digit(body)
        if num != num[::-1]:
            s = f"{num[:4]} {num[4:8]} {num[8:]}" if rng.random() < 0.5 else num
            return s


def _nino(rng: random.Random) -> str:
    first, second = "ABCEGHJKLMNOPRSTWXYZ", "ABCEGHJKLMNPRSTWXYZ"
    while True:
        pre = rng.choice(first) + rng.choice(second)
        if pre not in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
            break
    d = "".join(str(rng.randrange(10)) for _ in range(6))
    suf = rng.choice("ABCD")
    return rng.choice([f"{pre}{d}{suf}", f"{pre} {d[:2]} {d[2:4]} {d[4:]} {suf}"])


def _dob(f: Faker, fmt: str) -> str:
    return f.date_of_birth(minimum_age=1, maximum_age=95).strftime(fmt)


# id columns only exist in their locale's tables
LOCAL_IDS: dict[str, dict[str, Callable[[Faker, random.Random], str]]] = {
    "en_US": {"ssn": lambda f, r: f.ssn()},
    # Faker's en_GB ssn() uses the ZZ prefix and a T suffix, which HMRC never issues: build
    # numbers by the HMRC rules instead (allowed prefix letters, six digits, suffix A-D)
    "en_GB": {"uk_nino": lambda f, r: _nino(r)},
    "de_DE": {"de_idnr": lambda f, r: _idnr(r)},
    "fr_FR": {"fr_nir": lambda f, r: f.ssn()},
    "es_ES": {"es_dni": lambda f, r: f.nif() if r.random() < 0.7 else f.nie()},
    "it_IT": {"it_codice_fiscale": lambda f, r: f.ssn()},
    "nl_NL": {"nl_bsn": lambda f, r: f.ssn()},
    "pt_BR": {"br_cpf": lambda f, r: f.cpf() if r.random() < 0.5 else f.ssn()},
    "en_IN": {"in_aadhaar": lambda f, r: _aadhaar(r)},
    "ja_JP": {},
}
_SKU_POOL = [f"{a}{b}-{n:04d}" for a in "ABCDEFGH" for b in "XYZ" for n in range(0, 400, 37)]


def _generators(loc: str, f: Faker, r: random.Random) -> dict[str, tuple[str | None, Callable[[], str]]]:
    en = Faker("en_US")
    en.seed_instance(r.randrange(1 << 30))
    gb = Faker("en_GB")
    gb.seed_instance(r.randrange(1 << 30))
    dob_fmt = r.choice(["%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y"])
    g: dict[str, tuple[str | None, Callable[[], str]]] = {
        "full_name": ("person_name", lambda: _person(f, loc)),
        "given_name": ("person_name", lambda: _given(f, loc)),
        "family_name": ("person_name", lambda: _family(f, loc)),
        "email": ("email", f.email),
        "phone": ("phone", f.phone_number),
        "date_of_birth": ("date_of_birth", lambda: _dob(f, dob_fmt)),
        "street_address": ("street_address", f.address),
        "ipv4": ("ip_address", f.ipv4),
        "ipv6": ("ip_address", f.ipv6),
        "mac": ("mac_address", f.mac_address),
        # Faker's en_IN/hi_IN iban() emits GB IBANs of the wrong length: use en_GB's there
        "iban": ("iban", f.iban if loc not in ("en_IN", "hi_IN") else gb.iban),
        "credit_card": ("credit_card", f.credit_card_number),
        "case_number": ("record_id", lambda: f.bothify(r.choice(["CR-####-######", "##??######", "F#######-??",
                                                                  "CASE/####/#####"])).upper()),
        "postcode": ("postcode", f.postcode),
        "sex": ("sex", lambda: r.choice(["M", "F"]) if loc != "de_DE" else r.choice(["männlich", "weiblich"])),
        "age": ("age", lambda: str(int(min(99, max(0, r.gauss(42, 18)))))),
        "order_number": (None, lambda: r.choice(["ORD", "INV", "PO", "SO"]) + "-" + str(r.randrange(10**7, 10**8))),
        "order_number_digits": (None, lambda: str(r.randrange(10**9, 10**10))),
        "sku": (None, lambda: r.choice(_SKU_POOL)),
        "price": (None, lambda: f"{r.lognormvariate(3, 1):.2f}"),
        "timestamp": (None, lambda: f.date_time_between("-2y", "now").strftime("%Y-%m-%d %H:%M:%S")),
        "version": (None, lambda: f"{r.randrange(0, 5)}.{r.randrange(0, 20)}.{r.randrange(0, 30)}"),
        "review": (None, lambda: en.paragraph(nb_sentences=3)),
        "measurement": (None, lambda: f"{r.gauss(170, 10):.1f}"),
        "event_date": (None, lambda: f.date_between("-3y", "today").strftime(dob_fmt)),
        "quantity": (None, lambda: str(r.randrange(1, 25))),
        "status": (None, lambda: r.choice(["shipped", "pending", "returned", "cancelled", "delivered"])),
    }
    for t, fn in LOCAL_IDS[loc].items():
        g[t] = (t, (lambda fn=fn: fn(f, r)))
    return g


def make_corpus(rows: int = 1000, tables_per_locale: int = 1, seed: int = 0,
                locales: list[str] | None = None) -> list[Table]:
    """Tables of ``rows`` rows, one per locale and repeat, columns shuffled and named cNN."""
    out = []
    for rep in range(tables_per_locale):
        for li, loc in enumerate(locales or LOCALES):
            s = seed * 1000 + rep * 100 + li
            f = Faker(loc)
            f.seed_instance(s)
            r = random.Random(s)
            gens = _generators(loc, f, r)
            names = list(gens)
            r.shuffle(names)
            data, labels, origin = {}, {}, {}
            for i, gname in enumerate(names, 1):
                col = f"c{i:02d}"
                label, fn = gens[gname]
                data[col] = [fn() for _ in range(rows)]
                labels[col] = label
                origin[col] = gname
            out.append(Table(loc, pd.DataFrame(data, dtype=object), labels, origin))
    return out


_NOTE_TEMPLATES = [
    "Spoke with {person_name} today, call back on {phone}.",
    "Customer {person_name} asked us to update the email to {email} before shipping.",
    "Refund issued to card {credit_card} after the complaint was reviewed.",
    "Wire transfer to {iban} was confirmed by the bank this morning.",
    "Login attempt from {ip_address} was blocked by the firewall.",
    "Patient born {date_of_birth} reports mild headaches since Monday.",
    "Please verify SSN {ssn} against the application form.",
    "Client {person_name} (mobile {phone}) wants a callback after 5pm.",
    "The device {mac_address} kept dropping off the network.",
    "Contact {email} regarding the delayed delivery, ref {person_name}.",
]
_PLAIN = [
    "The package arrived two days late but the contents were fine.",
    "Follow-up scheduled for next week, no further action needed.",
    "Great value for the price, would order again.",
    "Battery life is shorter than advertised after the last update.",
    "Meeting moved to Thursday; agenda unchanged.",
]


def make_notes(n: int = 500, seed: int = 0) -> list[tuple[str, list[tuple[str, int, int]]]]:
    """Free-text notes with (type, start, end) of each embedded PII span; ~20% contain none."""
    r = random.Random(seed)
    fakers = {loc: Faker(loc) for loc in LOCALES}
    us = Faker("en_US")
    us.seed_instance(seed)
    for i, fk in enumerate(fakers.values()):
        fk.seed_instance(seed * 100 + i)
    out = []
    for _ in range(n):
        loc = r.choice(LOCALES)
        f = fakers[loc]
        if r.random() < 0.2:
            out.append((r.choice(_PLAIN), []))
            continue
        tpl = r.choice(_NOTE_TEMPLATES)
        values = {
            "person_name": _person(f, loc), "phone": f.phone_number(), "email": f.email(),
            "credit_card": f.credit_card_number(), "iban": f.iban(), "ip_address": f.ipv4(),
            "date_of_birth": _dob(f, "%Y-%m-%d"), "ssn": us.ssn(), "mac_address": f.mac_address(),
        }
        text, spans, pos = "", [], 0
        for part in tpl.replace("}", "{").split("{"):
            if part in values:
                spans.append((part, len(text), len(text) + len(values[part])))
                text += values[part]
            else:
                text += part
        out.append((text, spans))
    return out


def one_table_of(n_cols: int, rows: int, seed: int = 0) -> pd.DataFrame:
    """A ``rows`` x ``n_cols`` frame for timing: the first en_US corpus table's columns, tiled."""
    base = make_corpus(rows=min(rows, 20000), seed=seed, locales=["en_US"])[0].frame.iloc[:, :n_cols]
    reps = -(-rows // len(base))
    return pd.concat([base] * reps, ignore_index=True).iloc[:rows]


def score_columns(tables: list[Table], predict: Callable[[pd.DataFrame], dict[str, str]],
                  types: list[str]) -> dict[str, dict]:
    """Column-level precision/recall per type. ``predict(frame) -> {column: type}`` (absent: no PII)."""
    tp = {t: 0 for t in types}
    fp = {t: 0 for t in types}
    fn = {t: 0 for t in types}
    confusions: dict[str, int] = {}
    for tb in tables:
        got = predict(tb.frame)
        for col, truth in tb.labels.items():
            pred = got.get(col)
            if pred == truth:
                if truth in tp:
                    tp[truth] += 1
                continue
            if truth in fn:
                fn[truth] += 1
            if pred in fp:
                fp[pred] += 1
            key = f"{tb.generators.get(col, truth)}->{pred}"
            confusions[key] = confusions.get(key, 0) + 1
    out: dict[str, dict] = {}
    for t in types:
        p = tp[t] / (tp[t] + fp[t]) if tp[t] + fp[t] else None
        r = tp[t] / (tp[t] + fn[t]) if tp[t] + fn[t] else None
        out[t] = {"support": tp[t] + fn[t], "tp": tp[t], "fp": fp[t], "fn": fn[t],
                  "precision": None if p is None else round(p, 4), "recall": None if r is None else round(r, 4)}
    out["_confusions"] = dict(sorted(confusions.items(), key=lambda kv: -kv[1]))
    return out


def score_spans(notes: list[tuple[str, list[tuple[str, int, int]]]],
                predict: Callable[[str], list[tuple[str, int, int]]]) -> dict:
    """Span-level precision/recall/F1: a predicted span counts when its type matches a true span
    and their character ranges overlap by at least half of the longer one."""
    tp = fp = fn = 0
    per_type: dict[str, dict[str, int]] = {}
    for text, truth in notes:
        pred = predict(text)
        used = set()
        for ty, a, b in pred:
            hit = None
            for i, (tt, ta, tb) in enumerate(truth):
                if i in used or tt != ty:
                    continue
                ov = min(b, tb) - max(a, ta)
                if ov > 0 and ov >= 0.5 * max(b - a, tb - ta):
                    hit = i
                    break
            d = per_type.setdefault(ty, {"tp": 0, "fp": 0, "fn": 0})
            if hit is None:
                fp += 1
                d["fp"] += 1
            else:
                used.add(hit)
                tp += 1
                d["tp"] += 1
        for i, (tt, _, _) in enumerate(truth):
            if i not in used:
                fn += 1
                per_type.setdefault(tt, {"tp": 0, "fp": 0, "fn": 0})["fn"] += 1
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4), "tp": tp, "fp": fp, "fn": fn,
            "per_type": per_type}
