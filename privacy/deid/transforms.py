"""De-identification transforms driven by declarative specs.

``apply_deid(df, specs, key_for_domain)`` runs a list of steps, in order, on a copy of ``df``
and returns ``(new_df, report)``. Each spec is a dict (JSON/YAML friendly), validated with
pydantic (unknown keys are rejected); ``InputError`` names the spec index and the key::

    [
      {"column": "ssn",   "action": "drop"},
      {"column": "name",  "action": "drop"},
      {"column": "email", "action": "pseudonymize", "domain": "email", "length": 16},
      {"column": "patient_id", "action": "pseudonymize", "domain": "patient"},
      {"column": "age",   "action": "generalize", "method": "age_band", "width": 10, "top": 90},
      {"column": "zip",   "action": "generalize", "method": "zip_prefix", "digits": 3},
      {"column": "date_of_birth", "action": "generalize", "method": "date_truncate", "to": "year"},
      {"column": "bmi",   "action": "generalize", "method": "round", "ndigits": 0},
      {"column": "diagnosis_code", "action": "suppress_rare", "k": 10, "other": "other"},
      {"column": "sex",   "action": "keep"}
    ]

Actions
  ``drop``           remove the column.
  ``pseudonymize``   keyed HMAC-SHA256 of the value, hex prefix of ``length`` (8-64, default 16)
                     chars. The key is ``key_for_domain(domain)`` (``domain`` defaults to the column
                     name) and the domain is also bound into the message, so the same value gets
                     the same pseudonym in every dataset version and every column that shares a
                     domain (joins keep working), and different pseudonyms under another key or
                     domain. ``normalize``: ``"strip"`` (default), ``"strip_lower"`` (emails) or
                     ``"none"`` is applied before hashing. Nulls stay null.
  ``redact``         free text: PII spans replaced by ``[TYPE]`` (``mode: tag``) or keyed
                     ``[TYPE:hmac]`` (``mode: pseudonym``); ``types`` limits which span types.
  ``generalize``     ``method``: ``age_band`` (``width``, optional ``top`` -> "90+"; values outside
                     0-130 become null), ``zip_prefix`` (``digits``, default 3, padded with ``*``;
                     ``hipaa_restricted: true`` maps the 17 low-population HIPAA ZIP3s to "000"),
                     ``date_truncate`` (``to``: ``year`` -> "1985", ``month`` -> "1985-03"),
                     ``round`` (``ndigits``, or ``base`` to round to a multiple, e.g. 5).
  ``suppress_rare``  categories seen fewer than ``k`` times become ``other`` (default "other").
  ``keep``           leave as is (documents an explicit decision).

The report has one dict per step with counts only -- never data values::

    {"step": 2, "column": "email", "action": "pseudonymize", "domain": "email", "rows": 1000,
     "nulls": 20, "changed": 980, "distinct_before": 812, "distinct_after": 812}
"""
from __future__ import annotations

import hashlib
from typing import Annotated, Any, Callable, Iterable, Literal, Union

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from privacy.errors import InputError

__all__ = [
    "DropSpec", "KeepSpec", "PseudonymizeSpec", "AgeBandSpec", "ZipPrefixSpec", "DateTruncateSpec",
    "RoundSpec", "SuppressRareSpec", "StepProblem", "parse_step", "parse_specs", "apply_deid", "pseudonymize", "generalize",
    "suppress_rare", "transformed_columns", "HIPAA_RESTRICTED_ZIP3",
]

# 3-digit ZIP prefixes with population <= 20,000 (2000 Census) that HIPAA Safe Harbor maps to 000.
HIPAA_RESTRICTED_ZIP3 = frozenset({"036", "059", "063", "102", "203", "556", "692", "790", "821",
                                   "823", "830", "831", "878", "879", "884", "890", "893"})


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    column: Annotated[str, Field(min_length=1, description="The column the step acts on.")]


class DropSpec(_Spec):
    """Remove the column."""

    action: Literal["drop"] = Field(description="`drop`.")


class KeepSpec(_Spec):
    """Leave the column as it is (records an explicit decision)."""

    action: Literal["keep"] = Field(description="`keep`.")


class PseudonymizeSpec(_Spec):
    """Keyed HMAC-SHA256 of each value, hex prefix; equal values get equal pseudonyms within a domain."""

    action: Literal["pseudonymize"] = Field(description="`pseudonymize`.")
    domain: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="Key domain; columns sharing one stay joinable. Default: the column name.")
    length: Annotated[int, Field(ge=8, le=64, description="Hex characters kept of the HMAC.")] = 16
    normalize: Literal["none", "strip", "strip_lower"] = Field(
        default="strip", description="Applied before hashing (`strip_lower` for emails).")


