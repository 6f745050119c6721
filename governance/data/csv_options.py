"""The CSV options every reader of privgov shares: CLI flags and the pipeline `source.csv` block.

Why one model: `pii scan`, `pii suggest`, `quality validate`, `quality suggest` and the
governed run must read a file the same way, or a column that scans as a ZIP code
(`"02134"`) is stored as the number 2134. The options are checked here, before any
data is read, and each problem is one line naming the option and what was expected.
This module imports pydantic only (no pandas): the CLI builds the model at parse time.
"""
from __future__ import annotations

import codecs
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from governance.errors import InputError

# What `dtype` may name per column; `str` keeps the text exactly as written (ZIP 02134).
DtypeName = Literal["str", "int", "float", "bool", "date"]
DTYPE_NAMES: tuple[str, ...] = ("str", "int", "float", "bool", "date")
_DELIMITER_WORDS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}


class CsvOptions(BaseModel):
    """How to read a delimited text file. Every field has the default a plain CSV needs.

    `names` without `header` reads a headerless file (the UCI Adult layout the pipeline
    already used); `header: true` with `names` renames the header's columns instead.
    """

    model_config = ConfigDict(extra="forbid")

    names: list[str] | None = Field(default=None, description="Column names: for a file without a header row, "
                                    "or (with `header: true`) to rename the header's columns.")
    header: bool | None = Field(default=None, examples=[False], description="Whether the first line is a header; "
                                "default true unless `names` is given.")
    skip_rows: int = Field(default=0, ge=0, examples=[1], description="Lines skipped at the start of the file.")
    sep: str | None = Field(default=None, examples=[";"], description="Field separator (one character, or tab/"
                            "semicolon/pipe/space); default `,` (a tab for `.tsv`/`.tab`).")
    delimiter: str | None = Field(default=None, examples=["tab"], description="Same as `sep`.")
    encoding: str = Field(default="utf-8", examples=["latin-1"], description="Text encoding of the file.")
    na_values: list[str] | None = Field(default=None, description="Extra strings read as missing values.")
    dtype: dict[str, DtypeName] = Field(default_factory=dict, examples=[{"zip": "str"}], description="Per-column "
                                        "type (str, int, float, bool, date); identifier-like columns stay text "
                                        "by default.")
    skipinitialspace: bool = Field(default=False, description="Skip spaces after the separator.")
    comment: str | None = Field(default=None, description="Lines starting with this character are skipped "
                                "(`|` skips adult.test's `|1x3 Cross validator` line).")
    quotechar: str = Field(default='"', examples=["'"], description="Quote character.")

    @field_validator("sep", "delimiter")
    @classmethod
    def _one_char(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = _DELIMITER_WORDS.get(v.lower(), v) if len(v) > 1 else v
        if len(v) != 1 or v in ('"', "\n", "\r"):
            raise ValueError("expected one character (or tab, comma, semicolon, pipe, space)")
        return v

    @field_validator("comment", "quotechar")
    @classmethod
    def _single(cls, v: str | None) -> str | None:
        if v is not None and len(v) != 1:
            raise ValueError("expected one character")
        return v

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        try:
            return codecs.lookup(v).name
        except LookupError:
            raise ValueError(f"unknown encoding {v[:40]!r}; expected e.g. utf-8, latin-1, cp1252") from None

    @field_validator("names")
    @classmethod
    def _names(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        v = [n.strip() for n in v]
        if not v or any(not n for n in v):
            raise ValueError("expected non-empty column names separated by commas")
        dup = sorted({n for n in v if v.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate column name(s) {', '.join(dup[:5])}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "CsvOptions":
        if self.sep and self.delimiter and self.sep != self.delimiter:
            raise ValueError("give `delimiter` (or its older name `sep`), not both")
        return self

    @property
    def separator(self) -> str:
        return self.delimiter or self.sep or ","

    @property
    def has_header(self) -> bool:
        return self.header if self.header is not None else self.names is None


def csv_options(raw: "CsvOptions | dict[str, Any] | None", source: str) -> CsvOptions:
    """Validate options given as a model or a mapping; InputError `SOURCE: option X: ...`."""
    if isinstance(raw, CsvOptions):
        return raw
    try:
        return CsvOptions.model_validate(dict(raw or {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err.get("loc", ())) or "csv"
        if err.get("type") == "extra_forbidden":
            known = ", ".join(sorted(CsvOptions.model_fields))
            raise InputError(f"{source}: unknown csv option `{key}`; expected some of {known}") from None
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        raise InputError(f"{source}: csv option `{key}`: {msg}") from None


def parse_dtype_args(items: list[str] | None, source: str = "command line") -> dict[str, str]:
    """`["zip=str", "age=int"]` (repeated `--dtype`, or comma-separated) -> {"zip": "str", "age": "int"}."""
    out: dict[str, str] = {}
    for item in items or []:
        for part in str(item).split(","):
            col, eq, kind = part.partition("=")
            col, kind = col.strip(), kind.strip().lower()
            if not eq or not col or kind not in DTYPE_NAMES:
                raise InputError(f"{source}: option --dtype {part.strip()[:60]!r}: expected COLUMN=TYPE with TYPE one of "
                                 f"{', '.join(DTYPE_NAMES)} (e.g. --dtype zip=str)")
            out[col] = kind
    return out


def from_cli(*, delimiter: str | None, no_header: bool, names: str | None, encoding: str | None,
             na_values: str | None, dtype: list[str] | None, source: str = "command line",
             skip_rows: int = 0) -> CsvOptions:
    """The model from the shared CLI flags (`--names a,b,c`, `--na-values '?,NA'`, `--dtype zip=str`)."""
    raw: dict[str, Any] = {"header": not no_header, "skip_rows": skip_rows}
    if delimiter is not None:
        raw["delimiter"] = delimiter
    if names is not None:
        raw["names"] = names.split(",")
    if encoding is not None:
        raw["encoding"] = encoding
    if na_values is not None:
        raw["na_values"] = [v for v in na_values.split(",")]
    if dtype:
        raw["dtype"] = parse_dtype_args(dtype, source)
    opts = csv_options(raw, source)
    if no_header and opts.names is None:
        raise InputError(f"{source}: --no-header: expected --names a,b,c naming every column of the file")
    return opts
