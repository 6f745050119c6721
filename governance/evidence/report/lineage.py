"""The lineage graph an auditor reads: raw file -> versions -> runs -> models -> predictions.

Why drawn: an erasure request asks "what did this person's data reach?"; a table of
edges answers it only for whoever reconstructs the graph. The layout is five fixed
columns (one per kind) laid out here; the template draws it as inline SVG, so the
report stays one offline file and every label goes through the template's escaping.
Erased versions, and the models trained on them, are marked.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from governance.evidence.audit import AuditEvent
from governance.evidence.report.gather_data import versions_in
from governance.evidence.report.gather_runs import runs_in
from governance.evidence.report.scope import Scope
from governance.storage.store import LineageEdge

COLUMNS = ("raw file", "versions", "runs", "models", "predictions")
NODE_W, NODE_H, COL_GAP, ROW_GAP, TOP = 190, 44, 60, 14, 34


@dataclass
class Node:
    key: str
    column: int
    label: str
    detail: str
    erased: bool = False
    x: int = 0
    y: int = 0


@dataclass(frozen=True)
class Edge:
    x1: int
    y1: int
    x2: int
    y2: int
    path: str  # SVG path data (numbers only)
    relation: str
    erased: bool


@dataclass
class LineageGraph:
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    width: int = 0
    height: int = 0
    columns: list[tuple[int, str]] = field(default_factory=list)  # (x of the column's centre, title)


def lineage_graph(session: Session, scope: Scope) -> LineageGraph:
    nodes: dict[str, Node] = {}
    links: list[tuple[str, str, str]] = []
    versions = versions_in(session, scope)
    for ds, v in versions:
        key = f"v{v.id}"
        nodes[key] = Node(key, 1, f"{ds.name} v{v.version}", f"{v.kind}, {v.row_count:,} rows"
                          + (f", erased {v.erased_at:%Y-%m-%d}" if v.erased_at else ""), erased=v.erased_at is not None)
        if v.parent_id is None:
            raw = f"raw:{ds.name}"
            pipeline = str((v.meta_json or {}).get("pipeline") or "ingest")
            nodes.setdefault(raw, Node(raw, 0, f"{ds.name} source", f"read by pipeline {pipeline}"))
            links.append((raw, key, "ingested"))
    for e in session.query(LineageEdge).filter(LineageEdge.parent_kind == "version", LineageEdge.child_kind == "version"):
        links.append((f"v{e.parent_id}", f"v{e.child_id}", e.relation))
    runs = runs_in(session, scope)
    trained = {(e.parent_id, e.child_id) for e in session.query(LineageEdge).filter(LineageEdge.child_kind == "run")}
    by_uid = {}
    for r in runs:
        key = f"r{r.id}"
        eps = f", ε={r.epsilon:.3g}" if r.epsilon is not None else ""
        nodes[key] = Node(key, 2, f"run {r.run_uid[:12]}", f"{r.status}{eps}", erased=bool(r.affected_by_erasure))
        sources = {p for p, c in trained if c == r.id} | ({r.version_id} if r.version_id else set())
        links.extend((f"v{p}", key, "trained") for p in sources)
        if r.model_blob_hash:
            model = f"m{r.id}"
            kind = str(((r.model_card_json or {}).get("model") or {}).get("name", "model"))
            nodes[model] = Node(model, 3, f"model {r.run_uid[:12]}", kind + (", source erased" if r.affected_by_erasure
                                                                          else ""), erased=bool(r.affected_by_erasure))
            links.append((key, model, "model"))
            by_uid[r.run_uid] = model
    calls: dict[str, list[int]] = {}
    for ev in session.query(AuditEvent).filter(AuditEvent.action == "predict").order_by(AuditEvent.seq):
        uid = str((ev.details or {}).get("run_uid", ""))
        if uid in by_uid and scope.is_after(ev.ts):
            calls.setdefault(uid, []).append(int((ev.details or {}).get("rows") or 0))
    for uid, rows in calls.items():
        key = f"p:{uid}"
        nodes[key] = Node(key, 4, f"predictions {uid[:12]}", f"{len(rows)} call(s), {sum(rows):,} rows")
        links.append((by_uid[uid], key, "predicted"))
    return _layout(list(nodes.values()), links)


def _layout(nodes: list[Node], links: list[tuple[str, str, str]]) -> LineageGraph:
    graph = LineageGraph(nodes=nodes)
    per_col = [0] * len(COLUMNS)
    for n in nodes:
        n.x = 10 + n.column * (NODE_W + COL_GAP)
        n.y = TOP + per_col[n.column] * (NODE_H + ROW_GAP)
        per_col[n.column] += 1
    at = {n.key: n for n in nodes}
    seen = set()
    for a, b, rel in links:
        if a in at and b in at and (a, b) not in seen:
            seen.add((a, b))
            s, t = at[a], at[b]
            if s.column == t.column:  # e.g. a version and its quarantine: drawn down the column's left side
                x1, y1, x2, y2 = s.x + 12, s.y + NODE_H, t.x + 12, t.y
                d = f"M{x1},{y1} C{x1 - 20},{y1 + 10} {x2 - 20},{y2 - 10} {x2},{y2}"
            else:
                x1, y1, x2, y2 = s.x + NODE_W, s.y + NODE_H // 2, t.x, t.y + NODE_H // 2
                d = f"M{x1},{y1} C{x1 + 30},{y1} {x2 - 30},{y2} {x2},{y2}"
            graph.edges.append(Edge(x1, y1, x2, y2, d, rel, s.erased or t.erased))
    graph.width = 20 + len(COLUMNS) * NODE_W + (len(COLUMNS) - 1) * COL_GAP
    graph.height = TOP + max(1, max(per_col)) * (NODE_H + ROW_GAP) + 6
    graph.columns = [(10 + i * (NODE_W + COL_GAP) + NODE_W // 2, title) for i, title in enumerate(COLUMNS)]
    return graph