class _Generalize(_Spec):
    action: Literal["generalize"] = Field(description="`generalize`, with a `method`.")


class AgeBandSpec(_Generalize):
    """Ages to bands of `width` years (`20-29`); values outside 0-130 become null."""

    method: Literal["age_band"] = Field(description="`age_band`.")
    width: Annotated[int, Field(ge=1, le=130, description="Band width in years.")] = 10
    top: Annotated[int, Field(ge=1, le=130)] | None = Field(
        default=None, description="Ages from `top` up become one band `TOP+`.")


class ZipPrefixSpec(_Generalize):
    """ZIP codes to their first digits."""

    method: Literal["zip_prefix"] = Field(description="`zip_prefix`.")
    digits: Annotated[int, Field(ge=0, le=5, description="Digits kept.")] = 3
    pad: bool = Field(default=True, description="Pad the dropped digits with `*`.")
    hipaa_restricted: bool = Field(default=False, description="Map the 17 low-population HIPAA ZIP3s to `000`.")


class DateTruncateSpec(_Generalize):
    """Dates to their year (`1985`) or month (`1985-03`)."""

    method: Literal["date_truncate"] = Field(description="`date_truncate`.")
    to: Literal["year", "month"] = Field(default="year", description="Precision kept.")


class RoundSpec(_Generalize):
    """Numbers rounded to `ndigits` decimals or to a multiple of `base`."""

    method: Literal["round"] = Field(description="`round`.")
    ndigits: Annotated[int, Field(ge=-9, le=9, description="Decimals kept (negative: tens, hundreds).")] = 0
    base: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="Round to a multiple of this instead (not with `ndigits`).")

    @model_validator(mode="after")
    def _one_of(self) -> "RoundSpec":
        if self.base is not None and self.ndigits != 0:
            raise ValueError("give either ndigits or base, not both")
        return self


class SuppressRareSpec(_Spec):
    """Categories seen fewer than `k` times become `other` (counts values: not a per-row step)."""

    action: Literal["suppress_rare"] = Field(description="`suppress_rare`.")
    k: Annotated[int, Field(ge=2, description="Minimum count a category keeps its value with.")] = 10
    other: Annotated[str, Field(max_length=100, description="Replacement value.")] = "other"


class RedactSpec(_Spec):
    """PII spans inside free text become `[TYPE]` tags or keyed `[TYPE:hmac]` pseudonyms (see privacy.deid.redact)."""

    action: Literal["redact"] = Field(description="`redact`.")
    mode: Literal["tag", "pseudonym"] = Field(
        default="tag", description="`tag`: `[PHONE]`; `pseudonym`: `[PHONE:3f9a1c0e]`, HMAC under the domain's key.")
    types: list[Annotated[str, Field(min_length=1, max_length=40)]] | None = Field(
        default=None, description="Span types to redact (default: all), e.g. `[person_name, phone, email]`.")
    domain: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="Key domain for `pseudonym` mode. Default: the column name.")
    length: Annotated[int, Field(ge=8, le=64, description="Hex characters of each span pseudonym.")] = 8

    @model_validator(mode="after")
    def _known_types(self) -> "RedactSpec":
        if self.types is not None:
            from privacy.deid.detect.spans import SPAN_TYPES

            bad = [t for t in self.types if t not in SPAN_TYPES]
            if bad:
                raise ValueError(f"unknown span type {bad[0]!r}; expected some of {', '.join(SPAN_TYPES)}")
        return self


Spec = Union[DropSpec, KeepSpec, PseudonymizeSpec, AgeBandSpec, ZipPrefixSpec, DateTruncateSpec,
             RoundSpec, SuppressRareSpec, RedactSpec]
_ACTIONS: dict[str, type[Spec]] = {
    "drop": DropSpec, "keep": KeepSpec, "pseudonymize": PseudonymizeSpec,
    "suppress_rare": SuppressRareSpec, "redact": RedactSpec,
}
_METHODS: dict[str, type[Spec]] = {
    "age_band": AgeBandSpec, "zip_prefix": ZipPrefixSpec, "date_truncate": DateTruncateSpec,
    "round": RoundSpec,
}


