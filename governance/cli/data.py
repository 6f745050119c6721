"""`privgov quality ...`, `privgov pii ...` and `privgov sample ...`: data checks outside a run."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer

from governance.cli.common import (
    ExitCode, FormatOpt, JsonOpt, TokenOpt, WorkspaceOpt, _token, _console, _open, app, emit, pii_app,
    quality_app, sample_app, want_json,
)


# --------------------------------------------------------------------------- sample data
@sample_app.command("clinic")
def sample_clinic(
    rows: int = typer.Option(10000, "--rows", min=1),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(..., "--out", help="CSV or Parquet file to write."),
    as_json: bool = JsonOpt,
) -> None:
    """Generate realistic, deliberately dirty clinic-visit records (synthetic people)."""
    from governance.demo.sample_data import write_clinic

    write_clinic(out, rows, seed)
    emit({"out": out, "rows": rows, "seed": seed}, as_json,
         lambda: _console().print(f"wrote {rows:,} synthetic clinic visits to {out}"))


# --------------------------------------------------------------------------- shared CSV options
# One reader for every command that takes a file (and the pipeline's `source.csv`): see
# governance/data/csv_options.py. Flags are declared once here and reused by each command.
DelimiterOpt = typer.Option(None, "--delimiter", "--sep", help="Field delimiter: one character, or tab/semicolon/pipe.")
NoHeaderOpt = typer.Option(False, "--no-header", help="The file has no header row; name the columns with --names.")
NamesOpt = typer.Option(None, "--names", help="Column names, comma-separated (a,b,c); with --no-header, or to rename the header.")
EncodingOpt = typer.Option(None, "--encoding", help="Text encoding (default utf-8), e.g. latin-1, cp1252.")
NaValuesOpt = typer.Option(None, "--na-values", help="Extra markers of a missing value, comma-separated (e.g. '?,-').")
BatchRowsOpt = typer.Option(None, "--batch-rows", metavar="N|auto",
                            help="Read the file in record batches of N rows (auto: from available memory; 0: in "
                                 "memory). Default: in memory, unless the file is over 1/10 of available memory.")
DtypeOpt = typer.Option(None, "--dtype", help="COLUMN=TYPE (str, int, float, bool, date); repeatable. "
                        "Identifier-like columns (leading zeros, fixed width, + prefix) stay text by default.")


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


def _batches(data: str, batch_rows: Optional[str], opts, row_id: str = "row_id"):
    """A streaming source for a file when --batch-rows asks for one (or the file is very large), else None."""
    from governance.data.streaming import default_batch_rows, open_batches, parse_batch_rows, should_stream
    from privacy.errors import InputError

    if data.startswith("dataset:"):
        if batch_rows is not None:
            raise InputError(f"{data}: --batch-rows applies to files; a stored version is decrypted in memory")
        return None
    rows = parse_batch_rows(batch_rows)
    if not should_stream(data, rows, explicit=batch_rows is not None):
        return None
    return open_batches(Path(data), rows or default_batch_rows(), row_id_column=row_id, csv_options=opts)


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
    as_json: bool = JsonOpt,
    fmt: Optional[str] = FormatOpt,
    engine: str = typer.Option("fast", "--engine", help="fast | gx | spark (GX's Spark engine; "
                               "pip install 'privgov[spark]')"),
    spark_master: Optional[str] = typer.Option(None, "--spark-master", help="With --engine spark: the cluster "
                                               "(spark.master); default $PRIVGOV_SPARK_MASTER, else local[2]."),
    row_id: Optional[str] = typer.Option(None, "--row-id", help="Row-id column (assigned if absent)."),
    gx_out: Optional[Path] = typer.Option(None, "--gx-out", help="Also write a GX ExpectationSuiteValidationResult JSON."),
    purpose: str = typer.Option("pipeline", "--purpose"),
    delimiter: Optional[str] = DelimiterOpt, no_header: bool = NoHeaderOpt, names: Optional[str] = NamesOpt,
    encoding: Optional[str] = EncodingOpt, na_values: Optional[str] = NaValuesOpt,
    dtype: Optional[list[str]] = DtypeOpt,
    batch_rows: Optional[str] = BatchRowsOpt,
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
) -> None:
    """Validate and exit 0 (pass), 1 (fail) or 2 (bad input, or an expectation could not run);
    results carry row ids, never values."""
    from governance.data.quality import load_suite, validate
    from privacy.errors import InputError

    as_json = want_json(as_json, fmt)
    if engine == "spark":
        from governance.data.spark.session import MASTER_ENV, require_pyspark

        require_pyspark()  # before reading anything: one line with the install command, exit 2
        if spark_master:
            os.environ[MASTER_ENV] = spark_master
    opts = _csv(data, delimiter, no_header, names, encoding, na_values, dtype)
    source = _batches(data, batch_rows, opts, row_id or "row_id")
    if source is not None:
        from governance.data.quality.batches import validate_batches

        if engine != "fast":
            raise InputError(f"--engine {engine}: only the fast engine validates in batches; expected --engine fast "
                             "or --batch-rows 0")
        st = load_suite(suite, columns=source.columns)
        result = validate_batches(source, st, columns=source.columns, row_id_column=source.row_id_column,
                                  source=data)
    else:
        df, rid = _load_data_arg(data, workspace, token, "validate", purpose, opts)
        if row_id:
            from governance.data.ingest import ensure_row_ids

            df = ensure_row_ids(df, row_id, source=data)
            rid = row_id
        st = load_suite(suite, columns=list(df.columns))
        result = validate(df, st, row_id_column=rid, engine=engine)
    if as_json:
        emit(json.loads(result.to_json()), True)
    else:
        out = _console()
        out.print(f"suite `{result.suite}` on {data}: {'[green]PASSED[/]' if result.success else '[red]FAILED[/]'} "
                  f"({len(result.results) - len(result.failed)}/{len(result.results)} expectations, {result.row_count:,} rows)")
        for r in result.results:
            if r.status == "error":
                out.print(f"  [red]![/] {r.type}({r.column or ''}): could not run ({r.error})")
                continue
            mark = "[green]✓[/]" if r.success else "[red]✗[/]"
            out.print(f"  {mark} {r.type}({r.column or ''}): {r.unexpected_count:,} unexpected"
                      + (f"; first row ids {list(r.failing_row_ids[:5])}" if r.failing_row_ids else ""))
    if gx_out is not None:
        from governance.data.quality.gx_export import write_gx_json

        write_gx_json(gx_out, result, st, data_asset_name=Path(data).stem if not data.startswith("dataset:") else data)
    if result.errors:
        raise InputError(f"{suite}: " + "; ".join(f"expectations[{r.index}] ({r.type}) could not run ({r.error})"
                                                  for r in result.errors[:3]) + "; expected every expectation to run")
    raise typer.Exit(ExitCode.OK if result.success else ExitCode.VALIDATION_FAILED)


@quality_app.command("suggest")
def quality_suggest(
    data: str = typer.Argument(..., help="CSV/Parquet file, or dataset:NAME[@VERSION]."),
    out: Path = typer.Option(..., "--out", help="Suite JSON to write."),
    name: Optional[str] = typer.Option(None, "--name"),
    purpose: str = typer.Option("pipeline", "--purpose"),
    delimiter: Optional[str] = DelimiterOpt, no_header: bool = NoHeaderOpt, names: Optional[str] = NamesOpt,
    encoding: Optional[str] = EncodingOpt, na_values: Optional[str] = NaValuesOpt,
    dtype: Optional[list[str]] = DtypeOpt,
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Profile data and write a starting GX 1.x suite to edit (`--json` also prints it)."""
    from governance.storage.atomic_write import write_text
    from governance.data.quality import suggest_suite

    opts = _csv(data, delimiter, no_header, names, encoding, na_values, dtype)
    df, rid = _load_data_arg(data, workspace, token, "validate", purpose, opts)
    suite = suggest_suite(df, row_id_column=rid, name=name or Path(data).stem)
    write_text(out, json.dumps(suite, indent=2) + "\n")
    emit({"out": out, "expectations": len(suite["expectations"]), "suite": suite}, as_json,
         lambda: _console().print(f"wrote {len(suite['expectations'])} expectations to {out}"))


