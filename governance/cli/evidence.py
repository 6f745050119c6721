"""`privgov audit ...` and `privgov budget ...`: the evidence an auditor reads."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from governance.cli.common import (
    FormatOpt, JsonOpt, WorkspaceOpt, _console, _open, audit_app, budget_app, emit, jsonable, want_json,
)


# --------------------------------------------------------------------------- audit
@audit_app.command("verify")
def audit_verify(
    workspace: Optional[Path] = WorkspaceOpt,
    file: Optional[Path] = typer.Option(None, "--file", help="Verify an exported JSONL extract instead."),
    trusted_key: Optional[str] = typer.Option(None, "--trusted-key", help="The Ed25519 public key you trust: "
                                              "64 hex characters, or a file holding hex or PEM."),
    witness: Optional[Path] = typer.Option(None, "--witness", help="Your copy of the audit witness file."),
    as_json: bool = JsonOpt,
) -> None:
    """Check the hash chain and signatures (public key only) and compare with a witness; exit 0 only if intact."""
    from governance.evidence.verify import parse_trusted_key, verify_file, verify_workspace
    from privacy.errors import IntegrityFailure

    key = parse_trusted_key(trusted_key) if trusted_key else None
    rep = verify_file(file, key, witness) if file is not None else verify_workspace(_open(workspace), key, witness)
    out = _console(stderr=as_json)
    emit(rep, as_json)  # the full report, also when it fails (then exit 4 below)
    for note in rep.notes:
        out.print(f"note: {note}", markup=False)
    if rep.ok:
        out.print(f"audit log OK: {rep.events} events, {rep.checkpoints} signed checkpoints")
        return
    for problem in rep.problems:
        out.print(f"[red]✗[/] {problem}")
    more = f" (and {len(rep.problems) - 1} more)" if len(rep.problems) > 1 else ""
    raise IntegrityFailure(f"audit log verification failed: {rep.problems[0]}{more}")


@audit_app.command("export")
def audit_export(
    out: Path = typer.Option(..., "--out", help="JSONL file to write (public key + events + checkpoints)."),
    since: Optional[str] = typer.Option(None, "--since", help="ISO date; events before it are summarised by an anchor hash."),
    fmt: Optional[str] = FormatOpt,
    workspace: Optional[Path] = WorkspaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Write a verifiable extract (JSONL); check it elsewhere with `privgov audit verify --file`."""
    import datetime as dt

    from privacy.errors import InputError

    want_json(False, fmt, formats=("jsonl",))  # the extract is always JSONL; --format is deprecated
    try:
        start = dt.datetime.fromisoformat(since) if since else None
    except ValueError:
        raise InputError(f"--since: expected an ISO date like 2026-11-01, got {since!r}") from None
    ws = _open(workspace)
    with ws.session() as s:
        n = ws.audit.export(s, start, out)
    emit({"out": out, "events": n, "since": start}, as_json,
         lambda: _console().print(f"exported {n} events to {out}"))


@audit_app.command("log")
def audit_log(
    workspace: Optional[Path] = WorkspaceOpt,
    dataset: Optional[str] = typer.Option(None, "--dataset"),
    limit: int = typer.Option(50, help="Show the last N events."),
    as_json: bool = JsonOpt,
) -> None:
    """The latest audit events (who, what, which version, purpose, decision, ε)."""
    from rich.table import Table

    from governance.evidence.audit import AuditEvent

    ws = _open(workspace)
    table = Table("seq", "time", "principal", "action", "resource", "ver", "purpose", "decision", "ε", "reason")
    events = []
    with ws.session() as s:
        q = s.query(AuditEvent)
        if dataset:
            q = q.filter(AuditEvent.resource == dataset)
        rows = q.order_by(AuditEvent.seq.desc()).limit(limit).all()
        for e in reversed(rows):
            events.append({"seq": e.seq, "ts": e.ts, "principal": e.principal, "action": e.action,
                           "resource": e.resource, "version": e.version, "purpose": e.purpose,
                           "decision": e.decision, "epsilon": e.epsilon, "reason": e.reason,
                           "details": e.details})  # counts, ids and hashes only (docs/audit.md)
            table.add_row(str(e.seq), e.ts.strftime("%H:%M:%S") if hasattr(e.ts, "strftime") else str(e.ts),
                          e.principal, e.action, e.resource or "", str(e.version or ""), e.purpose or "",
                          e.decision, f"{e.epsilon:.3f}" if e.epsilon is not None else "", (e.reason or "")[:60])
    emit(events, as_json, lambda: _console().print(table))


# --------------------------------------------------------------------------- budget
@budget_app.command("show")
def budget_show(name: str, workspace: Optional[Path] = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """Cap, spent, reserved and remaining ε for a dataset's lineage, with per-run history."""
    from governance.storage import catalog

    ws = _open(workspace)
    with ws.session() as s:
        ds = catalog.find_dataset(s, name)
        lineage, unit = ds.lineage_id, ds.privacy_unit or "row"
    st = ws.ledger.status(lineage, unit)
    emit({"dataset": name, **jsonable(st)}, as_json, lambda: _print_budget(name, unit, st))


def _print_budget(name: str, unit: str, st) -> None:
    from rich.table import Table

    out = _console()
    out.print(f"[bold]{name}[/] (privacy unit: {unit})")
    out.print(f"  cap ε={st.epsilon_cap:g}, δ={st.delta_cap:g} (the guarantee across every run on this dataset)")
    out.print(f"  Rényi filter at order α={st.order:g}, fixed when the cap was set: RDP budget {st.rdp_budget:.4f}, "
              f"spent {st.rdp_spent:.4f}, reserved {st.rdp_reserved:.4f}, left {st.rdp_remaining:.4f}")
    if st.basic_share:
        out.print(f"  basic-composition share {st.basic_share:.0%}: spent ε={st.basic_epsilon_spent:.4f} "
                  f"δ={st.basic_delta_spent:.2g}; reserved ε={st.basic_epsilon_reserved:.4f}")
    out.print(f"  admitted so far, as ε at α: spent {st.spent:.4f}; with reservations {st.composed_epsilon:.4f}; "
              f"remaining {st.remaining:.4f}")
    if st.needs_decision:
        out.print(f"  [red]runs are refused:[/] {st.needs_decision}", markup=True)
    if st.note:
        out.print(f"  note: {st.note}", markup=False)
    table = Table("run", "state", "run's own ε (target)", "run's own ε (spent)", "δ", f"RDP charged at α={st.order:g}",
                  "reserved at", "committed at")
    for r in st.runs:
        table.add_row(r.run_uid, r.state, f"{r.target_epsilon:.4f}", f"{r.epsilon:.4f}", f"{r.delta:g}",
                      f"{r.rdp_charge:.4f}" if r.rdp_charge is not None else "basic composition",
                      str(r.reserved_at)[:19], str(r.committed_at or "")[:19])
    out.print(table)