class StepProblem(ValueError):
    """Why one de-identification step is invalid: the offending key (or None) and what was expected."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(f"key {key!r}: {message}" if key else message)
        self.key = key
        self.message = message


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_step(raw: Any) -> Spec:
    """Validate one step mapping into its typed spec; raises :class:`StepProblem`."""
    if isinstance(raw, (DropSpec, KeepSpec, PseudonymizeSpec, AgeBandSpec, ZipPrefixSpec, DateTruncateSpec,
                        RoundSpec, SuppressRareSpec)):
        return raw  # already parsed
    if not isinstance(raw, dict):
        raise StepProblem(None, f"expected a mapping with keys column/action, got {type(raw).__name__}")
    action = raw.get("action")
    if action is None:
        raise StepProblem(None, f"missing key 'action' (expected one of {', '.join([*_ACTIONS, 'generalize'])})")
    if action == "generalize":
        method = raw.get("method")
        if not isinstance(method, str) or method not in _METHODS:
            raise StepProblem("method", f"expected one of {', '.join(_METHODS)}"
                              + ("" if method is None else f", got {_shown(method)}"))
        model = _METHODS[method]
    elif isinstance(action, str) and action in _ACTIONS:
        model = _ACTIONS[action]
    else:
        raise StepProblem("action", f"expected one of {', '.join([*_ACTIONS, 'generalize'])}, got {_shown(action)}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err.get("loc", ())) or "spec"
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = f"unknown key for action {action!r}"
        raise StepProblem(key, msg) from None


def _parse_one(i: int, raw: Any) -> Spec:
    try:
        return parse_step(raw)
    except StepProblem as exc:
        raise InputError(f"deid spec #{i}: {exc}") from None


def parse_specs(specs: Iterable[Any]) -> list[Spec]:
    """Validate a list of spec dicts (InputError names the spec index and the key)."""
    if isinstance(specs, (str, bytes, dict)) or not isinstance(specs, Iterable):
        raise InputError("deid specs: expected a list of spec mappings")
    return [_parse_one(i, raw) for i, raw in enumerate(specs)]


# ---- primitive transforms -----------------------------------------------------------------------
def _canon_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    if isinstance(v, pd.Timestamp):
        return str(v.isoformat())
    return str(v)


def pseudonymize(series: pd.Series, key: bytes, *, domain: str = "", length: int = 16,
                 normalize: str = "strip") -> pd.Series:
    """Keyed HMAC-SHA256 pseudonyms (hex prefix of ``length`` chars); nulls stay null.

    Computed once per distinct value (``pd.factorize``), so cost scales with the number of
    distinct values, not rows."""
    if not isinstance(key, (bytes, bytearray)) or len(key) < 16:
        raise InputError(f"pseudonymize: key for domain {domain!r} must be at least 16 bytes")
    if not 8 <= int(length) <= 64:
        raise InputError(f"pseudonymize: length must be 8-64 hex characters, got {length!r}")
    s = series if isinstance(series, pd.Series) else pd.Series(series)
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    if pd.api.types.is_string_dtype(getattr(uniques, "dtype", object)) and not isinstance(uniques, np.ndarray):
        texts = pd.Series(uniques, dtype="str")
    elif isinstance(getattr(uniques, "dtype", None), np.dtype) and uniques.dtype.kind in "iu":
        texts = pd.Series(np.asarray(uniques).astype(str), dtype="str")  # str(int(v)), vectorised
    else:
        texts = pd.Series([_canon_text(u) for u in uniques], dtype="str")
    if normalize == "strip":
        texts = texts.str.strip()
    elif normalize == "strip_lower":
        texts = texts.str.strip().str.lower()
    mac = hmac_sha256(bytes(key), prefix=domain.encode("utf-8") + b"\x00")
    cut = int(length) // 2
    if int(length) % 2 == 0:
        out_u = [mac(t.encode("utf-8", "surrogatepass"))[:cut].hex() for t in texts.tolist()]
    else:
        out_u = [mac(t.encode("utf-8", "surrogatepass")).hex()[:length] for t in texts.tolist()]
    vocab = np.array(out_u + [None], dtype=object)
    res = vocab[np.where(codes < 0, len(out_u), codes)]
    return pd.Series(res, index=s.index, name=s.name, dtype="str")


def hmac_sha256(key: bytes, prefix: bytes = b"") -> Callable[[bytes], bytes]:
    """HMAC-SHA256 of ``prefix + message`` under ``key`` (RFC 2104, equal to
    ``hmac.digest(key, prefix + message, "sha256")``), for many short messages.

    Why: ``hmac.digest`` sets up OpenSSL's HMAC context (the key schedule) on every call; a
    pseudonymized column of millions of distinct values spends most of its time there. The inner
    and outer SHA-256 states after the padded key block are computed once and copied per message,
    which is about twice as fast and gives the same bytes (tests compare against ``hmac.digest``)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    block = key.ljust(64, b"\x00")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    inner.update(prefix)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def mac(message: bytes) -> bytes:
        i = inner.copy()
        i.update(message)
        o = outer.copy()
        o.update(i.digest())
        return o.digest()

    return mac