# --------------------------------------------------------------------------- pii
def pii_scan(
    data: Path = typer.Argument(..., help="CSV/Parquet file."),
    as_json: bool = JsonOpt,
    fmt: Optional[str] = FormatOpt,
    delimiter: Optional[str] = DelimiterOpt, no_header: bool = NoHeaderOpt, names: Optional[str] = NamesOpt,
    encoding: Optional[str] = EncodingOpt, na_values: Optional[str] = NaValuesOpt,
    dtype: Optional[list[str]] = DtypeOpt,
    batch_rows: Optional[str] = BatchRowsOpt,
) -> None:
    """Detect PII per column (type, kind, confidence, evidence); values are never printed."""
    from governance.data.pii_report import scan_records

    as_json = want_json(as_json, fmt)
    opts = _csv(str(data), delimiter, no_header, names, encoding, na_values, dtype)
    source = _batches(str(data), batch_rows, opts)
    if source is not None:
        from governance.data.pii_stream import scan_batches

        findings = scan_batches(source)
        shape = (source.count(), len(source.columns))
    else:
        df = _read_file(str(data), opts)
        findings = scan_records(df)
        shape = df.shape
    if as_json:
        emit(findings, True)
        return
    _print_findings(findings, f"{data}: {shape[1] - 1} columns, {shape[0]:,} rows scanned")


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
    as_json: bool = JsonOpt,
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
    if as_json:
        emit({"findings": findings, "steps": steps, "out": out}, True)
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
    as_json: bool = JsonOpt,
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

    def human() -> None:
        for r in report:
            _console().print(f"  {r}")

    emit({"out": out, "rows": len(df), "columns": list(df.columns), "steps": report}, as_json, human)


def _pii_results() -> Path:
    import os

    env = os.environ.get("PRIVGOV_BENCH_RESULTS")
    base = Path(env) if env else Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    return base / "pii.json"


@pii_app.command("detectors")
def pii_detectors(
    as_json: bool = JsonOpt,
    fmt: Optional[str] = FormatOpt,
) -> None:
    """List the PII detectors with the precision/recall measured by benchmarks/pii.py."""
    from rich.table import Table

    from privacy.deid.detect.catalog import detector_table

    as_json = want_json(as_json, fmt)
    cat = detector_table(_pii_results())

    def human() -> None:
        table = Table()
        for name in ("detector", "kind", "what it finds", "precision", "recall", "columns"):
            table.add_column(name, overflow="fold")

        def fig(v: object) -> str:
            return "not measured" if not isinstance(v, (int, float)) else f"{v:.3f}"

        for d in cat["detectors"]:
            table.add_row(d["name"], d["kind"], d["description"], fig(d["precision"]), fig(d["recall"]),
                          "" if d["support"] is None else str(d["support"]))
        _console().print(table)
        src = cat["source"]
        _console().print(f"measured by benchmarks/pii.py ({src}, code {cat['code_version']})" if src else
                         "not measured: run `python benchmarks/pii.py` to write benchmarks/results/pii.json")

    emit(cat, as_json, human)
