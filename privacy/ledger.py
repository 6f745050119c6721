"""Privacy-budget ledger: one (epsilon, delta) cap per dataset lineage, enforced as a privacy filter.

Why a ledger and not a counter:

* **One ledger per dataset.** Versions derived from one source describe the
  same people, so budgets are keyed by lineage alone. The privacy unit is
  recorded on the budget when the cap is set; a reservation or cap for another
  unit is refused (a second ledger per unit would let a run that leaves out the
  unit spend a fresh budget).
* **Valid composition under adaptive choice.** Later runs are chosen after
  seeing earlier results, so admission is a privacy filter fixed with the cap:
  a Rényi filter at one order plus, for runs without an RDP curve, a
  basic-composition share (`privacy.filter`: Feldman & Zrnic 2021; Whitehouse
  et al. 2023; Rogers et al. 2016). The order and the split are recorded on the
  budget row; runs are charged their RDP at that order.
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
* **Migration.** Ledgers written before the filter (no fixed order; one budget
  per (lineage, unit)) are migrated on first use (`BudgetLedger.migrate`): the
  order is fixed for the existing cap and every existing entry is charged at
  it; what cannot be decided mechanically is refused with a `MigrationNote`.

`privacy/` may not import `governance`, so this module keeps its own SQLAlchemy
metadata; the workspace creates the tables on its engine via `create_tables()`,
and columns added since are added here (ALTER TABLE) on first use.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError, OperationalError

# Light (pure math): nothing heavy may be imported under the write lock.
from privacy.filter import (
    BudgetStatus,
    Entry,
    FilterCap,
    RunRow,
    Spend,
    check_curve,
    check_eps_delta,
    check_share,
    refusal,
    smallest_share,
    summarize,
)
from privacy.errors import BudgetExceeded, InputError, WorkspaceError

T = TypeVar("T")
log = logging.getLogger(__name__)

metadata = MetaData()

budgets = Table(
    "budgets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("lineage_id", String(64), nullable=False),
    Column("unit", String(200), nullable=False),  # recorded at set_cap; one unit per lineage
    Column("epsilon_cap", Float, nullable=False),
    Column("delta_cap", Float, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    # Added with the filter (ALTER TABLE on older files; NULL order = not migrated yet):
    Column("rdp_order", Float, nullable=True),  # the Renyi filter's order, fixed with the cap
    Column("basic_share", Float, nullable=True),  # share of the cap for basic composition
    Column("needs_decision", Text, nullable=True),  # why runs are refused until an admin acts
    Column("note", Text, nullable=True),  # the migration note, kept for `status`
)
# One ledger per lineage. Older files also carry UNIQUE(lineage_id, unit); this
# index is added by the migration once no lineage has two rows.
uq_budgets_lineage = Index("uq_budgets_lineage", budgets.c.lineage_id, unique=True)
_ADDED_COLUMNS = (budgets.c.rdp_order, budgets.c.basic_share, budgets.c.needs_decision, budgets.c.note)

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
_REBIND = "an admin must rebind the dataset's policy (`privgov policy bind DATASET FILE`)"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class MigrationNote:
    """What the migration did to one lineage's budget (also logged and kept as `BudgetStatus.note`).

    action: ``fixed-order`` (order fixed, entries charged, they fit),
    ``merged-units`` (several per-unit rows became one), ``needs-decision``
    (entries do not fit the filter: runs refused until an admin changes the
    cap), ``refused-units`` (runs charged under several units: not merged,
    runs refused).
    """

    lineage_id: str
    unit: str
    action: str
    message: str


def _cap_of(row: Any) -> FilterCap:
    """The filter of a budget row (a row not migrated yet gets the order its cap would fix)."""
    share = float(row.basic_share or 0.0)
    if row.rdp_order is None:
        return FilterCap.fix(row.epsilon_cap, row.delta_cap, share)
    return FilterCap(float(row.epsilon_cap), float(row.delta_cap), float(row.rdp_order), share)


@dataclass(frozen=True)
class CommitFacts:
    """The ledger around one commit, read in the commit's own transaction (facts, not recomputed later).

    `epsilon_before` / `epsilon_after` are the committed spend as the filter
    reports it (`BudgetStatus.spent`: admitted RDP at the fixed `order`
    converted at the Rényi filter's `delta`, plus the basic-composition
    epsilons), without and with this run. Both are >= 0 and after >= before:
    a commit only adds a non-negative charge. `run_epsilon`/`run_delta` are the
    run's own guarantee from its accountant, for the run alone."""

    epsilon_before: float
    epsilon_after: float
    run_epsilon: float
    run_delta: float
    order: float
    delta: float
    epsilon_cap: float
    delta_cap: float
    composition: str  # "renyi-filter" or "basic"


