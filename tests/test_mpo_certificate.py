"""Certified rungs of the MPO ladder (mpsync/solvers/mpo/ladder.py, issue 19).

Every rung measures its distance from L rho = 0 with the two-site projected residual
(``TDVP.projected_residual``), independently of the one-site flow that brought it to its
fixed point. These tests check that the certificate tracks the true error against the
exact solver, that a rung stopped at a wrong state is caught and repaired or left out,
that a single rung says it has no error bar, and that the error bar is never built from
clipped zeros.
"""

import json
import warnings

import numpy as np
import pytest

import mpsync
from mpsync import DipoleSystem
from mpsync.errors import ConvergenceError, ConvergenceWarning, NoErrorBarWarning, StrongExchangeWarning
from mpsync.solvers.mpo import ladder, tdvp
from mpsync.solvers.mpo.liouvillian import residual_norm
from mpsync.solvers.mpo.prepare import build_mpo

CHAIN8 = DipoleSystem.chain(8, 0.1, "magic", W=2.0)


@pytest.fixture(scope="module")
def exact8():
    return mpsync.steady_state(CHAIN8, method="exact")


@pytest.fixture(scope="module")
def ladder8():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return mpsync.steady_state(CHAIN8, method="mpo", ladder=(4, 8, 16, 32), zq_tol=1e-7)


def test_certificate_decreases_along_the_ladder_and_bounds_the_error(ladder8, exact8):
    rungs = ladder8.diagnostics["ladder"]
    assert [r["max_bond"] for r in rungs] == [4, 8, 16, 32]
    assert all(r["certified"] for r in rungs)
    certs = [r["certificate"] for r in rungs]
    assert all(b < a for a, b in zip(certs, certs[1:])), certs
    # the true error is a small multiple of the certificate (measured ratios <= 0.025 at
    # N = 8 and <= 0.007 at N = 30, benchmarks/RESULTS.md); 0.1 leaves room, not slack
    for r in rungs:
        assert abs(r["ZQ"] - float(exact8.ZQ)) <= 0.1 * r["certificate"]
    assert ladder8.diagnostics["certificate"] == pytest.approx(certs[-1])


def test_certificate_is_a_projection_of_the_full_residual():
    """eta_2^2 sums the two-site projections of L rho over N - 1 bonds, so
    eta_2 <= sqrt(N - 1) ||L rho|| / ||rho||, and it vanishes at the exact steady state."""
    system = DipoleSystem.chain(6, 0.1, "magic", W=2.0)
    mpo, _ = build_mpo(system)
    for chi in (4, 16):
        with pytest.warns(NoErrorBarWarning):
            ss = mpsync.steady_state(system, method="mpo", max_bond=chi)
        mps = mpsync.solvers.mpo.from_quimb(ss.state)
        eng = tdvp.TDVP(mpo, mps, max_bond=chi)
        eta = eng.projected_residual()
        full = residual_norm(mpo, mps)
        assert 0 < eta <= np.sqrt(5) * full * (1 + 1e-8)
        assert eta == pytest.approx(ss.diagnostics["certificate"], rel=1e-6)
    # at the full bond 4^3 nothing is truncated: no warning, and the certificate vanishes
    exact_bond = mpsync.steady_state(system, method="mpo", max_bond=64, rung_tol=1e-8)
    assert exact_bond.diagnostics["stop_reason"] == "exact_bond"
    eng = tdvp.TDVP(mpo, mpsync.solvers.mpo.from_quimb(exact_bond.state), max_bond=64)
    assert eng.projected_residual() < 1e-4


def _zero_padded(mps, chi):
    """The MPS with every inner bond padded with zeros to ``chi`` (the same state)."""
    out = []
    for i, A in enumerate(mps):
        Dl, d, Dr = A.shape
        pl = Dl if i == 0 else max(Dl, chi)
        pr = Dr if i == len(mps) - 1 else max(Dr, chi)
        B = np.zeros((pl, d, pr), dtype=complex)
        B[:Dl, :, :Dr] = A
        out.append(B)
    return out


