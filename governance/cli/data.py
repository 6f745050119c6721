"""`privgov quality ...`, `privgov pii ...` and `privgov sample ...`: data checks outside a run."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from governance.cli.common import (
    TokenOpt, WorkspaceOpt, _token, _console, _open, app, pii_app, quality_app, sample_app,
)


# --------------------------------------------------------------------------- sample data
@sample_app.command("clinic")
def sample_clinic(
    rows: int = typer.Option(10000, "--rows", min=1),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(..., "--out", help="CSV or Parquet file to write."),
) -> None:
    """Generate realistic, deliberately dirty clinic-visit records (synthetic people)."""
    from governance.demo.sample_data import write_clinic

    write_clinic(out, rows, seed)
    _console().print(f"wrote {rows:,} synthetic clinic visits to {out}")


# --------------------------------------------------------------------------- shared CSV options
# One reader for every command that takes a file (and the pipeline's `source.csv`): see
# governance/data/csv_options.py. Flags are declared once here and reused by each command.
DelimiterOpt = typer.Option(None, "--delimiter", "--sep", help="Field delimiter: one character, or tab/semicolon/pipe.")
NoHeaderOpt = typer.Option(False, "--no-header", help="The file has no header row; name the columns with --names.")
NamesOpt = typer.Option(None, "--names", help="Column names, comma-separated (a,b,c); with --no-header, or to rename the header.")
EncodingOpt = typer.Option(None, "--encoding", help="Text encoding (default utf-8), e.g. latin-1, cp1252.")
NaValuesOpt = typer.Option(None, "--na-values", help="Extra markers of a missing value, comma-separated (e.g. '?,-').")
DtypeOpt = typer.Option(None, "--dtype", help="COLUMN=TYPE (str, int, float, bool, date); repeatable. "
                        "Identifier-like columns (leading zeros, fixed width, + prefix) stay text by default.")
JsonOpt = typer.Option(False, "--json", help="Print the full result as JSON.")


def _csv(data: str, delimiter: Optional[str], no_header: bool, names: Optional[str], encoding: Optional[str],
         na_values: Optional[str], dtype: Optional[list[str]]):
    """The validated CSV options of a command, or None when none was given (Parquet, dataset:)."""
    from governance.data.csv_options import from_cli
    from privacy.errors import InputError

    given = any(v not in (None, False, []) for v in (delimiter, no_header, names, encoding, na_values, dtype))
    if not given:
        return None
    if data.startswith("dataset:"):
        raise InputError(f"{data}: CSV options (--delimiter, --names, --dtype ...) apply to files, not stored datasets")
    return from_cli(delimiter=delimiter, no_header=no_header, names=names, encoding=encoding, na_values=na_values,
                    dtype=dtype, source=data)


def _read_file(data: str, opts) -> "object":
    from governance.data.ingest import read_table

    return read_table(Path(data), csv_options=opts)


# --------------------------------------------------------------------------- quality
def _load_data_arg(data: str, workspace: Optional[Path], token: Optional[str], action: str, purpose: str,
                   csv_opts=None):
    """`DATA` is a file path, or `dataset:NAME[@VERSION]` for a stored (encrypted) version."""
    if data.startswith("dataset:"):
        from governance.access.export import read_authorized
        from privacy.errors import InputError

        name, _, ver = data[len("dataset:"):].partition("@")
        if ver and not ver.isdigit():
            raise InputError(f"{data}: expected dataset:NAME or dataset:NAME@VERSION with a version number")
        return read_authorized(_open(workspace), _token(token), action, name, int(ver) if ver else None, purpose)
    return _read_file(data, csv_opts), "row_id"


@quality_app.command("validate")
def quality_validate(
    data: str = typer.Argument(..., help="CSV/Parquet file, or dataset:NAME[@VERSION]."),
    suite: Path = typer.Option(..., "--suite", help="GX 1.x suite JSON."),
    fmt: str = typer.Option("text", "--format", help="text | json"),
    json_out: bool = JsonOpt,
    engine: str = typer.Option("fast", "--engine", help="fast | gx"),
    row_id: Optional[str] = typer.Option(None, "--row-id", help="Row-id column (assigned if absent)."),
    purpose: str = typer.Option("pipeline", "--purpose"),
    delimiter: Optional[str] = DelimiterOpt, no_header: bool = NoHeaderOpt, names: Optional[str] = NamesOpt,
    encoding: Optional[str] = EncodingOpt, na_values: Optional[str] = NaValuesOpt,
    dtype: Optional[list[str]] = DtypeOpt,
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
) -> None:
    """Validate and exit 0 (pass), 1 (fail) or 2 (bad input); results carry row ids, never values."""
    from governance.data.quality import load_suite, validate
    from privacy.errors import InputError

    if fmt not in ("text", "json"):
        raise InputError(f"--format: expected text or json, got {fmt!r}")
    opts = _csv(data, delimiter, no_header, names, encoding, na_values, dtype)
    df, rid = _load_data_arg(data, workspace, token, "validate", purpose, opts)
    if row_id:
        from governance.data.ingest import ensure_row_ids

        df = ensure_row_ids(df, row_id, source=data)
        rid = row_id
    st = load_suite(suite, columns=list(df.columns))
    result = validate(df, st, row_id_column=rid, engine=engine)
    if fmt == "json" or json_out:
        print(result.to_json(indent=2))
    else:
        out = _console()
        out.print(f"suite `{result.suite}` on {data}: {'[green]PASSED[/]' if result.success else '[red]FAILED[/]'} "
                  f"({len(result.results) - len(result.failed)}/{len(result.results)} expectations, {result.row_count:,} rows)")
        for r in result.results:
            mark = "[green]✓[/]" if r.success else "[red]✗[/]"
            out.print(f"  {mark} {r.type}({r.column or ''}): {r.unexpected_count:,} unexpected"
                      + (f"; first row ids {list(r.failing_row_ids[:5])}" if r.failing_row_ids else ""))
    raise typer.Exit(0 if result.success else 1)


@quality_app.command("suggest")
def quality_suggest(
    data: str = typer.Argument(..., help="CSV/Parquet file, or dataset:NAME[@VERSION]."),
    out: Path = typer.Option(..., "--out", help="Suite JSON to write."),
    name: Optional[str] = typer.Option(None, "--name"),
    json_out: bool = JsonOpt,
    purpose: str = typer.Option("pipeline", "--purpose"),
    delimiter: Optional[str] = DelimiterOpt, no_header: bool = NoHeaderOpt, names: Optional[str] = NamesOpt,
    encoding: Optional[str] = EncodingOpt, na_values: Optional[str] = NaValuesOpt,
    dtype: Optional[list[str]] = DtypeOpt,
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
) -> None:
    """Profile data and write a starting GX 1.x suite to edit (`--json` also prints it)."""
    from governance.storage.atomic_write import write_text
    from governance.data.quality import suggest_suite

    opts = _csv(data, delimiter, no_header, names, encoding, na_values, dtype)
    df, rid = _load_data_arg(data, workspace, token, "validate", purpose, opts)
    suite = suggest_suite(df, row_id_column=rid, name=name or Path(data).stem)
    write_text(out, json.dumps(suite, indent=2) + "\n")
    if json_out:
        print(json.dumps(suite, indent=2))
        return
    _console().print(f"wrote {len(suite['expectations'])} expectations to {out}")


# --------------------------------------------------------------------------- pii
def pii_scan(
    data: Path = typer.Argument(..., help="CSV/Parquet file."),
    fmt: str = typer.Option("text", "--format", help="text | json"),
    json_out: bool = JsonOpt,
    delimiter: Optional[str] = DelimiterOpt, no_header: bool = NoHeaderOpt, names: Optional[str] = NamesOpt,
    encoding: Optional[str] = EncodingOpt, na_values: Optional[str] = NaValuesOpt,
    dtype: Optional[list[str]] = DtypeOpt,
) -> None:
    """Detect PII per column (type, kind, confidence, evidence); values are never printed."""
    from governance.data.pii_report import scan_records
    from privacy.errors import InputError

    if fmt not in ("text", "json"):
        raise InputError(f"--format: expected text or json, got {fmt!r}")
    opts = _csv(str(data), delimiter, no_header, names, encoding, na_values, dtype)
    df = _read_file(str(data), opts)
    findings = scan_records(df)
    if fmt == "json" or json_out:
        print(json.dumps(findings, indent=2))
        return
    _print_findings(findings, f"{data}: {df.shape[1] - 1} columns, {len(df):,} rows scanned")


def _print_findings(findings: list[dict], title: str) -> None:
    """A table that wraps to the terminal: short columns never wrap, the evidence folds."""
    from rich.table import Table

    con = _console()
    if not findings:
        con.print(f"{title}: no PII found")
        return
    if con.width < 60:  # too narrow for a table: one wrapped line per finding
        con.print(title)
        for f in findings:
            con.print(f"- {f['column']}: {f['pii_type']} ({f['kind']}, confidence {f['confidence']:.2f})"
                      + (f"; {f['evidence']}" if f["evidence"] else ""), markup=False)
        return
    narrow = con.width < 72  # drop the share column rather than fold every header
    table = Table(title=title, title_justify="left", expand=False, show_lines=False)
    table.add_column("column", overflow="fold", min_width=6, ratio=2)
    table.add_column("pii type", overflow="fold", min_width=8, ratio=2)
    table.add_column("kind", no_wrap=True, min_width=5)
    table.add_column("conf.", justify="right", no_wrap=True, min_width=5)
    if not narrow:
        table.add_column("share", justify="right", no_wrap=True)
    table.add_column("evidence", overflow="fold", min_width=8, ratio=5)
    for f in findings:
        kind = f"[bold]{f['kind']}[/]" if f["is_direct_identifier"] else f["kind"]
        cells = [f["column"], f["pii_type"], kind, f"{f['confidence']:.2f}"]
        cells += [] if narrow else [f"{f['share']:.0%}"]
        table.add_row(*cells, f["evidence"] or "-")
    con.print(table)


# `privgov pii scan`, and the same command as the top-level shortcut `privgov scan`
pii_app.command("scan")(pii_scan)
app.command("scan", help="Detect PII per column (shortcut for `privgov pii scan`); values are never printed.")(pii_scan)


@pii_app.command("suggest")
def pii_suggest(
    data: Path = typer.Argument(..., help="CSV/Parquet file."),
    out: Optional[Path] = typer.Option(None, "--out", help="De-identification spec (YAML) to write."),
    threshold: float = typer.Option(0.8, "--threshold", min=0.0, max=1.0,
                                    help="Confidence from which a direct identifier gets a transform."),
    json_out: bool = JsonOpt,
    delimiter: Optional[str] = DelimiterOpt, no_header: bool = NoHeaderOpt, names: Optional[str] = NamesOpt,
    encoding: Optional[str] = EncodingOpt, na_values: Optional[str] = NaValuesOpt,
    dtype: Optional[list[str]] = DtypeOpt,
) -> None:
    """Suggest de-identification steps from a scan: pseudonymize direct identifiers, generalize quasi ones.

    The steps go in a pipeline's `deid.steps` or a `pii apply --spec` file; review them first."""
    import yaml

    from governance.data.pii_report import scan_records, suggest_steps
    from governance.storage.atomic_write import write_text

    opts = _csv(str(data), delimiter, no_header, names, encoding, na_values, dtype)
    findings = scan_records(_read_file(str(data), opts))
    steps = suggest_steps(findings, threshold)
    if out is not None:
        write_text(out, "# suggested by `privgov pii suggest`: review before use\n"
                   + yaml.safe_dump({"steps": steps}, sort_keys=False))
    if json_out:
        print(json.dumps({"findings": findings, "steps": steps}, indent=2))
        return
    con = _console()
    _print_findings(findings, f"{data}: PII found")
    con.print(yaml.safe_dump({"steps": steps}, sort_keys=False).rstrip() if steps else "no steps to suggest")
    if out is not None:
        con.print(f"wrote {len(steps)} step(s) to {out}")


