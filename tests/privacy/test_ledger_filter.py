"""The ledger as a privacy filter: the order, adaptive sequences, the demo's runs, old ledgers."""
from __future__ import annotations

import bisect
import functools
import math
import multiprocessing as mp
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as tally
from hypothesis import strategies as st
from sqlalchemy import create_engine, event, inspect

from privacy.accounting import DEFAULT_ORDERS, conversion_term, rdp_curve, rdp_to_epsilon
from privacy.errors import BudgetExceeded, InputError
from privacy.filter import FilterCap, choose_order, rdp_budget
from privacy.ledger import BudgetLedger

ORDERS = list(DEFAULT_ORDERS)
DELTA = 1e-5


def _engine(path):
    return create_engine(f"sqlite:///{path}", connect_args={"timeout": 60})


def _new_ledger(path) -> BudgetLedger:
    led = BudgetLedger(_engine(path))
    led.create_tables()
    return led


def _fast_ledger(path) -> BudgetLedger:
    """A real SQLite ledger without fsync: for properties about what is admitted, not durability."""
    engine = _engine(path)
    event.listen(engine, "connect", lambda dbapi_conn, _: dbapi_conn.execute("PRAGMA synchronous=OFF"))
    led = BudgetLedger(engine)
    led.create_tables()
    return led


def _snapshot(path) -> list:
    with sqlite3.connect(path) as conn:
        return [conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in ("budgets", "ledger_entries")]


# -- the order ---------------------------------------------------------------------
def test_order_for_the_demo_cap_maximises_the_gaussian_slope():
    alpha = choose_order(3.0, DELTA)
    assert alpha == 8.0  # B/alpha: 0.2228 at 7, 0.2232 at 8, 0.2170 at 9
    slopes = {a: rdp_budget(a, 3.0, DELTA) / a for a in ORDERS}
    assert slopes[alpha] == max(slopes.values())
    # ... so for Gaussian runs of any noise, no other grid order fits more of them
    for sigma in (2.0, 5.0, 20.0):
        fits = {a: math.floor(rdp_budget(a, 3.0, DELTA) / (a / (2 * sigma**2))) for a in ORDERS}
        assert fits[alpha] == max(fits.values())


def test_order_depends_on_the_cap_only_and_a_useless_cap_is_refused():
    assert choose_order(1.0, 1e-6) > choose_order(3.0, 1e-6) > choose_order(8.0, 1e-6)
    assert FilterCap.fix(3.0, DELTA, 0.2).order == choose_order(2.4, 0.8 * DELTA)
    with pytest.raises(InputError, match="no Renyi budget"):
        choose_order(1e-3, 1e-12)


# -- adaptive sequences --------------------------------------------------------------
SIGMAS = (0.7, 1.0, 1.5, 2.5, 4.0, 7.0)
RATES = (0.004, 0.02, 0.1, 0.3, 1.0)


@functools.lru_cache(maxsize=None)
def _one_step(sigma: float, q: float) -> tuple[float, ...]:
    return tuple(rdp_curve(sigma, q, 1))  # RDP composes over steps: a run is steps x this


