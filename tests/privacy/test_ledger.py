"""Budget ledger: concurrent reservations, RDP filter composition, fail-closed."""
from __future__ import annotations

import multiprocessing as mp
import os

import pytest
from sqlalchemy import create_engine

from privacy.accounting import DEFAULT_ORDERS, epsilon_for, rdp_curve, rdp_to_epsilon
from privacy.errors import BudgetExceeded, InputError
from privacy.ledger import BudgetLedger, compose

ORDERS = list(DEFAULT_ORDERS)
DELTA = 1e-5
SIGMA, Q, STEPS = 1.0, 0.01, 200
CURVE = rdp_curve(SIGMA, Q, STEPS)
RUN_EPS = epsilon_for(SIGMA, Q, STEPS, DELTA)


def _engine(path):
    return create_engine(f"sqlite:///{path}", connect_args={"timeout": 60})


@pytest.fixture()
def ledger(tmp_path):
    led = BudgetLedger(_engine(tmp_path / "ledger.db"))
    led.create_tables()
    led.set_cap("lin-1", "patient", 3.0, DELTA)
    return led


def _reserve(led, run_uid, curve=CURVE, eps=RUN_EPS, lineage="lin-1"):
    led.reserve(lineage_id=lineage, unit="patient", run_uid=run_uid, epsilon=eps,
                delta=DELTA, orders=ORDERS, rdp=curve)


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
    # Cap between the RDP-composed totals of 9 and 10 identical runs.
    totals = [rdp_to_epsilon(ORDERS, [n * x for x in CURVE], DELTA) for n in range(1, 33)]
    cap = 2.8
    expected = sum(t <= cap for t in totals)
    assert expected == 9 and totals[expected] > cap + 0.05  # not a rounding edge
    led.set_cap("lin-1", "patient", cap, DELTA)

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
    assert sum(outcomes.values()) == expected

    st = BudgetLedger(_engine(db)).status("lin-1", "patient")
    assert len([r for r in st.runs if r.state == "reserved"]) == expected
    assert st.composed_epsilon <= cap
    assert st.composed_epsilon == pytest.approx(totals[expected - 1])


# -- composition ---------------------------------------------------------------
def test_rdp_composition_beats_naive_sum(ledger):
    for i in range(5):
        _reserve(ledger, f"r{i}")
    st = ledger.status("lin-1", "patient")
    assert st.naive_sum_epsilon == pytest.approx(5 * RUN_EPS)
    assert st.composed_epsilon == pytest.approx(
        rdp_to_epsilon(ORDERS, [5 * x for x in CURVE], DELTA)
    )
    assert st.composed_epsilon < st.naive_sum_epsilon
    assert st.remaining == pytest.approx(3.0 - st.composed_epsilon)


def test_refusal_names_lineage_cap_spent_and_request(ledger):
    for i in range(5):
        _reserve(ledger, f"r{i}")
    before = ledger.status("lin-1", "patient")
    big = rdp_curve(0.7, 0.05, 500)
    with pytest.raises(BudgetExceeded) as info:
        _reserve(ledger, "too-big", curve=big, eps=5.0)
    msg = str(info.value)
    assert "lin-1" in msg and "cap eps=3" in msg and "requested eps=5" in msg
    assert f"{before.composed_epsilon:.4g}" in msg
    assert "\n" not in msg
    assert len(ledger.status("lin-1", "patient").runs) == 5  # nothing written


def test_basic_composition_fallback_and_mixing(ledger):
    ledger.reserve(lineage_id="lin-1", unit="patient", run_uid="b1", epsilon=0.5, delta=1e-6)
    ledger.reserve(lineage_id="lin-1", unit="patient", run_uid="b2", epsilon=0.7, delta=1e-6)
    st = ledger.status("lin-1", "patient")
    assert st.composed_epsilon == pytest.approx(1.2)
    _reserve(ledger, "c1")
    st = ledger.status("lin-1", "patient")
    # RDP part converted at the delta left over after the basic entries.
    expected = 1.2 + rdp_to_epsilon(ORDERS, CURVE, DELTA - 2e-6)
    assert st.composed_epsilon == pytest.approx(expected)
    with pytest.raises(BudgetExceeded):  # basic entries use up delta: refused
        ledger.reserve(lineage_id="lin-1", unit="patient", run_uid="b3", epsilon=0.1, delta=9e-6)