@pii_app.command("apply")
def pii_apply(
    data: Path = typer.Argument(..., help="CSV/Parquet file."),
    spec: Path = typer.Option(..., "--spec", help="YAML list of de-identification steps."),
    out: Path = typer.Option(..., "--out", help="File to write (CSV/Parquet)."),
    dataset: str = typer.Option(..., "--dataset", help="Dataset the pseudonyms are for (`ingest` is checked on it)."),
    purpose: str = typer.Option("pipeline", "--purpose"),
    delimiter: Optional[str] = DelimiterOpt, no_header: bool = NoHeaderOpt, names: Optional[str] = NamesOpt,
    encoding: Optional[str] = EncodingOpt, na_values: Optional[str] = NaValuesOpt,
    dtype: Optional[list[str]] = DtypeOpt,
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
) -> None:
    """Apply drop / pseudonymize / generalize / suppress steps with the workspace's HMAC keys.

    The keys are the ones stored versions are pseudonymized with, so computing pseudonyms is
    an `ingest` decision on the dataset they are for (authenticated, audited)."""
    from governance.access.authorize import authorize
    from governance.data.ingest import read_table
    from governance.storage.atomic_write import write_frame
    from policies.schema import load_yaml_file
    from privacy.deid import apply_deid
    from privacy.deid.spec import deid_steps_from_yaml

    steps = deid_steps_from_yaml(load_yaml_file(spec, "de-identification spec"))
    opts = _csv(str(data), delimiter, no_header, names, encoding, na_values, dtype)
    ws = _open(workspace)
    authorize(ws, _token(token), "ingest", dataset, purpose, details={"for": "pii_apply"})
    frame = read_table(data, csv_options=opts)
    df, report = apply_deid(frame, steps, key_for_domain=ws.keyring.pseudonym_keys(dataset))
    write_frame(df, out)
    for r in report:
        _console().print(f"  {r}")