def _charge_at(curve: list[float], alpha: float) -> float:
    i = bisect.bisect_left(ORDERS, alpha)
    return curve[i]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cap=st.sampled_from([(1.0, 1e-6), (3.0, 1e-5), (8.0, 1e-5)]),
    share=st.sampled_from([0.0, 0.3]),
    moves=st.lists(st.tuples(st.integers(0, 10_000), st.floats(0.0, 1.0)), min_size=1, max_size=14),
)
def test_adaptive_sequences_never_cross_the_cap(cap, share, moves):
    """Each run's sigma, q, steps (and whether it is a curve or a basic run, or whether the
    analyst releases a reservation) are functions of what was admitted and refused so far.
    Whatever the sequence: every admitted set stays inside both filters, its conversion
    stays inside the cap, a refusal happens only when the run does not fit, and a
    refusal writes nothing."""
    eps_cap, delta_cap = cap
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "l.db"
        led = _fast_ledger(db)
        led.set_cap("lin", "u", eps_cap, delta_cap, basic_share=share)
        f = FilterCap.fix(eps_cap, delta_cap, share)
        active: dict[str, tuple[float | None, float, float]] = {}  # uid -> (charge, basic eps, basic delta)
        open_: list[str] = []  # reserved, not committed: the ones that may still be released
        refused = 0
        for i, (k, u) in enumerate(moves):
            history = len(active) * 7 + refused * 3 + int(sum(c or 0 for c, _, _ in active.values()) * 97)
            uid = f"r{i}"
            if open_ and (k + history) % 9 == 0:  # an analyst gives back a run that never started
                led.release(open_[-1])
                del active[open_.pop()]
                continue
            if share and (k + history) % 4 == 0:  # a group-bounded run: no curve
                eps, dlt = round(u * eps_cap * share * 0.6, 6), delta_cap * share * u * 0.4
                charge, curve = None, None
            else:
                sigma = SIGMAS[(k + history) % len(SIGMAS)]
                q = RATES[(k // 7 + refused) % len(RATES)]
                steps = 1 + (k * (1 + len(active))) % 300
                curve = [steps * x for x in _one_step(sigma, q)]
                eps, dlt = max(1e-3, rdp_to_epsilon(ORDERS, curve, delta_cap)), delta_cap * u
                charge = _charge_at(curve, f.order)
            before = _snapshot(db)
            rdp_now = math.fsum(c for c, _, _ in active.values() if c is not None)
            eb_now = math.fsum(e for c, e, _ in active.values() if c is None)
            db_now = math.fsum(d for c, _, d in active.values() if c is None)
            if charge is None:
                fits = eb_now + eps <= f.basic_epsilon and db_now + dlt <= f.basic_delta
            else:
                fits = rdp_now + charge <= f.rdp_budget
            try:
                led.reserve(lineage_id="lin", unit="u", run_uid=uid, epsilon=eps, delta=dlt,
                            orders=None if curve is None else ORDERS, rdp=curve)
            except BudgetExceeded:
                assert not fits  # refused only when it does not fit
                assert _snapshot(db) == before  # and nothing was written
                refused += 1
                tally("refused " + ("basic" if charge is None else "curve"))
                continue
            assert fits
            tally("admitted " + ("basic" if charge is None else "curve"))
            active[uid] = (charge, eps if charge is None else 0.0, dlt if charge is None else 0.0)
            if k % 3 == 0:  # the run finishes; it spent what it planned
                led.commit(run_uid=uid, epsilon=eps, orders=None if curve is None else ORDERS, rdp=curve)
            else:
                open_.append(uid)

            # the guarantee of everything admitted so far
            rho = math.fsum(c for c, _, _ in active.values() if c is not None)
            eps_b = math.fsum(e for c, e, _ in active.values() if c is None)
            delta_b = math.fsum(d for c, _, d in active.values() if c is None)
            assert rho <= f.rdp_budget and eps_b <= f.basic_epsilon and delta_b <= f.basic_delta
            eps_rdp = rdp_to_epsilon([f.order], [rho], (1 - share) * delta_cap)
            assert eps_rdp <= (1 - share) * eps_cap * (1 + 1e-12)
            assert eps_rdp + eps_b <= eps_cap * (1 + 1e-12)
            status = led.status("lin", "u")
            assert status.rdp_spent + status.rdp_reserved == pytest.approx(rho)
            assert status.composed_epsilon <= eps_cap * (1 + 1e-12)


# -- the demo's runs ------------------------------------------------------------------
def test_clinic_demo_keeps_six_runs_under_its_cap(tmp_path):
    """The clinic demo: cap (3, 1e-5); each run a PRV-calibrated epsilon=1 DP-SGD run over
    ~9,400 patients, batch 1024, 20 epochs. Six fit, as under the old (invalid) gate."""
    from training.trainer import TrainConfig, plan

    p = plan(9_400, TrainConfig(target="readmitted", batch_size=1024, epochs=20, epsilon=1.0, delta=DELTA))
    orders, rdp = p.ledger_curve()
    assert orders is not None and 0.98 <= p.epsilon <= 1.0
    led = _new_ledger(tmp_path / "l.db")
    led.set_cap("clinic", "patient_id", 3.0, DELTA)
    admitted = 0
    while admitted < 20:
        try:
            led.reserve(lineage_id="clinic", unit="patient_id", run_uid=f"run-{admitted}",
                        epsilon=p.epsilon, delta=DELTA, orders=orders, rdp=rdp)
        except BudgetExceeded:
            break
        admitted += 1
    st_ = led.status("clinic", "patient_id")
    assert admitted == 6 and st_.order == 8.0
    # the filter's guarantee for the whole adaptive sequence
    assert st_.rdp_reserved <= st_.rdp_budget
    assert rdp_to_epsilon([st_.order], [st_.rdp_reserved], DELTA) <= 3.0
    # before: the old gate (sum of curves, best order after the fact) also stopped at six
    old = [rdp_to_epsilon(orders, [n * x for x in rdp], DELTA) for n in range(1, 10)]
    assert sum(e <= 3.0 for e in old) == 6


# -- migration of ledgers written before the filter -----------------------------------
OLD_SCHEMA = """
CREATE TABLE budgets (
    id INTEGER NOT NULL, lineage_id VARCHAR(64) NOT NULL, unit VARCHAR(200) NOT NULL,
    epsilon_cap FLOAT NOT NULL, delta_cap FLOAT NOT NULL,
    created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL,
    PRIMARY KEY (id), CONSTRAINT uq_budgets_lineage_unit UNIQUE (lineage_id, unit));
CREATE TABLE ledger_entries (
    id INTEGER NOT NULL, budget_id INTEGER NOT NULL, run_uid VARCHAR(128) NOT NULL,
    state VARCHAR(16) NOT NULL, epsilon FLOAT NOT NULL, target_epsilon FLOAT NOT NULL,
    delta FLOAT NOT NULL, orders TEXT, rdp TEXT, reserved_at DATETIME NOT NULL,
    committed_at DATETIME, released_at DATETIME,
    PRIMARY KEY (id), FOREIGN KEY(budget_id) REFERENCES budgets (id), UNIQUE (run_uid));
CREATE INDEX ix_ledger_entries_budget_id ON ledger_entries (budget_id);
"""
T0, T1 = "2026-01-01 10:00:00.000000", "2026-02-01 10:00:00.000000"
GAUSS = [a / 32 for a in ORDERS]  # sigma = 4


def _old_ledger(path, budgets_rows, entries):
    """A ledger file exactly as the code before the filter wrote it (raw SQL)."""
    import json

    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)
        for bid, lineage, unit, eps, dlt, updated in budgets_rows:
            conn.execute("INSERT INTO budgets VALUES (?,?,?,?,?,?,?)", (bid, lineage, unit, eps, dlt, T0, updated))
        for i, (bid, uid, state, eps, dlt, curve) in enumerate(entries, 1):
            conn.execute(
                "INSERT INTO ledger_entries VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (i, bid, uid, state, eps, eps, dlt, None if curve is None else json.dumps(ORDERS),
                 None if curve is None else json.dumps(curve), T0, T1 if state == "committed" else None,
                 T1 if state == "released" else None))


