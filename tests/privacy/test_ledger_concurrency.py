"""Budget ledger under contention: many processes, racing caps, a held write lock.

Every test uses a real SQLite file and real OS processes ('spawn': each child
starts a fresh interpreter and opens its own engine, as separate `privgov run`
processes do). Curves are small explicit lists so that nothing heavy runs.
"""
from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
import textwrap
import time

import pytest
from sqlalchemy import create_engine, select

import privacy.ledger as ledger_mod
from privacy.accounting import DEFAULT_ORDERS, rdp_to_epsilon
from privacy.errors import BudgetExceeded, InputError, WorkspaceError
from privacy.filter import FilterCap
from privacy.ledger import BudgetLedger, RetryPolicy, budgets

DELTA = 1e-5
ORDERS = list(DEFAULT_ORDERS)  # the grid the ledger fixes its order on (a light import)
SIGMA = 4.0
CURVE = [a / (2 * SIGMA**2) for a in ORDERS]  # Gaussian mechanism: alpha / (2 sigma^2)
RUN_EPS = rdp_to_epsilon(ORDERS, CURVE, DELTA)


def _cap_fitting(runs: float) -> float:
    """The epsilon cap whose Renyi filter holds `runs` (fractional) Gaussian runs of CURVE.

    B(alpha)/alpha at the fixed order grows with the cap, so bisection finds it."""
    def fits(cap: float) -> float:
        f = FilterCap.fix(cap, DELTA)
        return f.rdp_budget / (f.order / (2 * SIGMA**2))

    lo, hi = 0.1, 50.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if fits(mid) < runs else (lo, mid)
    return hi
HEAVY = ("torch", "opacus", "numpy", "pandas", "great_expectations")


def _engine(path, timeout: float = 60):
    return create_engine(f"sqlite:///{path}", connect_args={"timeout": timeout})


def _new_ledger(path) -> BudgetLedger:
    led = BudgetLedger(_engine(path))
    led.create_tables()
    return led


def _collect(ctx, target, args_of, n):
    """Start n spawned processes behind one barrier; return {index: outcome}."""
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args_of(i), barrier, results)) for i in range(n)]
    for p in procs:
        p.start()
    try:
        outcomes = dict(results.get(timeout=120) for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=30)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return outcomes


# -- 32 reservers ----------------------------------------------------------------
def _reserve_worker(db, i, barrier, results):
    led = BudgetLedger(_engine(db))
    barrier.wait()
    try:
        led.reserve(lineage_id="lin", unit="patient", run_uid=f"run-{i}", epsilon=RUN_EPS,
                    delta=DELTA, orders=ORDERS, rdp=CURVE)
        outcome = "ok"
    except BudgetExceeded:
        outcome = "refused"
    except BaseException as exc:  # any other error is a failure the parent reports
        outcome = repr(exc)
    heavy = [m for m in HEAVY if m in sys.modules]
    results.put((i, (outcome, heavy)))


def test_32_processes_only_what_fits_no_errors_no_heavy_imports(tmp_path):
    db = tmp_path / "ledger.db"
    led = _new_ledger(db)
    cap = _cap_fitting(11.5)  # room for exactly 11 runs, far from a rounding edge
    led.set_cap("lin", "patient", cap, DELTA)

    outcomes = _collect(mp.get_context("spawn"), _reserve_worker, lambda i: (db, i), 32)

    kinds = [o for o, _ in outcomes.values()]
    assert set(kinds) <= {"ok", "refused"}, outcomes  # no "database busy", no traceback
    assert kinds.count("ok") == 11
    assert all(heavy == [] for _, heavy in outcomes.values()), outcomes  # nothing heavy under the lock
    st = led.status("lin", "patient")
    assert len([r for r in st.runs if r.state == "reserved"]) == 11 == len(st.runs)
    assert st.rdp_reserved == pytest.approx(11 * st.order / (2 * SIGMA**2)) and st.rdp_reserved <= st.rdp_budget
    assert st.composed_epsilon <= cap


# -- racing caps -----------------------------------------------------------------
def _cap_worker(db, i, eps, barrier, results):
    led = BudgetLedger(_engine(db))
    barrier.wait()
    try:
        led.set_cap("lin", "patient", eps, DELTA)
        outcome = "ok"
    except InputError as exc:
        outcome = f"InputError: {exc}"
    except BaseException as exc:
        outcome = repr(exc)
    results.put((i, (eps, outcome)))


def _caps(db):
    with _engine(db).connect() as conn:
        return conn.execute(select(budgets.c.epsilon_cap, budgets.c.delta_cap)).all()


def test_concurrent_different_caps_one_winner_others_clean_error(tmp_path):
    db = tmp_path / "ledger.db"
    _new_ledger(db)
    values = [1.0, 2.0, 3.0, 4.0]
    outcomes = _collect(mp.get_context("spawn"), _cap_worker, lambda i: (db, i, values[i]), 4)

    winners = [eps for eps, o in outcomes.values() if o == "ok"]
    assert len(winners) == 1, outcomes
    for eps, o in outcomes.values():
        if eps != winners[0]:
            assert o.startswith("InputError: ") and "privgov policy bind" in o and "\n" not in o, o
    assert _caps(db) == [(winners[0], DELTA)]