def test_compose_handles_different_order_grids():
    from privacy.ledger import _Entry

    coarse = [2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    a = _Entry(1.0, DELTA, ORDERS, CURVE)
    b = _Entry(1.0, DELTA, coarse, rdp_curve(SIGMA, Q, STEPS, orders=coarse))
    mixed, _ = compose([a, b], DELTA)
    same, _ = compose([a, a], DELTA)
    assert mixed >= same - 1e-9  # upper-bounding b between its orders is conservative
    assert mixed < 1.2 * same


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
    ledger.set_cap("lin-1", "patient", 3.0, DELTA)  # what every run does: same cap, a no-op
    for eps, delta in ((5.0, DELTA), (3.0, 2 * DELTA)):
        with pytest.raises(InputError) as info:
            ledger.set_cap("lin-1", "patient", eps, delta)
        msg = str(info.value)
        assert "lin-1" in msg and "`privgov policy bind DATASET FILE`" in msg and "\n" not in msg
    assert ledger.status("lin-1", "patient").cap == (3.0, DELTA)

    ledger.set_cap("lin-1", "patient", 5.0, DELTA, allow_change=True)  # the admin's rebind
    st = ledger.status("lin-1", "patient")
    assert st.cap == (5.0, DELTA)
    assert [r.run_uid for r in st.runs] == ["r1"] and st.composed_epsilon > 0  # past runs still count


# -- lifecycle -----------------------------------------------------------------
def _crashing_run(db_path):
    led = BudgetLedger(_engine(db_path))
    _reserve(led, "crashy")
    os._exit(17)  # killed before commit


def test_crash_keeps_reservation(tmp_path):
    db = tmp_path / "crash.db"
    led = BudgetLedger(_engine(db))
    led.create_tables()
    two = rdp_to_epsilon(ORDERS, [2 * x for x in CURVE], DELTA)
    led.set_cap("lin-1", "patient", (two + rdp_to_epsilon(ORDERS, CURVE, DELTA)) / 2, DELTA)
    p = mp.get_context("fork").Process(target=_crashing_run, args=(db,))
    p.start()
    p.join(timeout=30)
    assert p.exitcode == 17
    st = led.status("lin-1", "patient")
    assert [(r.run_uid, r.state) for r in st.runs] == [("crashy", "reserved")]
    assert st.reserved > 0 and st.spent == 0
    with pytest.raises(BudgetExceeded):  # would fit only if the crash were forgotten
        _reserve(led, "next")


def test_commit_replaces_target_with_actual(ledger):
    _reserve(ledger, "r1", curve=rdp_curve(SIGMA, Q, 1000), eps=epsilon_for(SIGMA, Q, 1000, DELTA))
    reserved = ledger.status("lin-1", "patient")
    actual_eps = epsilon_for(SIGMA, Q, 400, DELTA)
    ledger.commit(run_uid="r1", epsilon=actual_eps, orders=ORDERS, rdp=rdp_curve(SIGMA, Q, 400))
    st = ledger.status("lin-1", "patient")
    row = st.runs[0]
    assert row.state == "committed" and row.committed_at is not None
    assert row.epsilon == pytest.approx(actual_eps) and row.target_epsilon > actual_eps
    assert st.composed_epsilon == pytest.approx(rdp_to_epsilon(ORDERS, rdp_curve(SIGMA, Q, 400), DELTA))
    assert st.composed_epsilon < reserved.composed_epsilon
    assert st.spent == pytest.approx(st.composed_epsilon) and st.reserved == 0
    with pytest.raises(InputError):
        ledger.commit(run_uid="r1", epsilon=actual_eps)  # already committed
    with pytest.raises(InputError):
        ledger.release("r1")  # a run that used data cannot be released


def test_release_frees_budget_and_errors(ledger):
    _reserve(ledger, "r1")
    ledger.release("r1")
    st = ledger.status("lin-1", "patient")
    assert st.composed_epsilon == 0 and st.runs[0].state == "released"
    with pytest.raises(InputError):
        ledger.release("r1")
    with pytest.raises(InputError):
        ledger.release("nope")
    with pytest.raises(InputError, match="run_uid"):
        _reserve(ledger, "r1")  # run ids are never reused


def test_missing_cap_fails_closed_and_budgets_are_separate(ledger):
    with pytest.raises(BudgetExceeded, match="no privacy budget cap"):
        _reserve(ledger, "x", lineage="other")
    ledger.set_cap("lin-2", "patient", 1.5, DELTA)
    _reserve(ledger, "a", lineage="lin-2")
    assert ledger.status("lin-1", "patient").composed_epsilon == 0
    names = [(b.lineage_id, b.unit) for b in ledger.list_budgets()]
    assert names == [("lin-1", "patient"), ("lin-2", "patient")]


def test_input_validation(ledger):
    with pytest.raises(InputError):
        ledger.set_cap("lin-1", "patient", 0.0, DELTA)
    with pytest.raises(InputError, match="rdp"):
        ledger.reserve(lineage_id="lin-1", unit="patient", run_uid="v", epsilon=1.0,
                       delta=DELTA, orders=ORDERS, rdp=CURVE[:-1])
    with pytest.raises(InputError, match="orders/rdp"):
        ledger.reserve(lineage_id="lin-1", unit="patient", run_uid="v", epsilon=1.0,
                       delta=DELTA, orders=ORDERS)
    with pytest.raises(InputError, match="reservation"):
        ledger.commit(run_uid="never", epsilon=1.0)
