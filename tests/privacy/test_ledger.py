"""Budget ledger: the Rényi filter at a fixed order, one ledger per dataset, fail-closed lifecycle."""
from __future__ import annotations

import math
import multiprocessing as mp
import os

import pytest
from sqlalchemy import create_engine, select

from privacy.accounting import DEFAULT_ORDERS, conversion_term, epsilon_for, rdp_curve, rdp_to_epsilon
from privacy.errors import BudgetExceeded, InputError
from privacy.filter import FilterCap, rdp_at
from privacy.ledger import BudgetLedger, budgets, ledger_entries

ORDERS = list(DEFAULT_ORDERS)
DELTA = 1e-5
SIGMA, Q, STEPS = 1.0, 0.01, 200
CURVE = rdp_curve(SIGMA, Q, STEPS)
RUN_EPS = epsilon_for(SIGMA, Q, STEPS, DELTA)
CAP = FilterCap.fix(3.0, DELTA)
CHARGE = rdp_at(ORDERS, CURVE, CAP.order)
FIT = int(CAP.rdp_budget // CHARGE)  # runs of CURVE under (3, 1e-5)


def _engine(path):
    return create_engine(f"sqlite:///{path}", connect_args={"timeout": 60})


@pytest.fixture()
def ledger(request, tmp_path, db_backend):
    """A ledger with cap (3, 1e-5) for lin-1, on SQLite or in a fresh PostgreSQL schema."""
    if db_backend == "postgresql":
        led = BudgetLedger(request.getfixturevalue("pg_server").fresh_schema_engine())
    else:
        led = BudgetLedger(_engine(tmp_path / "ledger.db"))
    led.create_tables()
    led.set_cap("lin-1", "patient", 3.0, DELTA)
    return led


def _reserve(led, run_uid, curve=CURVE, eps=RUN_EPS, lineage="lin-1", unit="patient"):
    led.reserve(lineage_id=lineage, unit=unit, run_uid=run_uid, epsilon=eps,
                delta=DELTA, orders=ORDERS, rdp=curve)


def _rows(led):
    """Every row of both tables: what a refusal must leave untouched."""
    with led.engine.connect() as conn:
        return (conn.execute(select(budgets).order_by(budgets.c.id)).all(),
                conn.execute(select(ledger_entries).order_by(ledger_entries.c.id)).all())


# -- concurrency ---------------------------------------------------------------
def _race_worker(db_path, i, barrier, results):
    led = BudgetLedger(_engine(db_path))
    barrier.wait()
    try:
        _reserve(led, f"run-{i}")
        results.put((i, True))
    except BudgetExceeded:
        results.put((i, False))
    except Exception as exc:  # surfaced to the parent as a failure
        results.put((i, repr(exc)))


def test_32_processes_never_overspend(tmp_path):
    db = tmp_path / "race.db"
    led = BudgetLedger(_engine(db))
    led.create_tables()
    led.set_cap("lin-1", "patient", 3.0, DELTA)
    assert 8 <= FIT <= 30 and CAP.rdp_budget / CHARGE - FIT > 0.05  # not a rounding edge

    # fork: children inherit the already-imported opacus (importing torch 32x on
    # a small machine would dominate the test); each opens its own engine.
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(32)
    results = ctx.Queue()
    procs = [ctx.Process(target=_race_worker, args=(db, i, barrier, results)) for i in range(32)]
    for p in procs:
        p.start()
    outcomes = dict(results.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    assert all(v in (True, False) for v in outcomes.values()), outcomes
    assert sum(outcomes.values()) == FIT

    st = BudgetLedger(_engine(db)).status("lin-1", "patient")
    assert len([r for r in st.runs if r.state == "reserved"]) == FIT
    assert st.rdp_reserved <= st.rdp_budget
    assert rdp_to_epsilon([st.order], [st.rdp_reserved], DELTA) <= 3.0


# -- the filter ------------------------------------------------------------------
def test_runs_are_charged_at_the_order_fixed_with_the_cap(ledger):
    st = ledger.status("lin-1", "patient")
    assert (st.order, st.basic_share) == (CAP.order, 0.0)
    assert st.rdp_budget == pytest.approx(3.0 - conversion_term(CAP.order, DELTA))
    assert (st.spent, st.reserved, st.composed_epsilon, st.remaining) == (0, 0, 0, 3.0)
    for i in range(3):
        _reserve(ledger, f"r{i}")
    st = ledger.status("lin-1", "patient")
    assert [r.rdp_charge for r in st.runs] == [CHARGE] * 3
    assert st.rdp_reserved == pytest.approx(3 * CHARGE) and st.rdp_spent == 0
    assert st.rdp_remaining == pytest.approx(st.rdp_budget - 3 * CHARGE)
    # epsilon shown = the conversion, at the fixed order and delta_cap, of what was admitted
    assert st.composed_epsilon == pytest.approx(rdp_to_epsilon([CAP.order], [3 * CHARGE], DELTA))
    assert st.remaining == pytest.approx(3.0 - st.composed_epsilon)
    assert st.naive_sum_epsilon == pytest.approx(3 * RUN_EPS)


def test_fills_exactly_to_the_budget_then_refuses(ledger):
    for i in range(FIT):
        _reserve(ledger, f"r{i}")
    st = ledger.status("lin-1", "patient")
    assert st.rdp_reserved <= st.rdp_budget < st.rdp_reserved + CHARGE
    before = _rows(ledger)
    with pytest.raises(BudgetExceeded):
        _reserve(ledger, "one-too-many")
    assert _rows(ledger) == before


def test_best_order_after_the_fact_no_longer_decides(ledger):
    """A run that is cheap at some other order but expensive at the ledger's order is charged
    at the ledger's order: the old gate (min over orders of the sum) would have admitted it."""
    steep = [0.0 if a < CAP.order else 10.0 for a in ORDERS]  # valid shape: non-decreasing in the order
    assert rdp_to_epsilon(ORDERS, steep, DELTA) < 3.0  # best order after the fact: would fit
    with pytest.raises(BudgetExceeded, match=f"order {CAP.order:g}"):
        _reserve(ledger, "steep", curve=steep, eps=0.5)


def test_refusal_names_lineage_cap_order_spent_and_request(ledger):
    for i in range(5):
        _reserve(ledger, f"r{i}")
    big = rdp_curve(0.7, 0.05, 500)
    before = _rows(ledger)
    with pytest.raises(BudgetExceeded) as info:
        _reserve(ledger, "too-big", curve=big, eps=5.0)
    msg = str(info.value)
    assert "lin-1" in msg and "cap eps=3" in msg and "requested eps=5" in msg
    assert f"order {CAP.order:g}" in msg and f"{CAP.rdp_budget:.4g}" in msg and f"{5 * CHARGE:.4g}" in msg
    assert "\n" not in msg
    assert _rows(ledger) == before  # nothing written


def test_run_without_curve_is_refused_without_a_basic_share(ledger):
    before = _rows(ledger)
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve(lineage_id="lin-1", unit="patient", run_uid="b1", epsilon=0.5, delta=1e-6)
    msg = str(info.value)
    assert "basic_share" in msg and "no RDP curve" in msg and "\n" not in msg
    assert _rows(ledger) == before


def test_basic_share_is_its_own_filter(tmp_path):
    led = BudgetLedger(_engine(tmp_path / "l.db"))
    led.create_tables()
    led.set_cap("lin", "patient", 3.0, DELTA, basic_share=0.25)  # basic: eps 0.75, delta 2.5e-6
    cap = FilterCap.fix(3.0, DELTA, 0.25)
    st = led.status("lin", "patient")
    assert (st.basic_share, st.order) == (0.25, cap.order)
    assert st.rdp_budget == pytest.approx(2.25 - conversion_term(cap.order, 0.75 * DELTA))
    for uid, eps, dlt in (("b1", 0.5, 1e-6), ("b2", 0.25, 1.5e-6)):  # fills the share exactly
        led.reserve(lineage_id="lin", unit="patient", run_uid=uid, epsilon=eps, delta=dlt)
    for uid, eps, dlt in (("b3", 0.01, 0.0), ("b4", 0.0, 1e-9)):
        with pytest.raises(BudgetExceeded, match="basic-composition share"):
            led.reserve(lineage_id="lin", unit="patient", run_uid=uid, epsilon=eps, delta=dlt)
    gauss = [a / 32 for a in ORDERS]  # Gaussian mechanism, sigma = 4
    _reserve(led, "c1", curve=gauss, lineage="lin")  # the Renyi filter is untouched by the basic runs
    st = led.status("lin", "patient")
    assert st.basic_epsilon_reserved == pytest.approx(0.75) and st.basic_delta_reserved == pytest.approx(2.5e-6)
    assert st.rdp_reserved == cap.order / 32
    assert st.composed_epsilon == pytest.approx(0.75 + rdp_to_epsilon([cap.order], [st.rdp_reserved], 0.75 * DELTA))
    assert st.remaining == pytest.approx(2.25 - (st.composed_epsilon - 0.75))


def test_a_curve_is_read_conservatively_at_the_order():
    coarse = [2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    curve = rdp_curve(SIGMA, Q, STEPS, orders=coarse)
    for alpha in (3.0, 4.0, 7.5, 9.0):
        nxt = min(a for a in coarse if a >= alpha)
        assert rdp_at(coarse, curve, alpha) == curve[coarse.index(nxt)]  # never interpolated downward
        assert rdp_at(coarse, curve, alpha) >= rdp_curve(SIGMA, Q, STEPS, orders=[alpha])[0]
    assert rdp_at(coarse, curve, 65.0) == math.inf


def test_curve_that_stops_below_the_order_is_refused(ledger):
    short = [a for a in ORDERS if a < CAP.order]
    with pytest.raises(BudgetExceeded, match="stops below"):
        ledger.reserve(lineage_id="lin-1", unit="patient", run_uid="s", epsilon=0.1, delta=DELTA,
                       orders=short, rdp=[0.0] * len(short))


def test_rdp_to_epsilon_matches_opacus():
    """The ledger's gate converts RDP in plain math (no torch under the write lock);
    it must agree with Opacus' `get_privacy_spent`, including infinite RDP values."""
    import warnings

    from opacus.accountants.analysis.rdp import get_privacy_spent

    inf = float("inf")
    curves = [
        (ORDERS, CURVE),
        (ORDERS, [7 * x for x in CURVE]),
        (ORDERS, rdp_curve(0.7, 0.05, 500)),
        ([2.0, 4.0, 8.0], [0.1, 0.3, inf]),
        ([1.5, 3.0], [inf, inf]),
    ]
    for delta in (1e-7, DELTA, 1e-2):
        for orders, rdp in curves:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected, _ = get_privacy_spent(orders=orders, rdp=rdp, delta=delta)
            assert rdp_to_epsilon(orders, rdp, delta) == pytest.approx(float(expected), rel=1e-12)


# -- caps --------------------------------------------------------------------------
def test_cap_change_needs_allow_change(ledger):
    _reserve(ledger, "r1")
    ledger.set_cap("lin-1", "patient", 3.0, DELTA)  # same cap: a no-op
    for eps, delta, share in ((5.0, DELTA, None), (3.0, 2 * DELTA, None), (3.0, DELTA, 0.1)):
        with pytest.raises(InputError) as info:
            ledger.set_cap("lin-1", "patient", eps, delta, basic_share=share)
        msg = str(info.value)
        assert "lin-1" in msg and "`privgov policy bind DATASET FILE`" in msg and "\n" not in msg
    assert ledger.status("lin-1", "patient").cap == (3.0, DELTA)

    ledger.set_cap("lin-1", "patient", 5.0, DELTA, allow_change=True)  # the admin's rebind
    st = ledger.status("lin-1", "patient")
    old = FilterCap.fix(3.0, DELTA)
    assert st.cap == (5.0, DELTA) and st.order == old.order  # runs were admitted: the order stays fixed
    assert [r.run_uid for r in st.runs] == ["r1"]
    assert st.rdp_reserved == rdp_at(ORDERS, CURVE, old.order)  # past runs still count, at that order
    ledger.set_cap("lin-1", "patient", 5.0, DELTA, allow_change=True, basic_share=0.2)
    assert ledger.status("lin-1", "patient").basic_share == 0.2
    ledger.set_cap("lin-1", "patient", 5.0, DELTA, allow_change=True)  # None keeps the recorded share
    assert ledger.status("lin-1", "patient").basic_share == 0.2


def test_lowering_the_cap_below_what_was_admitted_refuses_until_raised(ledger):
    for i in range(3):
        _reserve(ledger, f"r{i}")
    ledger.set_cap("lin-1", "patient", 1.2, DELTA, allow_change=True)
    st = ledger.status("lin-1", "patient")
    assert st.needs_decision and st.remaining == 0 and st.rdp_remaining == 0
    with pytest.raises(BudgetExceeded, match="needs an admin decision"):
        _reserve(ledger, "tiny", curve=[x / 1000 for x in CURVE], eps=0.01)
    ledger.set_cap("lin-1", "patient", 3.0, DELTA, allow_change=True)
    assert ledger.status("lin-1", "patient").needs_decision is None
    _reserve(ledger, "tiny", curve=[x / 1000 for x in CURVE], eps=0.01)


def test_cap_that_leaves_no_renyi_budget_is_refused(tmp_path):
    led = BudgetLedger(_engine(tmp_path / "l.db"))
    led.create_tables()
    with pytest.raises(InputError, match="no Renyi budget"):
        led.set_cap("lin", "patient", 0.001, 1e-12)
    assert led.list_budgets() == []


# -- one ledger per dataset ----------------------------------------------------------
def test_one_ledger_per_dataset_whatever_the_unit(ledger):
    _reserve(ledger, "r1")
    before = _rows(ledger)
    with pytest.raises(InputError, match="one ledger, for privacy unit patient"):
        ledger.set_cap("lin-1", "row", 3.0, DELTA)
    with pytest.raises(InputError, match="one ledger, for privacy unit patient"):
        ledger.set_cap("lin-1", "row", 3.0, DELTA, allow_change=True)  # not even an admin: it has runs
    with pytest.raises(InputError, match="unit row is refused"):
        _reserve(ledger, "r2", unit="row")  # leaving out the unit no longer opens a fresh budget
    assert _rows(ledger) == before
    st = ledger.status("lin-1", "row")  # the one ledger, named with its recorded unit
    assert st.unit == "patient" and [r.run_uid for r in st.runs] == ["r1"]
    assert [(b.lineage_id, b.unit) for b in ledger.list_budgets()] == [("lin-1", "patient")]


def test_admin_may_relabel_the_unit_of_a_ledger_without_entries(ledger):
    """`policy bind` may narrow a dataset from rows to a unit before anything is stored."""
    with pytest.raises(InputError):
        ledger.set_cap("lin-1", "patient_id", 3.0, DELTA)
    ledger.set_cap("lin-1", "patient_id", 3.0, DELTA, allow_change=True)
    assert [(b.lineage_id, b.unit) for b in ledger.list_budgets()] == [("lin-1", "patient_id")]
    _reserve(ledger, "r1", unit="patient_id")


# -- lifecycle -----------------------------------------------------------------
def _crashing_run(db_path):
    led = BudgetLedger(_engine(db_path))
    _reserve(led, "crashy")
    os._exit(17)  # killed before commit


def test_crash_keeps_reservation(tmp_path):
    db = tmp_path / "crash.db"
    led = BudgetLedger(_engine(db))
    led.create_tables()
    led.set_cap("lin-1", "patient", 3.0, DELTA)
    for i in range(FIT - 1):  # committed runs; the crashing run takes the last place
        _reserve(led, f"done-{i}")
        led.commit(run_uid=f"done-{i}", epsilon=RUN_EPS, orders=ORDERS, rdp=CURVE)
    p = mp.get_context("fork").Process(target=_crashing_run, args=(db,))
    p.start()
    p.join(timeout=30)
    assert p.exitcode == 17
    st = led.status("lin-1", "patient")
    assert (st.runs[-1].run_uid, st.runs[-1].state) == ("crashy", "reserved")
    assert st.reserved > 0 and st.rdp_reserved == CHARGE and st.rdp_spent == pytest.approx((FIT - 1) * CHARGE)
    with pytest.raises(BudgetExceeded):  # would fit only if the crash were forgotten
        _reserve(led, "next")


def test_commit_replaces_target_with_actual(ledger):
    _reserve(ledger, "r1", curve=rdp_curve(SIGMA, Q, 1000), eps=epsilon_for(SIGMA, Q, 1000, DELTA))
    reserved = ledger.status("lin-1", "patient")
    actual_eps = epsilon_for(SIGMA, Q, 400, DELTA)
    actual = rdp_curve(SIGMA, Q, 400)
    ledger.commit(run_uid="r1", epsilon=actual_eps, orders=ORDERS, rdp=actual)
    st = ledger.status("lin-1", "patient")
    row = st.runs[0]
    assert row.state == "committed" and row.committed_at is not None
    assert row.epsilon == pytest.approx(actual_eps) and row.target_epsilon > actual_eps
    assert row.rdp_charge == rdp_at(ORDERS, actual, CAP.order)
    assert st.rdp_spent == row.rdp_charge and st.rdp_reserved == 0
    assert st.spent == pytest.approx(rdp_to_epsilon([CAP.order], [row.rdp_charge], DELTA))
    assert st.epsilon_spent == st.spent == pytest.approx(st.composed_epsilon) and st.reserved == 0
    assert st.composed_epsilon < reserved.composed_epsilon
    with pytest.raises(InputError):
        ledger.commit(run_uid="r1", epsilon=actual_eps)  # already committed
    with pytest.raises(InputError):
        ledger.release("r1")  # a run that used data cannot be released


def test_release_frees_budget_and_errors(ledger):
    _reserve(ledger, "r1")
    ledger.release("r1")
    st = ledger.status("lin-1", "patient")
    assert st.composed_epsilon == 0 and st.rdp_reserved == 0 and st.runs[0].state == "released"
    with pytest.raises(InputError):
        ledger.release("r1")
    with pytest.raises(InputError):
        ledger.release("nope")
    with pytest.raises(InputError, match="run_uid"):
        _reserve(ledger, "r1")  # run ids are never reused


def test_status_has_no_negative_figures(ledger):
    """The old status let `naive - composed` go negative ("composition saves -0.09");
    every figure the ledger reports is a quantity, never a negative saving."""
    _reserve(ledger, "r1")
    ledger.commit(run_uid="r1", epsilon=RUN_EPS, orders=ORDERS, rdp=CURVE)
    _reserve(ledger, "r2")
    st = ledger.status("lin-1", "patient")
    numbers = {k: v for k, v in vars(st).items() if isinstance(v, float)}
    assert all(v >= 0 for v in numbers.values()), numbers
    assert not any("sav" in k for k in vars(st))


def test_commit_returns_the_ledger_before_and_after_as_status_reports_it(ledger):
    """The card's budget lines are read in the commit's transaction and agree with `status`:
    the next run's "before" is this run's "after", and the spend only grows."""
    facts = []
    for uid in ("r1", "r2"):
        _reserve(ledger, uid)
        spent_before = ledger.status("lin-1", "patient").spent
        facts.append(ledger.commit(run_uid=uid, epsilon=RUN_EPS, orders=ORDERS, rdp=CURVE))
        assert facts[-1].epsilon_before == pytest.approx(spent_before, abs=0)
        assert facts[-1].epsilon_after == pytest.approx(ledger.status("lin-1", "patient").spent, abs=0)
    first, second = facts
    assert first.epsilon_before == 0.0 and second.epsilon_before == first.epsilon_after
    assert 0 <= first.epsilon_before < first.epsilon_after < second.epsilon_after
    assert first.order == second.order == ledger.status("lin-1", "patient").order
    assert (first.run_epsilon, first.run_delta, first.composition) == (RUN_EPS, DELTA, "renyi-filter")


def test_missing_cap_fails_closed_and_budgets_are_separate(ledger):
    with pytest.raises(BudgetExceeded, match="no privacy budget cap"):
        _reserve(ledger, "x", lineage="other")
    ledger.set_cap("lin-2", "patient", 3.0, DELTA)
    _reserve(ledger, "a", lineage="lin-2")
    assert ledger.status("lin-1", "patient").composed_epsilon == 0
    names = [(b.lineage_id, b.unit) for b in ledger.list_budgets()]
    assert names == [("lin-1", "patient"), ("lin-2", "patient")]


def test_input_validation(ledger):
    with pytest.raises(InputError):
        ledger.set_cap("lin-1", "patient", 0.0, DELTA)
    for share in (-0.1, 1.0, "half"):
        with pytest.raises(InputError, match="basic_share"):
            ledger.set_cap("lin-1", "patient", 3.0, DELTA, basic_share=share)
    with pytest.raises(InputError, match="rdp"):
        ledger.reserve(lineage_id="lin-1", unit="patient", run_uid="v", epsilon=1.0,
                       delta=DELTA, orders=ORDERS, rdp=CURVE[:-1])
    with pytest.raises(InputError, match="orders/rdp"):
        ledger.reserve(lineage_id="lin-1", unit="patient", run_uid="v", epsilon=1.0,
                       delta=DELTA, orders=ORDERS)
    with pytest.raises(InputError, match="reservation"):
        ledger.commit(run_uid="never", epsilon=1.0)
