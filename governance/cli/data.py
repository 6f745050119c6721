"""`privgov quality ...`, `privgov pii ...` and `privgov sample ...`: data checks outside a run."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from governance.cli.common import (
    ExitCode, FormatOpt, JsonOpt, TokenOpt, WorkspaceOpt, _token, _console, _open, emit, pii_app, quality_app,
    sample_app, want_json,
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


# --------------------------------------------------------------------------- quality
def _load_data_arg(data: str, workspace: Optional[Path], token: Optional[str], action: str, purpose: str):
    """`DATA` is a file path, or `dataset:NAME[@VERSION]` for a stored (encrypted) version."""
    if data.startswith("dataset:"):
        from governance.access.export import read_authorized
        from privacy.errors import InputError

        name, _, ver = data[len("dataset:"):].partition("@")
        if ver and not ver.isdigit():
            raise InputError(f"{data}: expected dataset:NAME or dataset:NAME@VERSION with a version number")
        return read_authorized(_open(workspace), _token(token), action, name, int(ver) if ver else None, purpose)
    from governance.data.ingest import read_table

    return read_table(Path(data)), "row_id"


@quality_app.command("validate")
def quality_validate(
    data: str = typer.Argument(..., help="CSV/Parquet file, or dataset:NAME[@VERSION]."),
    suite: Path = typer.Option(..., "--suite", help="GX 1.x suite JSON."),
    as_json: bool = JsonOpt,
    fmt: Optional[str] = FormatOpt,
    engine: str = typer.Option("fast", "--engine", help="fast | gx"),
    row_id: Optional[str] = typer.Option(None, "--row-id", help="Row-id column (assigned if absent)."),
    gx_out: Optional[Path] = typer.Option(None, "--gx-out", help="Also write a GX ExpectationSuiteValidationResult JSON."),
    purpose: str = typer.Option("pipeline", "--purpose"),
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
) -> None:
    """Validate and exit 0 (pass), 1 (fail) or 2 (bad input, or an expectation could not run);
    results carry row ids, never values."""
    from governance.data.quality import load_suite, validate
    from privacy.errors import InputError

    as_json = want_json(as_json, fmt)
    df, rid = _load_data_arg(data, workspace, token, "validate", purpose)
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
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Profile data and write a starting GX 1.x suite to edit."""
    from governance.storage.atomic_write import write_text
    from governance.data.quality import suggest_suite

    df, rid = _load_data_arg(data, workspace, token, "validate", purpose)
    suite = suggest_suite(df, row_id_column=rid, name=name or Path(data).stem)
    write_text(out, json.dumps(suite, indent=2) + "\n")
    emit({"out": out, "expectations": len(suite["expectations"])}, as_json,
         lambda: _console().print(f"wrote {len(suite['expectations'])} expectations to {out}"))


# --------------------------------------------------------------------------- pii
@pii_app.command("scan")
def pii_scan(
    data: Path = typer.Argument(..., help="CSV/Parquet file."),
    as_json: bool = JsonOpt,
    fmt: Optional[str] = FormatOpt,
) -> None:
    """Detect PII per column (type, share of matching values, confidence); values are never printed."""
    from dataclasses import asdict, is_dataclass

    from rich.table import Table

    from governance.data.ingest import read_table
    from privacy.deid import scan

    as_json = want_json(as_json, fmt)
    findings = scan(read_table(data))
    if as_json:
        emit([asdict(f) if is_dataclass(f) else dict(f) for f in findings], True)
        return
    table = Table("column", "pii type", "share", "confidence", "direct identifier")
    for f in findings:
        table.add_row(f.column, f.pii_type, f"{f.share:.1%}", f"{f.confidence:.2f}", "yes" if f.is_direct_identifier else "")
    _console().print(table)


@pii_app.command("apply")
def pii_apply(
    data: Path = typer.Argument(..., help="CSV/Parquet file."),
    spec: Path = typer.Option(..., "--spec", help="YAML list of de-identification steps."),
    out: Path = typer.Option(..., "--out", help="File to write (CSV/Parquet)."),
    dataset: str = typer.Option(..., "--dataset", help="Dataset the pseudonyms are for (`ingest` is checked on it)."),
    purpose: str = typer.Option("pipeline", "--purpose"),
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
    ws = _open(workspace)
    authorize(ws, _token(token), "ingest", dataset, purpose, details={"for": "pii_apply"})
    df, report = apply_deid(read_table(data), steps, key_for_domain=ws.keyring.pseudonym_keys(dataset))
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