def _age_band(s: pd.Series, width: int, top: int | None) -> pd.Series:
    x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    valid = np.isfinite(x) & (x >= 0) & (x <= 130)
    lo = np.where(valid, np.floor(np.where(valid, x, 0) / width) * width, 0).astype(np.int64)
    if width == 1:
        labels = pd.Series(lo).astype("str")
    else:
        labels = pd.Series(lo).astype("str") + "-" + pd.Series(lo + width - 1).astype("str")
    labels = labels.to_numpy(dtype=object)
    if top is not None:
        labels = np.where(valid & (x >= top), f"{top}+", labels)
    labels = np.where(valid, labels, None)
    return pd.Series(labels, index=s.index, name=s.name, dtype="str")


def _zip_prefix(s: pd.Series, digits: int, pad: bool, hipaa: bool) -> pd.Series:
    if pd.api.types.is_numeric_dtype(s.dtype):
        t = pd.to_numeric(s, errors="coerce").astype("Int64").astype("str").str.zfill(5)
    else:
        t = s.astype("str").str.strip()
    ok = t.str.fullmatch(r"\d{5}(?:-?\d{4})?").fillna(False).astype(bool)
    z5 = t.str.slice(0, 5).where(ok)
    pre = z5.str.slice(0, digits)
    if hipaa:
        pre = pre.where(~z5.str.slice(0, 3).isin(HIPAA_RESTRICTED_ZIP3), "000"[:digits] if digits else "")
    if pad:
        pre = pre + "*" * (5 - digits)
    return pd.Series(pre.to_numpy(dtype=object), index=s.index, name=s.name, dtype="str")