def test_concurrent_equal_caps_all_succeed(tmp_path):
    db = tmp_path / "ledger.db"
    _new_ledger(db)
    outcomes = _collect(mp.get_context("spawn"), _cap_worker, lambda i: (db, i, 2.5), 4)
    assert sorted(outcomes.values()) == [(2.5, "ok")] * 4
    assert _caps(db) == [(2.5, DELTA)]


def test_lost_insert_race_resolves_against_the_winner(tmp_path, monkeypatch):
    """PostgreSQL cannot lock a missing row, so two callers may both try to insert:
    the loser hits the unique constraint. Simulated by hiding the winner's row once."""
    db = tmp_path / "ledger.db"
    led = _new_ledger(db)
    led.set_cap("lin", "patient", 2.0, DELTA)
    real = BudgetLedger._lock_budget
    for eps, expect_error in ((2.0, False), (3.0, True)):
        calls = []

        def blind_once(conn, lineage_id, unit, calls=calls):
            calls.append(1)
            return None if len(calls) == 1 else real(conn, lineage_id, unit)

        monkeypatch.setattr(BudgetLedger, "_lock_budget", staticmethod(blind_once))
        if expect_error:
            with pytest.raises(InputError, match="policy bind"):
                led.set_cap("lin", "patient", eps, DELTA)
        else:
            led.set_cap("lin", "patient", eps, DELTA)
        assert len(calls) == 2  # the insert failed on the constraint and the body re-ran
        assert _caps(db) == [(2.0, DELTA)]


# -- the write lock held by someone else -----------------------------------------
HOLDER = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    sys.stdin.readline()
    conn.execute("COMMIT")
    print("released", flush=True)
    sys.stdin.readline()
    """
)


@pytest.fixture()
def locked_db(tmp_path):
    """A ledger file with a cap, whose write lock another process holds until told."""
    db = tmp_path / "ledger.db"
    _new_ledger(db).set_cap("lin", "patient", 5.0, DELTA)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"

    def release():
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"

    yield db, release
    holder.stdin.close()
    holder.wait(timeout=30)


def _impatient_ledger(db, policy):
    # timeout=0: SQLite's busy handler gives up at once, so only our retry waits.
    return BudgetLedger(_engine(db, timeout=0), retry=policy)


def _reserve(led, run_uid="r1"):
    led.reserve(lineage_id="lin", unit="patient", run_uid=run_uid, epsilon=RUN_EPS,
                delta=DELTA, orders=ORDERS, rdp=CURVE)


def test_reservation_retries_until_the_lock_is_released(locked_db, monkeypatch):
    db, release = locked_db
    pauses = []

    def sleep_then_release(seconds):
        pauses.append(seconds)
        if len(pauses) == 2:  # two refused tries so far: now the holder lets go
            release()
        time.sleep(seconds)

    monkeypatch.setattr(ledger_mod, "_sleep", sleep_then_release)
    led = _impatient_ledger(db, RetryPolicy(attempts=10, base_delay_s=0.01, max_delay_s=0.02))
    _reserve(led)
    assert len(pauses) == 2 and all(0.005 <= p <= 0.02 for p in pauses)
    st = led.status("lin", "patient")
    assert [(r.run_uid, r.state) for r in st.runs] == [("r1", "reserved")]


def test_lock_held_past_the_bound_is_a_clean_error_and_writes_nothing(locked_db, monkeypatch):
    db, release = locked_db
    pauses = []
    monkeypatch.setattr(ledger_mod, "_sleep", lambda s: pauses.append(s))
    led = _impatient_ledger(db, RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.02))
    with pytest.raises(WorkspaceError) as info:
        _reserve(led)
    msg = str(info.value)
    assert "still busy after 3 attempts" in msg and "database is locked" in msg and "\n" not in msg
    assert len(pauses) == 2
    release()
    assert led.status("lin", "patient").runs == []  # nothing partially written
    _reserve(led)  # and the ledger works once the lock is free
    assert len(led.status("lin", "patient").runs) == 1


def test_total_backoff_is_bounded_even_with_attempts_left(locked_db, monkeypatch):
    db, _ = locked_db
    pauses = []
    monkeypatch.setattr(ledger_mod, "_sleep", lambda s: pauses.append(s))
    led = _impatient_ledger(db, RetryPolicy(attempts=100, base_delay_s=1.0, max_total_s=0.0))
    with pytest.raises(WorkspaceError, match="after 1 attempts"):
        led.set_cap("lin", "patient", 5.0, DELTA)
    assert pauses == []


def test_other_database_errors_are_not_retried(tmp_path, monkeypatch):
    pauses = []
    monkeypatch.setattr(ledger_mod, "_sleep", lambda s: pauses.append(s))
    led = BudgetLedger(_engine(tmp_path / "empty.db"))  # no tables
    with pytest.raises(WorkspaceError, match="unreadable.*no such table"):
        _reserve(led)
    assert pauses == []


def test_backoff_is_jittered_and_capped():
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=0.4)
    for attempt, top in ((1, 0.1), (2, 0.2), (3, 0.4), (9, 0.4)):
        pauses = [policy.delay(attempt) for _ in range(50)]
        assert all(top / 2 <= p <= top for p in pauses)
        assert len(set(pauses)) > 1  # jittered, not lockstep