@pytest.fixture(scope="module")
def wrong_state():
    """A physical but wrong state: the chi = 8 steady state at a pump 4x too strong."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoErrorBarWarning)
        ss = mpsync.steady_state(CHAIN8.replace(W=8.0), method="mpo", max_bond=8)
    return mpsync.solvers.mpo.from_quimb(ss.state)


def _sabotage_rung(monkeypatch, wrong_state, at_chi, times):
    """Make the relax of the rung ``at_chi`` return "converged" at once, ``times`` times, on
    a wrong state zero-padded to the new bond dimension (what a spurious fixed point of
    the one-site flow after a bond expansion looks like to the ladder: settled, wrong)."""
    real_relax = ladder.relax
    left = {"n": times}

    def sabotaged(eng, ctrl, settings, target, n, on_step=None):
        if eng.max_bond == at_chi and left["n"] > 0:
            left["n"] -= 1
            eng.mps = tdvp.right_canonicalize(_zero_padded(wrong_state, at_chi))
            eng.mps[0] = eng.mps[0] / np.linalg.norm(eng.mps[0])
            eng._build_right_envs()
            for _ in range(3):
                ctrl.zq.append(0.1)
                ctrl.zq2.append(0.01)
                ctrl.relax_dt.append(settings.dt_max)
            return "converged"
        return real_relax(eng, ctrl, settings, target, n, on_step=on_step)

    monkeypatch.setattr(ladder, "relax", sabotaged)


def test_a_sabotaged_rung_is_caught_and_repaired(monkeypatch, exact8, wrong_state):
    _sabotage_rung(monkeypatch, wrong_state, at_chi=16, times=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ss = mpsync.steady_state(CHAIN8, method="mpo", ladder=(4, 8, 16, 32), zq_tol=1e-7)
    r16 = next(r for r in ss.diagnostics["ladder"] if r["max_bond"] == 16)
    # caught by its certificate, then continued with two-site steps until it was certified
    assert r16["verify_rounds"] >= 1 and r16["certified"]
    assert abs(r16["ZQ"] - float(exact8.ZQ)) < 1e-3
    assert abs(float(ss.ZQ) - float(exact8.ZQ)) <= ss.errors["ZQ"]


def test_a_rung_that_stays_wrong_is_left_out(monkeypatch, exact8, wrong_state):
    _sabotage_rung(monkeypatch, wrong_state, at_chi=16, times=10)
    with pytest.warns(ConvergenceWarning, match="not certified"):
        ss = mpsync.steady_state(CHAIN8, method="mpo", ladder=(4, 8, 16), zq_tol=1e-7)
    d = ss.diagnostics
    assert d["uncertified_rungs"] == [16] and not d["converged"]
    r16 = next(r for r in d["ladder"] if r["max_bond"] == 16)
    assert "certificate" in r16["rejected_because"] and r16["certificate"] > 3 * d["certificate"]
    r8 = next(r for r in d["ladder"] if r["max_bond"] == 8)
    # the result is the best certified rung, with the error bar of the certified rungs only
    assert float(ss.ZQ) == pytest.approx(r8["ZQ"], abs=1e-12)
    assert ss.errors["ZQ"] >= abs(r8["ZQ"] - d["ladder"][0]["ZQ"])
    assert abs(float(ss.ZQ) - float(exact8.ZQ)) <= ss.errors["ZQ"]


def test_single_rung_warns_that_it_has_no_error_bar():
    system = DipoleSystem.chain(6, 0.1, "magic", W=2.0)
    with pytest.warns(NoErrorBarWarning, match="no bond-dimension error bar"):
        ss = mpsync.steady_state(system, method="mpo", max_bond=2)
    assert ss.errors == {}
    assert ss.diagnostics["certificate"] > 0.1     # far from L rho = 0, and it says so


def test_single_rung_cli_prints_one_stderr_line(capsys):
    from mpsync.cli import main

    rc = main(["steady", "--model", "chain", "--n", "6", "--spacing", "0.1", "--theta", "magic",
               "--W", "2", "--method", "mpo", "--max-bond", "2", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("mpsync: warning:")
    assert "no bond-dimension error bar" in lines[0]
    assert json.loads(out)["diagnostics"]["certificate"] > 0.1


def test_time_budget_stop_returns_the_best_certified_rung(monkeypatch, wrong_state):
    _sabotage_rung(monkeypatch, wrong_state, at_chi=16, times=10)
    # the chi = 32 rung is never started (predicted past the budget) and chi = 16 is left
    # out: the result is chi = 8, the last certified rung
    clock = {"t": 0.0}
    real = ladder.time.perf_counter
    monkeypatch.setattr(ladder.time, "perf_counter", lambda: real() + clock["t"])
    real_measure = ladder._measure

    def slow_measure(eng, ctrl, reason, chi, seconds, matvecs):
        rec = real_measure(eng, ctrl, reason, chi, seconds, matvecs)
        if chi == 16:
            clock["t"] += 100.0       # as if the chi = 16 rung took 100 s
            rec["seconds"] += 100.0
        return rec

    monkeypatch.setattr(ladder, "_measure", slow_measure)
    with pytest.warns(ConvergenceWarning, match="time_budget"):
        ss = mpsync.steady_state(CHAIN8, method="mpo", ladder=(4, 8, 16, 32), time_budget=150.0)
    d = ss.diagnostics
    assert d["stop_reason"] == "time_budget" and not d["converged"]
    assert [r["max_bond"] for r in d["ladder"]] == [4, 8, 16]
    assert float(ss.ZQ) == pytest.approx(d["ladder"][1]["ZQ"], abs=1e-12)


def test_rung_cost_prediction_uses_the_measured_growth():
    """chi^2 after the first (cold) rung; then the exponent of the last two rungs, in [2, 3]."""
    rec = lambda chi, s: {"max_bond": chi, "seconds": s}   # noqa: E731
    assert ladder.predicted_rung_seconds([rec(8, 10.0)], 16) == pytest.approx(40.0)
    # measured growth 16x per doubling (p = 4): held at chi^3
    assert ladder.predicted_rung_seconds([rec(8, 1.0), rec(16, 16.0)], 32) == pytest.approx(128.0)
    # measured p = 2.5 is used as it is
    assert ladder.predicted_rung_seconds([rec(8, 1.0), rec(16, 2 ** 2.5)], 32) == pytest.approx(2 ** 5)
    # a warm rung cheaper than the cold one below it (p < 0): held at chi^2
    assert ladder.predicted_rung_seconds([rec(8, 10.0), rec(16, 5.0)], 32) == pytest.approx(20.0)
    # a rejected rung's verification rounds are not the next rung's cost: its first pass is
    rejected = {"max_bond": 16, "seconds": 100.0, "first_pass_seconds": 20.0, "verify_rounds": 2}
    assert ladder.predicted_rung_seconds([rec(8, 10.0), rejected], 32) == pytest.approx(80.0)


def test_default_time_budget_is_declared():
    from mpsync.solvers import declared_options

    assert declared_options("mpo")["time_budget"] == ladder.DEFAULT_TIME_BUDGET == 600.0


def test_clipped_zeros_never_make_a_zero_error_bar():
    rec = [{"ZQ": 0.0, "ZQ2": -0.02, "drift": 0.0, "drift_ZQ2": 0.0},
           {"ZQ": 0.0, "ZQ2": -0.01, "drift": 0.0, "drift_ZQ2": 0.0},
           {"ZQ": 0.0, "ZQ2": -0.012, "drift": 0.0, "drift_ZQ2": 0.0}]
    assert ladder.ladder_error(rec) == 0.0
    assert ladder.zq_error(rec) > 0.04         # sqrt of the Z_Q^2 disagreement
    # away from zero the two rules agree: no inflation of an honest error bar
    rec = [{"ZQ": 0.2, "ZQ2": 0.04, "drift": 0.0, "drift_ZQ2": 0.0},
           {"ZQ": 0.201, "ZQ2": 0.201 ** 2, "drift": 0.0, "drift_ZQ2": 0.0}]
    assert ladder.zq_error(rec) == pytest.approx(ladder.ladder_error(rec), rel=1e-2)


def test_unphysical_rung_is_never_converged():
    """The moments of the strong-exchange failure (|<sz>| = 4.58) are caught by the check
    _measure records, and _judge refuses such a rung even when its flow "converged"."""
    from types import SimpleNamespace

    bad = SimpleNamespace(sz=np.array([4.58, 0.1]), correlations=np.zeros((2, 2)))
    why = ladder._unphysical(bad)
    assert why == "max |<sz>| = 4.58 > 1"
    rec = {"stop_reason": "converged", "unphysical": why, "certificate": 0.1, "ZQ": 0.0}
    assert "unphysical" in ladder._judge(rec, [])
    big_c = SimpleNamespace(sz=np.array([0.2, 0.1]), correlations=np.array([[0.6, 0.7], [0.7, 0.55]]))
    assert "> 1/2" in ladder._unphysical(big_c)
    good = SimpleNamespace(sz=np.array([0.3, 0.1]), correlations=np.full((2, 2), 0.05))
    assert ladder._unphysical(good) is None
    rec["unphysical"] = None
    assert ladder._judge(rec, []) is None


def test_nan_in_a_local_exponential_fails_at_once():
    """A nan generator used to make every error estimate nan, so the sub-step was halved to
    1e-8 of the step and the exponential crawled on (an N = 70 rung ran 25 min that way)."""
    import time as _time
    from mpsync.solvers.krylov import NonFiniteKrylov, expm_krylov

    t0 = _time.perf_counter()
    with pytest.raises(NonFiniteKrylov, match="nan"):
        expm_krylov(lambda v: v * np.nan, np.ones(16, complex), 1.0)
    with pytest.raises(NonFiniteKrylov):
        expm_krylov(lambda v: v, np.full(16, np.inf, complex), 1.0)
    assert _time.perf_counter() - t0 < 1.0
    assert issubclass(NonFiniteKrylov, mpsync.ConvergenceError)


def test_a_step_that_meets_nan_is_undone_and_retried(monkeypatch, exact8):
    """relax treats a non-finite local exponential as an unstable step: undone, step halved."""
    from mpsync.solvers.krylov import NonFiniteKrylov

    calls = {"n": 0}
    real_step1 = tdvp.TDVP.step1

    def step1(self, h):
        calls["n"] += 1
        if calls["n"] in (3, 4):                      # two one-site steps of the first rung
            raise NonFiniteKrylov("the generator's action has norm nan")
        return real_step1(self, h)

    monkeypatch.setattr(tdvp.TDVP, "step1", step1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ss = mpsync.steady_state(CHAIN8, method="mpo", ladder=(8, 16, 32))
    first = ss.diagnostics["ladder"][0]
    assert first["rejected_steps"] >= 2 and first["certified"]
    assert abs(float(ss.ZQ) - float(exact8.ZQ)) <= ss.errors["ZQ"]


def test_exchange_ratio_of_the_measured_cases():
    """The threshold sits between the measured cases (benchmarks/RESULTS.md, "Strong exchange"):
    the ladder converged to exact at 28 and was biased beyond its rung differences at 60."""
    assert ladder.exchange_ratio(DipoleSystem.chain(10, 0.03, 0.5, W=4.0)) == pytest.approx(60.09, abs=0.01)
    assert ladder.exchange_ratio(DipoleSystem.chain(10, 0.05, 0.35, W=2.0)) == pytest.approx(28.02, abs=0.01)
    assert 28.02 < ladder.STRONG_EXCHANGE < 60.09
    assert ladder.exchange_ratio(DipoleSystem.all_to_all(6, 3.0, W=1.0)) == 0.0


def test_strong_exchange_warns_before_the_work_and_is_never_converged(monkeypatch):
    """Above STRONG_EXCHANGE a ladder whose rungs agree is still not called converged (its bar
    bounds their difference, not their common bias); the warning comes before the first rung."""
    system = DipoleSystem.chain(6, 0.1, "magic", W=2.0)
    ratio = ladder.exchange_ratio(system)
    kwargs = dict(method="mpo", ladder=(4, 8, 16), zq_tol=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StrongExchangeWarning)
        ref = mpsync.steady_state(system, **kwargs)
    assert ref.diagnostics["converged"] and ref.diagnostics["exchange_ratio"] == pytest.approx(ratio)
    monkeypatch.setattr(ladder, "STRONG_EXCHANGE", ratio / 2)      # this chain is now "strong"
    order = []
    real_climb = ladder._climb
    monkeypatch.setattr(ladder, "_climb", lambda **kw: (order.append("climb"), real_climb(**kw))[1])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ss = mpsync.steady_state(system, **kwargs)
    kinds = [w.category for w in record]
    assert "use method='exact'" in str(record[0].message)
    assert record[0].filename == __file__           # the user's line, not mpsync's
    assert kinds[0] is StrongExchangeWarning and order == ["climb"]
    assert ConvergenceWarning in kinds
    assert not ss.diagnostics["converged"] and "strong exchange" in ss.diagnostics["warning"]
    # the numbers are those of the same ladder: only the verdict changes
    assert float(ss.ZQ) == pytest.approx(float(ref.ZQ), abs=1e-12)
    assert ss.errors["ZQ"] == pytest.approx(ref.errors["ZQ"])


def test_strong_exchange_at_the_exact_bond_stays_converged(monkeypatch):
    """N = 4: the ladder reaches the exact bond dimension 16, where nothing is truncated."""
    system = DipoleSystem.chain(4, 0.1, "magic", W=2.0)
    monkeypatch.setattr(ladder, "STRONG_EXCHANGE", 0.0)
    with pytest.warns(StrongExchangeWarning):
        ss = mpsync.steady_state(system, method="mpo")
    assert ss.diagnostics["converged"] and ss.diagnostics["stop_reason"] == "exact_bond"


def test_strong_exchange_cli_line_comes_before_the_run(monkeypatch, capsys):
    from mpsync.cli import main

    monkeypatch.setattr(ladder, "STRONG_EXCHANGE", 0.0)
    at_start = []
    real_climb = ladder._climb
    monkeypatch.setattr(ladder, "_climb", lambda **kw: (at_start.append(capsys.readouterr().err),
                                                         real_climb(**kw))[1])
    rc = main(["steady", "--model", "chain", "--n", "6", "--spacing", "0.1", "--theta", "magic",
               "--W", "2", "--method", "mpo", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0
    assert at_start[0].startswith("mpsync: warning: method='mpo': strong exchange")
    assert at_start[0].count("\n") == 1                       # one line, said before the climb
    assert json.loads(out)["diagnostics"]["converged"] is False
    assert "did not converge" in err and err.count("mpsync: warning:") == 1


def test_strong_exchange_refusal_names_it(monkeypatch):
    system = DipoleSystem.chain(6, 0.03, 0.5, W=4.0)
    with pytest.warns(StrongExchangeWarning):
        with pytest.raises(ConvergenceError, match="strong exchange.*exact' \\(N <= 14\\)"):
            mpsync.steady_state(system, method="mpo", time_budget=1e-3)


def test_a_rung_whose_step_collapses_is_left_out_not_fatal(monkeypatch, exact8):
    from mpsync.errors import ConvergenceError

    real_relax = ladder.relax

    def collapsing(eng, ctrl, settings, target, n, on_step=None):
        if eng.max_bond == 16:
            raise ConvergenceError("method='mpo': the TDVP step collapsed below 1e-6")
        return real_relax(eng, ctrl, settings, target, n, on_step=on_step)

    monkeypatch.setattr(ladder, "relax", collapsing)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ss = mpsync.steady_state(CHAIN8, method="mpo", ladder=(4, 8, 16, 32), zq_tol=1e-7)
    d = ss.diagnostics
    r16 = next(r for r in d["ladder"] if r["max_bond"] == 16)
    assert r16["stop_reason"] == "step_collapse" and not r16["certified"]
    assert d["uncertified_rungs"] == [16]
    # chi = 32 climbed from the certified chi = 8 state and is the result
    assert d["ladder"][-1]["max_bond"] == 32 and d["ladder"][-1]["certified"]
    assert abs(float(ss.ZQ) - float(exact8.ZQ)) <= ss.errors["ZQ"]
    # the first rung has nothing to fall back on: its collapse is refused, as before
    monkeypatch.setattr(ladder, "relax", lambda *a, **k: (_ for _ in ()).throw(
        ConvergenceError("method='mpo': the TDVP step collapsed below 1e-6")))
    with pytest.raises(ConvergenceError, match="collapsed"):
        mpsync.steady_state(CHAIN8, method="mpo", ladder=(4, 8))


@pytest.mark.slow
def test_all_to_all_n30_default_options_match_permutational():
    """The case of issue 19 (about 2 min): default options, certified rungs, within 1e-3."""
    system = DipoleSystem.all_to_all(30, f_eff=12.0, W=5.0)
    exact = float(mpsync.steady_state(system, method="permutational").ZQ)
    ss = mpsync.steady_state(system, method="mpo")
    d = ss.diagnostics
    assert d["converged"] and d["seconds"] < 600
    assert abs(float(ss.ZQ) - exact) < 1e-3
    assert abs(float(ss.ZQ) - exact) <= ss.errors["ZQ"]
    certified = [r for r in d["ladder"] if r["certified"]]
    for k in range(2, len(certified)):
        # no certified rung ends further from exact than its predecessor's error bar allows
        bar = ladder.zq_error(certified[:k])
        assert abs(certified[k]["ZQ"] - exact) <= abs(certified[k - 1]["ZQ"] - exact) + bar
