"""Privacy-budget ledger: one (epsilon, delta) cap per dataset lineage and privacy unit.

Why a ledger and not a counter:

* **Concurrency.** A run *reserves* its budget inside one database transaction
  that holds the write lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL:
  ``SELECT ... FOR UPDATE`` on the budget row), so concurrent runs serialise on
  the check-and-insert and can never overspend together. Nothing slow runs
  while the lock is held (no imports, validation before, messages after), and
  a write that finds the lock taken re-runs its whole transaction a bounded
  number of times (`RetryPolicy`) before a one-line `WorkspaceError`.
* **Fail closed.** A reservation stays counted until the run commits what it
  actually spent. A crashed or killed run keeps its reservation; ``release`` is
  only for runs that never touched the data.
* **Valid composition under adaptive choice.** Later runs are chosen after
  seeing earlier results, so the budget check must be a *privacy filter*. Rényi
  DP curves add up under fully adaptive composition and stopping at a fixed RDP
  budget is a valid filter (Feldman & Zrnic, "Individual Privacy Accounting via
  a Rényi Filter", NeurIPS 2021). The ledger therefore stores each run's RDP
  curve (the target's at reserve time, replaced by the actual at commit), sums
  the curves across runs and converts once to epsilon at the ledger's delta.
  Entries without a curve fall back to basic composition (sum of epsilons, sum
  of deltas; valid as a filter too, Rogers et al. 2016), and their delta is
  taken out of the delta left for the RDP conversion. PRV/PLD epsilons of
  single runs are *never* added up as the gate; their plain sum is only
  reported (``naive_sum_epsilon``) for comparison.

Consequence worth knowing: the gate uses RDP, which is ~8-13% looser than the
PRV epsilon a run reports for itself, so a run calibrated (PRV) to exactly the
cap is refused; size caps or targets with that headroom in mind.

`privacy/` may not import `governance`, so this module keeps its own SQLAlchemy
metadata; the workspace creates the tables on its engine via `create_tables()`.
"""
from __future__ import annotations

import bisect
import datetime as dt
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from privacy.accounting import rdp_to_epsilon  # light (pure math): no torch under the write lock
from privacy.errors import BudgetExceeded, InputError, WorkspaceError

T = TypeVar("T")

metadata = MetaData()