def test_old_ledger_is_migrated_on_first_use(tmp_path):
    db = tmp_path / "old.db"
    _old_ledger(db, [(1, "clinic", "patient_id", 3.0, DELTA, T0)], [
        (1, "a", "committed", 0.9, DELTA, GAUSS),
        (1, "b", "reserved", 0.9, DELTA, GAUSS),
        (1, "g", "committed", 0.4, 1e-6, None),  # a group-bounded run: basic composition
        (1, "x", "released", 0.9, DELTA, GAUSS),
    ])
    led = BudgetLedger(_engine(db))
    st_ = led.status("clinic", "patient_id")  # first use: migrates

    cols = {c["name"] for c in inspect(led.engine).get_columns("budgets")}
    assert {"rdp_order", "basic_share", "needs_decision", "note"} <= cols
    assert "uq_budgets_lineage" in {i["name"] for i in inspect(led.engine).get_indexes("budgets")}
    [note] = led.migration_notes
    assert note.action == "fixed-order" and note.lineage_id == "clinic" and "\n" not in note.message
    share = max(0.4 / 3.0, 1e-6 / DELTA)  # the smallest share that covers the basic run
    assert st_.basic_share == pytest.approx(share, rel=1e-12) and st_.basic_share * DELTA >= 1e-6
    f = FilterCap.fix(3.0, DELTA, st_.basic_share)
    assert st_.order == f.order and st_.note == note.message and st_.needs_decision is None
    assert st_.rdp_spent == f.order / 32 and st_.rdp_reserved == f.order / 32  # every entry charged at the order
    assert st_.basic_epsilon_spent == 0.4 and [r.rdp_charge for r in st_.runs] == [f.order / 32, f.order / 32, None,
                                                                                 f.order / 32]
    # the migrated ledger works as a filter from here on
    fits = int((f.rdp_budget - 2 * f.order / 32) // (f.order / 32))
    for i in range(fits):
        led.reserve(lineage_id="clinic", unit="patient_id", run_uid=f"n{i}", epsilon=0.9, delta=DELTA,
                    orders=ORDERS, rdp=GAUSS)
    with pytest.raises(BudgetExceeded):
        led.reserve(lineage_id="clinic", unit="patient_id", run_uid="over", epsilon=0.9, delta=DELTA,
                    orders=ORDERS, rdp=GAUSS)
    # idempotent: a second ledger on the same file finds nothing to do
    again = BudgetLedger(_engine(db))
    assert again.migrate() == [] and again.status("clinic", "patient_id").order == f.order


def test_old_ledger_that_does_not_fit_needs_an_admin_decision(tmp_path):
    db = tmp_path / "old.db"
    heavy = [a / 2 for a in ORDERS]  # sigma = 1: far beyond the filter's budget at its order
    _old_ledger(db, [(1, "clinic", "patient_id", 3.0, DELTA, T0)], [(1, "a", "committed", 2.9, DELTA, heavy)])
    led = BudgetLedger(_engine(db))
    [note] = led.migrate()
    assert note.action == "needs-decision" and "privgov policy bind" in note.message
    before = _snapshot(db)
    with pytest.raises(BudgetExceeded, match="needs an admin decision"):
        led.reserve(lineage_id="clinic", unit="patient_id", run_uid="next", epsilon=0.1, delta=DELTA,
                    orders=ORDERS, rdp=[x / 100 for x in GAUSS])
    assert _snapshot(db) == before
    led.set_cap("clinic", "patient_id", 3.0, DELTA)  # the same cap again: still refused
    assert led.status("clinic", "patient_id").needs_decision
    led.set_cap("clinic", "patient_id", 12.0, DELTA, allow_change=True)  # the admin raises the cap
    assert led.status("clinic", "patient_id").needs_decision is None
    led.reserve(lineage_id="clinic", unit="patient_id", run_uid="next", epsilon=0.1, delta=DELTA,
                orders=ORDERS, rdp=[x / 100 for x in GAUSS])


def test_old_per_unit_budgets_merge_when_one_unit_was_charged(tmp_path):
    db = tmp_path / "old.db"
    _old_ledger(db, [(1, "clinic", "patient_id", 3.0, DELTA, T0), (2, "clinic", "row", 3.0, DELTA, T1),
                     (3, "adult", "row", 2.0, DELTA, T0), (4, "adult", "person", 5.0, DELTA, T1)],
                [(1, "a", "committed", 0.9, DELTA, GAUSS), (2, "gone", "released", 0.9, DELTA, GAUSS)])
    led = BudgetLedger(_engine(db))
    notes = {n.lineage_id: n for n in led.migrate() if n.action == "merged-units"}
    assert set(notes) == {"clinic", "adult"}
    assert "unit patient_id" in notes["clinic"].message and "only one with charged runs" in notes["clinic"].message
    assert "last one set" in notes["adult"].message  # no runs anywhere: the latest bind wins
    assert [(b.lineage_id, b.unit, b.epsilon_cap) for b in led.list_budgets()] == [
        ("adult", "person", 5.0), ("clinic", "patient_id", 3.0)]
    clinic = led.status("clinic", "patient_id")
    assert [r.run_uid for r in clinic.runs] == ["a", "gone"]  # the released entry is kept as history
    assert clinic.rdp_spent == clinic.order / 32
    with pytest.raises(InputError, match="one ledger"):
        led.reserve(lineage_id="clinic", unit="row", run_uid="r", epsilon=0.9, delta=DELTA, orders=ORDERS,
                    rdp=GAUSS)


def test_old_per_unit_budgets_charged_under_two_units_are_refused(tmp_path):
    db = tmp_path / "old.db"
    _old_ledger(db, [(1, "clinic", "patient_id", 3.0, DELTA, T0), (2, "clinic", "row", 3.0, DELTA, T1),
                     (3, "adult", "row", 2.0, DELTA, T0)],
                [(1, "a", "committed", 0.9, DELTA, GAUSS), (2, "b", "committed", 0.9, DELTA, GAUSS),
                 (3, "c", "reserved", 0.9, DELTA, GAUSS)])
    led = BudgetLedger(_engine(db))
    notes = {n.lineage_id: n for n in led.migrate()}
    assert notes["clinic"].action == "refused-units" and "patient_id, row" in notes["clinic"].message
    assert notes["adult"].action == "fixed-order"  # other datasets migrate regardless
    before = _snapshot(db)
    for unit in ("patient_id", "row"):
        with pytest.raises(BudgetExceeded, match="needs an admin decision.*different units"):
            led.reserve(lineage_id="clinic", unit=unit, run_uid="next", epsilon=0.1, delta=DELTA,
                        orders=ORDERS, rdp=GAUSS)
        with pytest.raises(InputError, match="different units"):
            led.set_cap("clinic", unit, 5.0, DELTA, allow_change=True)
    assert _snapshot(db) == before
    led.commit(run_uid="c", epsilon=0.9, orders=ORDERS, rdp=GAUSS)  # a run that used data still commits
    led.reserve(lineage_id="adult", unit="row", run_uid="d", epsilon=0.9, delta=DELTA, orders=ORDERS, rdp=GAUSS)


def _first_use_worker(db, i, barrier, results):
    led = BudgetLedger(_engine(db))
    barrier.wait()
    try:
        st_ = led.status("clinic", "patient_id")
        results.put((i, (st_.order, [n.action for n in led.migration_notes])))
    except BaseException as exc:
        results.put((i, repr(exc)))


def test_concurrent_first_use_migrates_once(tmp_path):
    """Several processes open an old ledger at once: one migrates, the others find it done."""
    db = tmp_path / "old.db"
    _old_ledger(db, [(1, "clinic", "patient_id", 3.0, DELTA, T0)], [(1, "a", "committed", 0.9, DELTA, GAUSS)])
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(6), ctx.Queue()
    procs = [ctx.Process(target=_first_use_worker, args=(db, i, barrier, results)) for i in range(6)]
    for p in procs:
        p.start()
    outcomes = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    assert all(isinstance(o, tuple) for o in outcomes.values()), outcomes
    assert {o[0] for o in outcomes.values()} == {choose_order(3.0, DELTA)}
    assert sorted(len(o[1]) for o in outcomes.values()) == [0] * 5 + [1]


def test_conversion_term_is_the_one_rdp_to_epsilon_uses():
    for alpha in (1.5, 8.0, 64.0):
        for rho in (0.0, 0.3, 2.0):
            assert rdp_to_epsilon([alpha], [rho], DELTA) == pytest.approx(rho + conversion_term(alpha, DELTA))
    with pytest.raises(InputError):
        conversion_term(1.0, DELTA)