def _to_datetime(s: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s
    t = s.astype("str").str.strip()
    d = pd.to_datetime(t, errors="coerce", format="ISO8601")
    rest = d.isna() & t.notna()
    if rest.any():
        d2 = pd.to_datetime(t[rest], errors="coerce", format="mixed")
        d = d.astype("datetime64[ns]")
        d[rest] = d2.astype("datetime64[ns]")
    return d


def _date_truncate(s: pd.Series, to: str) -> pd.Series:
    d = _to_datetime(s)
    fmt = "%Y" if to == "year" else "%Y-%m"
    return pd.Series(d.dt.strftime(fmt).to_numpy(dtype=object), index=s.index, name=s.name, dtype="str")


def _round(s: pd.Series, ndigits: int, base: float | None) -> pd.Series:
    x = pd.to_numeric(s, errors="coerce")
    if base is not None:
        y = (x / base).round() * base
    else:
        y = x.round(ndigits)
    if (base is not None and float(base).is_integer()) or (base is None and ndigits <= 0):
        if pd.api.types.is_integer_dtype(s.dtype):
            return y.astype(s.dtype)
    return y


def generalize(series: pd.Series, how: str, **params: Any) -> pd.Series:
    """``how`` in age_band / zip_prefix / date_truncate / round, with that method's params."""
    spec = _parse_one(0, {"column": str(series.name or "value"), "action": "generalize",
                          "method": how, **params})
    return _generalize(series, spec)


def _generalize(s: pd.Series, spec: Spec) -> pd.Series:
    if isinstance(spec, AgeBandSpec):
        return _age_band(s, spec.width, spec.top)
    if isinstance(spec, ZipPrefixSpec):
        return _zip_prefix(s, spec.digits, spec.pad, spec.hipaa_restricted)
    if isinstance(spec, DateTruncateSpec):
        return _date_truncate(s, spec.to)
    if isinstance(spec, RoundSpec):
        return _round(s, spec.ndigits, spec.base)
    raise InputError(f"generalize: unsupported method for {spec!r}")  # pragma: no cover


def suppress_rare(series: pd.Series, k: int = 10, other: str = "other") -> tuple[pd.Series, int]:
    """Replace categories seen fewer than ``k`` times by ``other``; returns (series, n_categories_suppressed)."""
    counts = series.value_counts(dropna=True)
    rare = counts.index[counts.to_numpy() < k]
    if len(rare) == 0:
        return series.copy(), 0
    mask = series.isin(rare)
    out = series.astype(object).where(~mask, other)
    if pd.api.types.is_string_dtype(series.dtype) or series.dtype == object:
        out = out.astype("str") if all(isinstance(v, str) for v in counts.index) else out
    return out, int(len(rare))


# ---- driver -------------------------------------------------------------------------------------
def _n_changed(before: pd.Series, after: pd.Series) -> int:
    bn, an = before.isna().to_numpy(), after.isna().to_numpy()
    if before.dtype == after.dtype:
        diff = (before.to_numpy() != after.to_numpy()) if before.dtype != object else \
            (before.astype(object).to_numpy() != after.astype(object).to_numpy())
        diff = np.asarray(diff, dtype=bool)
        return int(((bn != an) | (~bn & ~an & diff)).sum())
    # the type changed (e.g. ints -> pseudonym strings): every non-null value changed
    return int((~(bn & an)).sum())


def apply_deid(df: pd.DataFrame, specs: list[dict[str, Any]], key_for_domain: Callable[[str], bytes],
               *, distinct_counts: bool = True) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Run the spec steps in order on a copy of ``df``; return (new frame, per-step report).

    ``distinct_counts=False`` leaves out `distinct_before`/`distinct_after`: a streamed run
    de-identifies batch by batch, where distinct counts do not add up (and cost a hash table each)."""
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"apply_deid: expected a pandas DataFrame, got {type(df).__name__}")
    parsed = parse_specs(specs)
    out = df.copy(deep=False)  # copy-on-write (pandas 3): `df` is never changed, columns copied only when replaced
    report: list[dict[str, Any]] = []
    for i, spec in enumerate(parsed):
        col = spec.column
        if col not in out.columns:
            dropped = any(r["column"] == col and r["action"] == "drop" for r in report)
            raise InputError(f"deid spec #{i}: column {col!r} is not in the data"
                             + (" (dropped by an earlier step)" if dropped else ""))
        before = out[col]
        entry: dict[str, Any] = {"step": i, "column": col, "action": spec.action, "rows": int(len(out))}
        if isinstance(spec, DropSpec):
            out = out.drop(columns=[col])
            entry["nulls_before"] = int(before.isna().sum())
            report.append(entry)
            continue
        if isinstance(spec, KeepSpec):
            entry.update(nulls=int(before.isna().sum()), changed=0)
            report.append(entry)
            continue
        if isinstance(spec, PseudonymizeSpec):
            domain = spec.domain or col
            try:
                key = key_for_domain(domain)
            except Exception as exc:  # the callback's own error types are not ours to leak
                if isinstance(exc, InputError):
                    raise
                raise InputError(f"deid spec #{i}: no pseudonym key for domain {domain!r} "
                                 f"({type(exc).__name__})") from None
            if not isinstance(key, (bytes, bytearray)) or len(key) < 16:
                raise InputError(f"deid spec #{i}: key for domain {domain!r} must be at least 16 bytes")
            after = pseudonymize(before, key, domain=domain, length=spec.length, normalize=spec.normalize)
            entry.update(domain=domain, length=spec.length)
        elif isinstance(spec, RedactSpec):
            from privacy.deid.redact import redact

            key = None
            domain = spec.domain or col
            if spec.mode == "pseudonym":
                try:
                    key = key_for_domain(domain)
                except Exception as exc:
                    if isinstance(exc, InputError):
                        raise
                    raise InputError(f"deid spec #{i}: no pseudonym key for domain {domain!r} "
                                     f"({type(exc).__name__})") from None
            after, n_spans = redact(before, mode=spec.mode, types=spec.types, key=key, domain=domain,
                                    length=spec.length)
            entry.update(mode=spec.mode, spans_replaced=n_spans)
        elif isinstance(spec, SuppressRareSpec):
            after, n_sup = suppress_rare(before, spec.k, spec.other)
            entry.update(k=spec.k, categories_suppressed=n_sup,
                         rows_suppressed=int(_n_changed(before, after)))
        else:
            after = _generalize(before, spec)
            entry["method"] = spec.method
            entry.update({k: v for k, v in spec.model_dump().items()
                          if k not in ("column", "action", "method") and v is not None})
            entry["became_null"] = int((after.isna() & before.notna()).sum())
        entry.update(nulls=int(after.isna().sum()), changed=_n_changed(before, after))
        if distinct_counts:
            entry.update(distinct_before=int(before.nunique(dropna=True)),
                         distinct_after=int(after.nunique(dropna=True)))
        out[col] = after
        report.append(entry)
    return out, report


def transformed_columns(report: Iterable[dict[str, Any]]) -> set[str]:
    """Columns no longer in clear after ``apply_deid``: pseudonymized or generalized (and not
    overwritten later by a ``keep``-only history). Dropped columns are simply absent."""
    done: set[str] = set()
    for r in report:
        if r.get("action") in ("pseudonymize", "generalize", "redact"):
            done.add(r["column"])
    return done