budgets = Table(
    "budgets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("lineage_id", String(64), nullable=False),
    Column("unit", String(200), nullable=False),
    Column("epsilon_cap", Float, nullable=False),
    Column("delta_cap", Float, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("lineage_id", "unit", name="uq_budgets_lineage_unit"),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("budget_id", Integer, ForeignKey("budgets.id"), nullable=False, index=True),
    Column("run_uid", String(128), nullable=False, unique=True),
    Column("state", String(16), nullable=False),  # reserved | committed | released
    Column("epsilon", Float, nullable=False),  # per-run (PRV) epsilon: target, then actual
    Column("target_epsilon", Float, nullable=False),
    Column("delta", Float, nullable=False),
    Column("orders", Text, nullable=True),  # JSON list; NULL => basic composition
    Column("rdp", Text, nullable=True),  # JSON list, same length as orders
    Column("reserved_at", DateTime, nullable=False),
    Column("committed_at", DateTime, nullable=True),
    Column("released_at", DateTime, nullable=True),
)

RESERVED, COMMITTED, RELEASED = "reserved", "committed", "released"
_ACTIVE = (RESERVED, COMMITTED)
# Float slack so that a run filling the cap exactly is not refused by rounding.
_TOL = 1e-9


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class RunRow:
    """One ledger entry as shown by `status` (no data, only accounting)."""

    run_uid: str
    state: str
    epsilon: float
    target_epsilon: float
    delta: float
    has_curve: bool
    reserved_at: dt.datetime
    committed_at: dt.datetime | None
    released_at: dt.datetime | None


@dataclass(frozen=True)
class BudgetStatus:
    """Where one budget stands.

    `composed_epsilon` is the filter total over reserved + committed runs (RDP
    composition, basic fallback); `spent` is the same over committed runs only;
    `reserved` is the difference (composition is not additive, so this is the
    marginal cost of the open reservations); `remaining = cap - composed`.
    `naive_sum_epsilon` adds the runs' own epsilons, for comparison only.
    """

    lineage_id: str
    unit: str
    epsilon_cap: float
    delta_cap: float
    spent: float
    reserved: float
    remaining: float
    composed_epsilon: float
    naive_sum_epsilon: float
    runs: list[RunRow] = field(default_factory=list)

    @property
    def cap(self) -> tuple[float, float]:
        return (self.epsilon_cap, self.delta_cap)


@dataclass(frozen=True)
class _Entry:
    epsilon: float
    delta: float
    orders: list[float] | None
    rdp: list[float] | None


@dataclass(frozen=True)
class _Refusal:
    """What `reserve` read under the lock, to word the refusal after releasing it."""

    epsilon_cap: float
    delta_cap: float
    current: list[_Entry]
    after: float


def _validate_curve(
    orders: Sequence[float] | None, rdp: Sequence[float] | None
) -> tuple[list[float] | None, list[float] | None]:
    if orders is None and rdp is None:
        return None, None
    if orders is None or rdp is None:
        raise InputError("orders/rdp: give both (an RDP curve) or neither (basic composition)")
    o = [float(a) for a in orders]
    r = [float(x) for x in rdp]
    if not o or len(o) != len(r):
        raise InputError(f"rdp: expected one value per order ({len(o)} orders), got {len(r)}")
    if any(not math.isfinite(a) or a <= 1.0 for a in o):
        raise InputError("orders: expected finite Renyi orders > 1")
    if any(math.isnan(x) or x < 0 for x in r):
        raise InputError("rdp: expected non-negative RDP values (inf allowed)")
    pairs = sorted(zip(o, r))
    return [a for a, _ in pairs], [x for _, x in pairs]


def _check_eps_delta(epsilon: float, delta: float) -> tuple[float, float]:
    try:
        e, d = float(epsilon), float(delta)
    except (TypeError, ValueError):
        raise InputError(f"epsilon/delta: expected numbers, got {epsilon!r}, {delta!r}") from None
    if not math.isfinite(e) or e < 0:
        raise InputError(f"epsilon: expected a finite number >= 0, got {epsilon!r}")
    if not (0.0 <= d < 1.0):
        raise InputError(f"delta: expected 0 <= delta < 1, got {delta!r}")
    return e, d


def _sum_curves(entries: Sequence[_Entry]) -> tuple[list[float], list[float]]:
    """Sum RDP curves that may use different order grids.

    RDP is non-decreasing in the order (van Erven & Harremoës 2014), so an
    entry's value at its next larger order upper-bounds its value at any order
    in between; orders beyond an entry's largest one are dropped.
    """
    top = min(e.orders[-1] for e in entries)  # type: ignore[index]
    grid = sorted({a for e in entries for a in e.orders if a <= top})  # type: ignore[union-attr]
    total = [0.0] * len(grid)
    for e in entries:
        assert e.orders is not None and e.rdp is not None
        for i, a in enumerate(grid):
            total[i] += e.rdp[bisect.bisect_left(e.orders, a)]
    return grid, total


def compose(entries: Sequence[_Entry], delta_cap: float) -> tuple[float, float]:
    """(filter epsilon, delta used) of the entries under the ledger's delta.

    Curve entries: RDP sum converted at delta_cap minus the basic entries'
    deltas. Basic entries: their epsilons and deltas add. Returns inf when the
    basic entries alone use up delta.
    """
    curves = [e for e in entries if e.orders is not None]
    basic = [e for e in entries if e.orders is None]
    eps_b = sum(e.epsilon for e in basic)
    delta_b = sum(e.delta for e in basic)
    if not curves:
        return eps_b, delta_b
    delta_rdp = delta_cap - delta_b
    if delta_rdp <= 0:
        return math.inf, delta_b
    grid, total = _sum_curves(curves)
    return rdp_to_epsilon(grid, total, delta_rdp) + eps_b, delta_cap


@dataclass(frozen=True)
class RetryPolicy:
    """How a ledger write retries while another process holds the write lock.

    Why on top of SQLite's own busy timeout: the busy handler is skipped in
    some cases (e.g. WAL deadlock avoidance) and a lock can outlast it, and a
    run that has already planned its training should not fail on one unlucky
    moment. Bounded so that a stuck lock holder gives a clean error, not a hang:
    at most `attempts` tries, and no new try once `max_total_s` of backoff would
    be exceeded (each try itself may also wait up to the engine's busy timeout).
    """

    attempts: int = 8
    base_delay_s: float = 0.05
    max_delay_s: float = 2.0
    max_total_s: float = 30.0

    def delay(self, attempt: int) -> float:
        """Jittered exponential backoff after failed try number `attempt` (1-based).

        Jittered (uniform in [d/2, d]) so that writers released together do
        not retry in lockstep.
        """
        d = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return random.uniform(d / 2, d)


# The sleep used between tries; a module attribute so tests can observe retries.
_sleep = time.sleep


def _is_lock_error(exc: OperationalError) -> bool:
    """True for "database is locked/busy" (SQLite) - the only errors worth retrying."""
    msg = str(exc.orig).lower()
    return "locked" in msg or "busy" in msg


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class BudgetLedger:
    """Reserve / commit / release privacy budget against per-lineage caps."""

    def __init__(self, engine: Engine, retry: RetryPolicy | None = None) -> None:
        self.engine = engine
        self.retry = retry or RetryPolicy()

    # -- schema ---------------------------------------------------------------
    def create_tables(self) -> None:
        metadata.create_all(self.engine)

    # -- transactions ---------------------------------------------------------
    def _write_txn(self, body: Callable[[Connection], T]) -> T:
        """Run `body(conn)` in one transaction holding the database write lock.

        SQLite: ``BEGIN IMMEDIATE`` takes the RESERVED lock before anything is
        read, so two reservers cannot both read the old total. PostgreSQL and
        others: ordinary transaction; `_lock_budget` adds ``FOR UPDATE``.

        Keep `body` short: everything it does happens under the lock. Validate,
        import and precompute before calling. On "database is locked/busy" the
        whole transaction is rolled back and `body` runs again from scratch
        (bounded by `self.retry`), so nothing is ever partially written and a
        retried body re-reads the state it decides on.
        """
        policy = self.retry
        deadline = time.monotonic() + policy.max_total_s
        attempt = 1
        while True:
            try:
                return self._attempt(body)
            except OperationalError as exc:
                if not _is_lock_error(exc):
                    raise WorkspaceError(
                        f"ledger: database unreadable ({_one_line(exc.orig)}); check the workspace database"
                    ) from exc
                pause = policy.delay(attempt)
                if attempt >= policy.attempts or time.monotonic() + pause > deadline:
                    raise WorkspaceError(
                        f"ledger: database still busy after {attempt} attempts ({_one_line(exc.orig)}); "
                        "another process holds the write lock - retry when other runs finish"
                    ) from exc
            _sleep(pause)
            attempt += 1

    def _attempt(self, body: Callable[[Connection], T]) -> T:
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                raw = conn.connection.dbapi_connection
                if getattr(raw, "in_transaction", False):
                    raw.commit()  # a stale implicit transaction would block BEGIN
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                result = body(conn)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            return result

    @staticmethod
    def _lock_budget(conn: Connection, lineage_id: str, unit: str):
        return conn.execute(
            select(budgets)
            .where(budgets.c.lineage_id == lineage_id, budgets.c.unit == unit)
            .with_for_update()
        ).first()

    @staticmethod
    def _active_entries(conn: Connection, budget_id: int, states=_ACTIVE) -> list[_Entry]:
        rows = conn.execute(
            select(ledger_entries).where(
                ledger_entries.c.budget_id == budget_id, ledger_entries.c.state.in_(states)
            )
        ).all()
        return [_entry_of(r) for r in rows]

    # -- API ------------------------------------------------------------------
    def set_cap(
        self, lineage_id: str, unit: str, epsilon: float, delta: float, *, allow_change: bool = False
    ) -> None:
        """Create the cap of (lineage, unit), or confirm it. Past entries stay counted.

        Every governed run calls this with the cap from the dataset's policy, so
        an unchanged cap is a no-op. A *different* cap is refused unless
        `allow_change` (the admin's policy rebind): otherwise an ordinary run
        could raise its own budget by editing a policy file. Concurrent callers
        get one winner; a loser with the same cap succeeds, one with another cap
        gets the same refusal.
        """
        lineage_id, unit = str(lineage_id), str(unit)
        eps, dlt = _check_eps_delta(epsilon, delta)
        if eps <= 0 or dlt <= 0:
            raise InputError(f"budget cap: expected epsilon > 0 and 0 < delta < 1, got ({epsilon}, {delta})")
        now = _utcnow()

        def body(conn: Connection) -> None:
            row = self._lock_budget(conn, lineage_id, unit)
            if row is None:
                conn.execute(
                    budgets.insert().values(
                        lineage_id=lineage_id, unit=unit, epsilon_cap=eps,
                        delta_cap=dlt, created_at=now, updated_at=now,
                    )
                )
                return
            if (row.epsilon_cap, row.delta_cap) == (eps, dlt):
                return
            if not allow_change:
                raise InputError(
                    f"budget cap: dataset lineage {lineage_id} (unit {unit}) has cap "
                    f"eps={row.epsilon_cap} delta={row.delta_cap}, not eps={eps} delta={dlt}; "
                    "an admin must rebind the dataset's policy (`privgov policy bind DATASET FILE`) "
                    "to change the cap"
                )
            conn.execute(
                update(budgets).where(budgets.c.id == row.id)
                .values(epsilon_cap=eps, delta_cap=dlt, updated_at=now)
            )

        try:
            self._write_txn(body)
        except IntegrityError:
            # Lost the insert race (PostgreSQL: FOR UPDATE cannot lock a row that
            # does not exist yet). The winner's row exists now: decide against it.
            try:
                self._write_txn(body)
            except IntegrityError as exc:
                raise WorkspaceError(
                    f"budget cap: could not record the cap of dataset lineage {lineage_id} "
                    f"(unit {unit}) ({_one_line(exc.orig)}); retry"
                ) from exc

    def reserve(
        self,
        *,
        lineage_id: str,
        unit: str,
        run_uid: str,
        epsilon: float,
        delta: float,
        orders: Sequence[float] | None = None,
        rdp: Sequence[float] | None = None,
    ) -> None:
        """Reserve a run's target budget, or raise BudgetExceeded (nothing written).

        `epsilon`/`delta` are the run's own target guarantee (e.g. PRV);
        `orders`/`rdp` its RDP curve for the same target. Without a curve the
        entry counts by basic composition. A missing cap refuses (fail closed).
        Under the write lock only the check-and-insert runs; validation happens
        before it and the refusal message is composed after it.
        """
        lineage_id, unit, run_uid = str(lineage_id), str(unit), str(run_uid)
        eps, dlt = _check_eps_delta(epsilon, delta)
        o, r = _validate_curve(orders, rdp)
        new = _Entry(eps, dlt, o, r)
        orders_json = None if o is None else json.dumps(o)
        rdp_json = None if r is None else json.dumps(r)

        def body(conn: Connection) -> _Refusal | None:
            row = self._lock_budget(conn, lineage_id, unit)
            if row is None:
                raise BudgetExceeded(
                    f"no privacy budget cap set for dataset lineage {lineage_id} (unit {unit}); "
                    "set one in the policy before training"
                )
            if conn.execute(
                select(ledger_entries.c.id).where(ledger_entries.c.run_uid == run_uid)
            ).first():
                raise InputError(f"run_uid: {run_uid} already has a ledger entry; use a fresh run id")
            current = self._active_entries(conn, row.id)
            after, d_after = compose(current + [new], row.delta_cap)
            if dlt > row.delta_cap or after > row.epsilon_cap + _TOL or d_after > row.delta_cap + _TOL:
                return _Refusal(row.epsilon_cap, row.delta_cap, current, after)  # nothing written
            try:
                conn.execute(
                    ledger_entries.insert().values(
                        budget_id=row.id, run_uid=run_uid, state=RESERVED, epsilon=eps,
                        target_epsilon=eps, delta=dlt, orders=orders_json, rdp=rdp_json,
                        reserved_at=_utcnow(),
                    )
                )
            except IntegrityError as exc:  # run_uid raced in via another budget row
                raise InputError(f"run_uid: {run_uid} already has a ledger entry; use a fresh run id") from exc
            return None

        refusal = self._write_txn(body)
        if refusal is not None:
            before, _ = compose(refusal.current, refusal.delta_cap)
            raise BudgetExceeded(
                f"privacy budget exceeded for dataset lineage {lineage_id} (unit {unit}): "
                f"cap eps={refusal.epsilon_cap:g} delta={refusal.delta_cap:g}; "
                f"spent+reserved eps={before:.4g} (RDP-composed, {len(refusal.current)} runs); "
                f"requested eps={eps:g} delta={dlt:g} would make eps={refusal.after:.4g}"
            )

    @staticmethod
    def _reserved_entry(conn: Connection, run_uid: str, if_missing: str, if_not_reserved: str):
        """The run's ledger row, which must still be a reservation (inside the caller's write txn)."""
        row = conn.execute(select(ledger_entries).where(ledger_entries.c.run_uid == run_uid)).first()
        if row is None:
            raise InputError(f"run_uid: {run_uid} {if_missing}")
        if row.state != RESERVED:
            raise InputError(f"run_uid: {run_uid} is {row.state}; {if_not_reserved}")
        return row

    def commit(
        self,
        *,
        run_uid: str,
        epsilon: float,
        orders: Sequence[float] | None = None,
        rdp: Sequence[float] | None = None,
    ) -> None:
        """Replace a reservation's target with what the run actually spent.

        Never refuses on the cap: the data has been used, so the truth is
        recorded even if it exceeds the target (status then shows it).
        Without a curve the reserved curve is kept only if the actual epsilon
        does not exceed the target; otherwise the entry falls back to basic.
        """
        run_uid = str(run_uid)
        eps, _ = _check_eps_delta(epsilon, 0.0)
        o, r = _validate_curve(orders, rdp)
        orders_json = None if o is None else json.dumps(o)
        rdp_json = None if r is None else json.dumps(r)

        def body(conn: Connection) -> None:
            row = self._reserved_entry(conn, run_uid, "has no reservation; reserve before training",
                                       "only a reservation can be committed")
            values: dict = {"state": COMMITTED, "epsilon": eps, "committed_at": _utcnow()}
            if o is not None:
                values.update(orders=orders_json, rdp=rdp_json)
            elif eps > row.target_epsilon:
                values.update(orders=None, rdp=None)
            conn.execute(update(ledger_entries).where(ledger_entries.c.id == row.id).values(**values))

        self._write_txn(body)

    def release(self, run_uid: str) -> None:
        """Drop a reservation. Only for runs that never touched the data:
        a run that read the data must `commit`, even if it failed later."""
        run_uid = str(run_uid)

        def body(conn: Connection) -> None:
            row = self._reserved_entry(conn, run_uid, "has no reservation to release",
                                       "only reserved runs can be released")
            conn.execute(
                update(ledger_entries).where(ledger_entries.c.id == row.id)
                .values(state=RELEASED, released_at=_utcnow())
            )

        self._write_txn(body)

    def status(self, lineage_id: str, unit: str) -> BudgetStatus:
        lineage_id, unit = str(lineage_id), str(unit)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(budgets).where(budgets.c.lineage_id == lineage_id, budgets.c.unit == unit)
            ).first()
            if row is None:
                raise InputError(f"budget: no cap set for dataset lineage {lineage_id} (unit {unit})")
            return self._status_of(conn, row)

    def list_budgets(self) -> list[BudgetStatus]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(budgets).order_by(budgets.c.lineage_id, budgets.c.unit)).all()
            return [self._status_of(conn, r) for r in rows]

    def _status_of(self, conn: Connection, brow) -> BudgetStatus:
        rows = conn.execute(
            select(ledger_entries).where(ledger_entries.c.budget_id == brow.id)
            .order_by(ledger_entries.c.reserved_at, ledger_entries.c.id)
        ).all()
        active = [r for r in rows if r.state in _ACTIVE]
        committed = [_entry_of(r) for r in active if r.state == COMMITTED]
        composed, _ = compose([_entry_of(r) for r in active], brow.delta_cap)
        spent, _ = compose(committed, brow.delta_cap)
        return BudgetStatus(
            lineage_id=brow.lineage_id,
            unit=brow.unit,
            epsilon_cap=brow.epsilon_cap,
            delta_cap=brow.delta_cap,
            spent=spent,
            reserved=max(0.0, composed - spent),
            remaining=max(0.0, brow.epsilon_cap - composed),
            composed_epsilon=composed,
            naive_sum_epsilon=sum(r.epsilon for r in active),
            runs=[
                RunRow(
                    run_uid=r.run_uid, state=r.state, epsilon=r.epsilon,
                    target_epsilon=r.target_epsilon, delta=r.delta,
                    has_curve=r.orders is not None, reserved_at=r.reserved_at,
                    committed_at=r.committed_at, released_at=r.released_at,
                )
                for r in rows
            ],
        )


def _entry_of(row) -> _Entry:
    if row.orders is None:
        return _Entry(row.epsilon, row.delta, None, None)
    return _Entry(row.epsilon, row.delta, json.loads(row.orders), json.loads(row.rdp))


__all__ = ["BudgetLedger", "BudgetStatus", "RetryPolicy", "RunRow", "budgets", "ledger_entries", "metadata"]
