"""Redact PII spans inside free text: replace each span by a type tag or a keyed pseudonym.

Why a transform of its own: a notes column is not an identifier to drop or hash as a whole
(the text is the useful part), but names, phones, ids and emails inside it are. Spans come from
:func:`privacy.deid.detect.find_spans` (the same validators the column detectors use).

``mode="tag"``: ``"call Ana Ruiz on +34 912 345 678"`` -> ``"call [PERSON_NAME] on [PHONE]"``.
``mode="pseudonym"``: ``[PHONE:3f9a1c0e]`` with an HMAC-SHA256 of the span text under the
column's pseudonym key, so the same person gets the same token across rows and versions
(joins and counts still work) and nobody without the key can reverse it.
"""
from __future__ import annotations

import hmac
from typing import Iterable

import pandas as pd

from privacy.errors import InputError

__all__ = ["redact_text", "redact"]


def redact_text(text: str, *, mode: str = "tag", types: Iterable[str] | None = None, key: bytes | None = None,
                domain: str = "", length: int = 8) -> tuple[str, int]:
    """(redacted text, number of spans replaced)."""
    from privacy.deid.detect import find_spans

    if mode not in ("tag", "pseudonym"):
        raise InputError(f"redact: mode must be 'tag' or 'pseudonym', got {mode!r}")
    if mode == "pseudonym" and (not isinstance(key, (bytes, bytearray)) or len(key) < 16):
        raise InputError(f"redact: pseudonym mode needs a key of at least 16 bytes for domain {domain!r}")
    wanted = None if types is None else set(types)
    spans = [s for s in find_spans(text) if wanted is None or s.pii_type in wanted]
    out = text
    for s in sorted(spans, key=lambda s: -s.start):
        tag = s.pii_type.upper()
        if mode == "pseudonym":
            msg = domain.encode("utf-8") + b"\x00" + s.pii_type.encode() + b"\x00" + text[s.start:s.end].strip().encode("utf-8", "surrogatepass")
            tag += ":" + hmac.digest(bytes(key), msg, "sha256").hex()[:length]  # type: ignore[arg-type]
        out = out[:s.start] + f"[{tag}]" + out[s.end:]
    return out, len(spans)


def redact(series: pd.Series, *, mode: str = "tag", types: Iterable[str] | None = None, key: bytes | None = None,
           domain: str = "", length: int = 8) -> tuple[pd.Series, int]:
    """Redact every text of ``series`` (once per distinct value); nulls stay null.
    Returns (new series, spans replaced in total)."""
    s = series if isinstance(series, pd.Series) else pd.Series(series)
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    texts, counts = [], []
    for u in uniques:
        t, n = redact_text(str(u), mode=mode, types=types, key=key, domain=domain, length=length)
        texts.append(t)
        counts.append(n)
    per_row = pd.Series(codes)
    total = int(sum(counts[c] for c in per_row[per_row >= 0])) if len(counts) else 0
    vocab = texts + [None]
    res = [vocab[c] if c >= 0 else None for c in codes]
    return pd.Series(res, index=s.index, name=s.name, dtype="str"), total