@dataclass(frozen=True)
class _Refusal:
    """What `reserve` decided under the lock, to word the refusal after releasing it."""

    epsilon_cap: float
    delta_cap: float
    reason: str
    decision: bool = False  # refused because the ledger needs an admin decision


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


_PG_RETRYABLE = ("40001", "40P01", "55P03")  # serialization failure, deadlock detected, lock not available


def _is_lock_error(exc: OperationalError) -> bool:
    """True for "database is locked/busy" (SQLite) or a PostgreSQL lock conflict - the only errors worth retrying."""
    if getattr(exc.orig, "sqlstate", None) in _PG_RETRYABLE:
        return True
    msg = str(exc.orig).lower()
    return "locked" in msg or "busy" in msg


def _one_line(exc: BaseException | None) -> str:
    return " ".join(str(exc).split())


class BudgetLedger:
    """Reserve / commit / release privacy budget against per-lineage caps, through the filter."""

    def __init__(self, engine: Engine, retry: RetryPolicy | None = None) -> None:
        self.engine = engine
        self.retry = retry or RetryPolicy()
        self.migration_notes: list[MigrationNote] = []
        self._migrated = False

    # -- schema ---------------------------------------------------------------
    def create_tables(self) -> None:
        metadata.create_all(self.engine)
        self._ensure_migrated()  # tables that already existed keep their old columns

    def migrate(self) -> list[MigrationNote]:
        """Bring ledgers written before the filter up to date; return (and log) what was done.

        In one write transaction: add missing columns; merge a lineage's
        per-unit budgets when runs were charged under at most one unit (else
        refuse: charges for different privacy units cannot be added up); fix
        the order of every budget without one and charge its entries at it.
        Existing basic-composition entries get the smallest basic_share that
        covers them (chosen from those entries - a one-off for history that
        happened before the split existed; fixed from then on). Entries that do
        not fit mark the budget `needs_decision`: further runs are refused until
        an admin rebinds the policy with a cap that covers them. Idempotent.
        """
        notes = self._txn(self._migrate_body)
        for n in notes:
            log.warning("privacy budget migration: %s", n.message)
        self.migration_notes.extend(notes)
        self._migrated = True
        return notes

    def _ensure_migrated(self) -> None:
        if self._migrated:
            return
        needed = self._txn(_migration_needed, write=False)
        if needed is None:  # no ledger tables (yet): the operation reports it
            return
        if needed:
            self.migrate()
        self._migrated = True

    def _migrate_body(self, conn: Connection) -> list[MigrationNote]:
        have = {c["name"] for c in inspect(conn).get_columns("budgets")}
        for col in _ADDED_COLUMNS:
            if col.name not in have:
                conn.exec_driver_sql(
                    f"ALTER TABLE budgets ADD COLUMN {col.name} {col.type.compile(dialect=conn.dialect)}"
                )
        groups: dict[str, list[Any]] = {}
        for row in conn.execute(select(budgets).order_by(budgets.c.lineage_id, budgets.c.id)).all():
            groups.setdefault(row.lineage_id, []).append(row)
        notes: list[MigrationNote] = []
        conflicts = False
        for group in groups.values():
            row = group[0]
            if len(group) > 1:
                row, note = self._merge_units(conn, group)
                notes.append(note)
                if row is None:
                    conflicts = True
                    continue
            if row.rdp_order is None:
                notes.append(self._fix_order(conn, row))
        if not conflicts:
            uq_budgets_lineage.create(conn, checkfirst=True)
        return notes

    def _merge_units(self, conn: Connection, group: list[Any]) -> tuple[Any, MigrationNote]:
        lineage = group[0].lineage_id
        units = ", ".join(r.unit for r in group)
        used = [r for r in group if self._active_entries(conn, r.id)]
        if len(used) > 1:
            msg = (f"dataset lineage {lineage} has budgets for privacy units {units} with runs charged under "
                   f"{', '.join(r.unit for r in used)}; charges for different units cannot be added into one "
                   f"ledger, so runs are refused until an admin decides which charges the dataset carries")
            conn.execute(update(budgets).where(budgets.c.lineage_id == lineage)
                         .values(needs_decision=msg, note=msg, updated_at=_utcnow()))
            return None, MigrationNote(lineage, units, "refused-units", msg)
        keep = used[0] if used else max(group, key=lambda r: (r.updated_at, r.id))
        others = [r.id for r in group if r.id != keep.id]
        conn.execute(update(ledger_entries).where(ledger_entries.c.budget_id.in_(others))
                     .values(budget_id=keep.id))  # released entries only: kept as history
        conn.execute(budgets.delete().where(budgets.c.id.in_(others)))
        why = "the only one with charged runs" if used else "none had charged runs; kept the last one set"
        msg = (f"dataset lineage {lineage}: budgets for privacy units {units} merged into one ledger for unit "
               f"{keep.unit} ({why}; cap eps={keep.epsilon_cap:g} delta={keep.delta_cap:g})")
        conn.execute(update(budgets).where(budgets.c.id == keep.id).values(note=msg))
        return keep, MigrationNote(lineage, keep.unit, "merged-units", msg)

    def _fix_order(self, conn: Connection, row: Any) -> MigrationNote:
        entries = self._active_entries(conn, row.id)
        basic = [e for e in entries if e.orders is None]
        eps_b = math.fsum(e.epsilon for e in basic)
        delta_b = math.fsum(e.delta for e in basic)
        share = smallest_share(eps_b, delta_b, row.epsilon_cap, row.delta_cap) if basic else 0.0
        cap = FilterCap.fix(row.epsilon_cap, row.delta_cap, share if share < 1.0 else 0.0)
        spend = Spend.of(entries, cap.order)
        fits = share < 1.0 and spend.fits(cap)
        msg = (f"budget of dataset lineage {row.lineage_id} (unit {row.unit}) now a Renyi filter: order "
               f"{cap.order:g} fixed for cap eps={cap.epsilon_cap:g} delta={cap.delta_cap:g} (RDP budget "
               f"{cap.rdp_budget:.4g}); {spend.curves} existing runs charged at that order hold RDP {spend.rdp:.4g}")
        if basic:
            msg += (f"; {len(basic)} basic-composition runs (eps={eps_b:.4g}, delta={delta_b:.3g}) "
                    + (f"get basic_share={share:.6g}" if share < 1.0 else "use the whole cap"))
        if not fits:
            msg += f"; they do not fit the filter: runs are refused until {_REBIND} with a cap that covers them"
        conn.execute(update(budgets).where(budgets.c.id == row.id).values(
            rdp_order=cap.order, basic_share=cap.basic_share, needs_decision=None if fits else msg, note=msg,
            updated_at=_utcnow()))
        return MigrationNote(row.lineage_id, row.unit, "fixed-order" if fits else "needs-decision", msg)

    # -- transactions ---------------------------------------------------------
    def _txn(self, body: Callable[[Connection], T], *, write: bool = True) -> T:
        """Run `body(conn)` in one transaction (holding the database write lock if `write`).

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
                return self._attempt(body, write)
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

    def _attempt(self, body: Callable[[Connection], T], write: bool = True) -> T:
        with self.engine.connect() as conn:
            if write and conn.dialect.name == "sqlite":
                raw = conn.connection.dbapi_connection
                if raw is not None and getattr(raw, "in_transaction", False):
                    raw.commit()  # a stale implicit transaction would block BEGIN
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                result = body(conn)
                if write:
                    conn.commit()
                else:
                    conn.rollback()
            except BaseException:
                conn.rollback()
                raise
            return result

    @staticmethod
    def _lock_budget(conn: Connection, lineage_id: str, unit: str) -> Row[Any] | None:
        """The lineage's budget row, locked (`unit` picks among rows a refused migration left)."""
        rows = conn.execute(
            select(budgets).where(budgets.c.lineage_id == lineage_id).order_by(budgets.c.id).with_for_update()
        ).all()
        return next((r for r in rows if r.unit == unit), rows[0] if rows else None)

    @staticmethod
    def _active_entries(conn: Connection, budget_id: int, states: Sequence[str] = _ACTIVE) -> list[Entry]:
        rows = conn.execute(
            select(ledger_entries).where(
                ledger_entries.c.budget_id == budget_id, ledger_entries.c.state.in_(states)
            ).order_by(ledger_entries.c.id)
        ).all()
        return [_entry_of(r) for r in rows]

    @staticmethod
    def _has_entries(conn: Connection, budget_id: int) -> bool:
        return conn.execute(
            select(ledger_entries.c.id).where(ledger_entries.c.budget_id == budget_id).limit(1)
        ).first() is not None

    # -- API ------------------------------------------------------------------
    def set_cap(
        self, lineage_id: str, unit: str, epsilon: float, delta: float, *, allow_change: bool = False,
        basic_share: float | None = None,
    ) -> None:
        """Create the dataset's cap (fixing the filter's order and split), or confirm it.

        Every governed run may call this with the cap from the dataset's
        policy, so an unchanged cap is a no-op. A *different* cap or
        `basic_share` is refused unless `allow_change` (the admin's policy
        rebind): otherwise an ordinary run could raise its own budget by editing
        a policy file. A change keeps the order fixed when the cap was first set
        once any run was charged (a new cap without runs fixes it anew) and
        re-checks every entry at it; if they do not fit, runs are refused
        until a cap that covers them is set. (The filter's guarantee assumes the
        cap was not raised *because of* what the runs released; changing it is
        an admin decision outside the filter.)

        `basic_share` (0 <= s < 1; None keeps the recorded one, 0 for a new cap)
        reserves (s eps, s delta) for runs without an RDP curve; see
        `privacy.filter`. `unit` is recorded on the budget: one ledger per
        lineage, so another unit is refused - except that an admin rebind may
        relabel a budget that has never had an entry. Concurrent callers get
        one winner; a loser with the same cap succeeds, one with another cap
        gets the same refusal.
        """
        lineage_id, unit = str(lineage_id), str(unit)
        eps, dlt = check_eps_delta(epsilon, delta)
        if eps <= 0 or dlt <= 0:
            raise InputError(f"budget cap: expected epsilon > 0 and 0 < delta < 1, got ({epsilon}, {delta})")
        share_arg = None if basic_share is None else check_share(basic_share)
        new_cap = FilterCap.fix(eps, dlt, share_arg or 0.0)  # before the lock; also checks the cap is usable
        self._ensure_migrated()
        now = _utcnow()

        def body(conn: Connection) -> None:
            row = self._lock_budget(conn, lineage_id, unit)
            if row is None:
                conn.execute(
                    budgets.insert().values(
                        lineage_id=lineage_id, unit=unit, epsilon_cap=eps, delta_cap=dlt, created_at=now,
                        updated_at=now, rdp_order=new_cap.order, basic_share=new_cap.basic_share,
                    )
                )
                return
            if conn.execute(select(func.count()).where(budgets.c.lineage_id == lineage_id)).scalar_one() > 1:
                why = row.needs_decision or f"dataset lineage {lineage_id} has budgets for several privacy units"
                raise InputError(f"budget cap: refused; {why}")  # a refused migration left them
            share = float(row.basic_share or 0.0) if share_arg is None else share_arg
            if row.unit != unit and not (allow_change and not self._has_entries(conn, row.id)):
                raise InputError(
                    f"budget cap: dataset lineage {lineage_id} keeps one ledger, for privacy unit {row.unit}; "
                    f"a cap for unit {unit} is refused (it would start a second budget for the same people)"
                )
            if (row.epsilon_cap, row.delta_cap, float(row.basic_share or 0.0)) == (eps, dlt, share):
                if row.unit != unit:
                    conn.execute(update(budgets).where(budgets.c.id == row.id).values(unit=unit, updated_at=now))
                return
            if not allow_change:
                raise InputError(
                    f"budget cap: dataset lineage {lineage_id} (unit {row.unit}) has cap "
                    f"eps={row.epsilon_cap} delta={row.delta_cap} basic_share={float(row.basic_share or 0.0):g}, "
                    f"not eps={eps} delta={dlt} basic_share={share:g}; {_REBIND} to change the cap"
                )
            cap = new_cap if share == new_cap.basic_share else FilterCap.fix(eps, dlt, share)
            if self._has_entries(conn, row.id) and row.rdp_order:
                # Runs were admitted at the recorded order: keep it. Choosing the
                # order anew after seeing them is the after-the-fact choice a filter
                # must not make; only the budget at that order changes.
                cap = FilterCap(eps, dlt, float(row.rdp_order), share)
            spend = Spend.of(self._active_entries(conn, row.id), cap.order)
            needs = None if spend.fits(cap) else (
                f"the runs already admitted (RDP {spend.rdp:.4g} at order {cap.order:g}, basic eps="
                f"{spend.basic_epsilon:.4g} delta={spend.basic_delta:.3g}) exceed cap eps={eps:g} delta={dlt:g} "
                f"basic_share={share:g}; runs are refused until {_REBIND} with a cap that covers them")
            conn.execute(
                update(budgets).where(budgets.c.id == row.id)
                .values(unit=unit, epsilon_cap=eps, delta_cap=dlt, rdp_order=cap.order, basic_share=share,
                        needs_decision=needs, updated_at=now)
            )

        try:
            self._txn(body)
        except IntegrityError:
            # Lost the insert race (PostgreSQL: FOR UPDATE cannot lock a row that
            # does not exist yet). The winner's row exists now: decide against it.
            try:
                self._txn(body)
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
        `orders`/`rdp` its RDP curve for the same target, which the Rényi
        filter charges at the ledger's order. Without a curve the run goes to
        the basic-composition share (refused when the cap reserves none). A
        missing cap refuses (fail closed); another unit than the budget's is an
        InputError. Under the write lock only the check-and-insert runs;
        validation happens before it and the refusal message is composed after.
        """
        lineage_id, unit, run_uid = str(lineage_id), str(unit), str(run_uid)
        eps, dlt = check_eps_delta(epsilon, delta)
        o, r = check_curve(orders, rdp)
        new = Entry(eps, dlt, o, r)
        orders_json = None if o is None else json.dumps(o)
        rdp_json = None if r is None else json.dumps(r)
        self._ensure_migrated()

        def body(conn: Connection) -> _Refusal | None:
            row = self._lock_budget(conn, lineage_id, unit)
            if row is None:
                raise BudgetExceeded(
                    f"no privacy budget cap set for dataset lineage {lineage_id} (unit {unit}); "
                    "set one in the policy before training"
                )
            if row.unit != unit:
                raise InputError(
                    f"unit: dataset lineage {lineage_id} keeps its one ledger for privacy unit {row.unit}; "
                    f"a run charging unit {unit} is refused - run with the unit bound to the dataset"
                )
            if conn.execute(
                select(ledger_entries.c.id).where(ledger_entries.c.run_uid == run_uid)
            ).first():
                raise InputError(f"run_uid: {run_uid} already has a ledger entry; use a fresh run id")
            if row.needs_decision:
                return _Refusal(row.epsilon_cap, row.delta_cap, row.needs_decision, decision=True)
            reason = refusal(_cap_of(row), self._active_entries(conn, row.id), new)
            if reason is not None:
                return _Refusal(row.epsilon_cap, row.delta_cap, reason)  # nothing written
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

        refused = self._txn(body)
        if refused is not None:
            if refused.decision:
                raise BudgetExceeded(f"privacy budget of dataset lineage {lineage_id} (unit {unit}) needs an "
                                     f"admin decision: {refused.reason}")
            raise BudgetExceeded(
                f"privacy budget exceeded for dataset lineage {lineage_id} (unit {unit}): "
                f"cap eps={refused.epsilon_cap:g} delta={refused.delta_cap:g}; {refused.reason}; "
                f"requested eps={eps:g} delta={dlt:g}"
            )

    @staticmethod
    def _reserved_entry(conn: Connection, run_uid: str, if_missing: str, if_not_reserved: str) -> Row[Any]:
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
    ) -> CommitFacts:
        """Replace a reservation's target with what the run actually spent; returns the ledger before and after.

        Never refuses on the cap: the data has been used, so the truth is
        recorded even if it exceeds the target (status then shows it).
        Without a curve the reserved curve is kept only if the actual epsilon
        does not exceed the target; otherwise the entry falls back to basic.
        """
        run_uid = str(run_uid)
        eps, _ = check_eps_delta(epsilon, 0.0)
        o, r = check_curve(orders, rdp)
        orders_json = None if o is None else json.dumps(o)
        rdp_json = None if r is None else json.dumps(r)
        self._ensure_migrated()

        def body(conn: Connection) -> CommitFacts:
            row = self._reserved_entry(conn, run_uid, "has no reservation; reserve before training",
                                       "only a reservation can be committed")
            brow = conn.execute(select(budgets).where(budgets.c.id == row.budget_id)).one()
            cap = _cap_of(brow)
            before = self._active_entries(conn, brow.id, (COMMITTED,))
            values: dict[str, Any] = {"state": COMMITTED, "epsilon": eps, "committed_at": _utcnow()}
            if o is not None:
                values.update(orders=orders_json, rdp=rdp_json)
            elif eps > row.target_epsilon:
                values.update(orders=None, rdp=None)
            conn.execute(update(ledger_entries).where(ledger_entries.c.id == row.id).values(**values))
            entry = _entry_of(conn.execute(select(ledger_entries).where(ledger_entries.c.id == row.id)).one())
            spent_before = summarize(cap, before, [])["spent"]
            spent_after = summarize(cap, [*before, entry], [])["spent"]
            return CommitFacts(
                epsilon_before=float(spent_before), epsilon_after=float(spent_after),
                run_epsilon=float(eps), run_delta=float(row.delta), order=float(cap.order),
                delta=float(cap.rdp_delta), epsilon_cap=float(cap.epsilon_cap), delta_cap=float(cap.delta_cap),
                composition="basic" if entry.orders is None else "renyi-filter")

        return self._txn(body)

    def release(self, run_uid: str) -> None:
        """Drop a reservation. Only for runs that never touched the data:
        a run that read the data must `commit`, even if it failed later."""
        run_uid = str(run_uid)
        self._ensure_migrated()

        def body(conn: Connection) -> None:
            row = self._reserved_entry(conn, run_uid, "has no reservation to release",
                                       "only reserved runs can be released")
            conn.execute(
                update(ledger_entries).where(ledger_entries.c.id == row.id)
                .values(state=RELEASED, released_at=_utcnow())
            )

        self._txn(body)

    def status(self, lineage_id: str, unit: str) -> BudgetStatus:
        """The dataset's one budget (`unit` is kept for compatibility; the status names the recorded unit)."""
        lineage_id, unit = str(lineage_id), str(unit)
        self._ensure_migrated()

        def body(conn: Connection) -> BudgetStatus:
            rows = conn.execute(
                select(budgets).where(budgets.c.lineage_id == lineage_id).order_by(budgets.c.id)
            ).all()
            row = next((r for r in rows if r.unit == unit), rows[0] if rows else None)
            if row is None:
                raise InputError(f"budget: no cap set for dataset lineage {lineage_id} (unit {unit})")
            return self._status_of(conn, row)

        return self._txn(body, write=False)

    def list_budgets(self) -> list[BudgetStatus]:
        self._ensure_migrated()

        def body(conn: Connection) -> list[BudgetStatus]:
            rows = conn.execute(select(budgets).order_by(budgets.c.lineage_id, budgets.c.unit)).all()
            return [self._status_of(conn, r) for r in rows]

        return self._txn(body, write=False)

    def _status_of(self, conn: Connection, brow: Any) -> BudgetStatus:
        rows = conn.execute(
            select(ledger_entries).where(ledger_entries.c.budget_id == brow.id)
            .order_by(ledger_entries.c.reserved_at, ledger_entries.c.id)
        ).all()
        cap = _cap_of(brow)
        numbers = summarize(cap, [_entry_of(r) for r in rows if r.state == COMMITTED],
                            [_entry_of(r) for r in rows if r.state == RESERVED])
        return BudgetStatus(
            lineage_id=brow.lineage_id,
            unit=brow.unit,
            epsilon_cap=brow.epsilon_cap,
            delta_cap=brow.delta_cap,
            runs=[
                RunRow(
                    run_uid=r.run_uid, state=r.state, epsilon=r.epsilon,
                    target_epsilon=r.target_epsilon, delta=r.delta,
                    has_curve=r.orders is not None, reserved_at=r.reserved_at,
                    committed_at=r.committed_at, released_at=r.released_at,
                    rdp_charge=_entry_of(r).charge(cap.order),
                )
                for r in rows
            ],
            needs_decision=brow.needs_decision,
            note=brow.note,
            **numbers,
        )


def _migration_needed(conn: Connection) -> bool | None:
    """None without ledger tables; True when a column, an order or one-row-per-lineage is missing."""
    insp = inspect(conn)
    if not insp.has_table("budgets"):
        return None
    have = {c["name"] for c in insp.get_columns("budgets")}
    if any(c.name not in have for c in _ADDED_COLUMNS):
        return True
    legacy = conn.execute(select(budgets.c.id).where(budgets.c.rdp_order.is_(None)).limit(1)).first()
    shared = conn.execute(
        select(budgets.c.lineage_id).group_by(budgets.c.lineage_id).having(func.count() > 1).limit(1)
    ).first()
    return legacy is not None or shared is not None


def _entry_of(row: Any) -> Entry:
    if row.orders is None:
        return Entry(row.epsilon, row.delta, None, None)
    return Entry(row.epsilon, row.delta, json.loads(row.orders), json.loads(row.rdp))


__all__ = ["BudgetLedger", "BudgetStatus", "CommitFacts", "MigrationNote", "RetryPolicy", "RunRow", "budgets", "ledger_entries",
           "metadata"]
