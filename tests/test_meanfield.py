"""Tests of the mean-field solver (method="meanfield") and the analytic
self-consistent steady state of the supplement (Eqs. 3-6)."""

import time

import numpy as np
import pytest

from conftest import random_g, random_psd_f
import mpsync
from mpsync.model import DipoleSystem
from mpsync.solvers import meanfield as mf
from mpsync.solvers.moment_equations import Couplings, rhs_meanfield


@pytest.mark.parametrize("g_eff", [0.0, 3.0])
def test_analytic_equals_long_time_ode_identical(g_eff):
    """Eq. 5 (and the frequency shift g_eff Q / 2 f_eff) vs the 3N ODE from random phases.
    Finite N = 400 (self-exclusion b != a) gives O(1/N) differences."""
    s = DipoleSystem.all_to_all(400, 20.0, 8.0, g_eff=g_eff, delta=0.7)
    ss = mpsync.steady_state(s, method="meanfield", seed=3)
    an = mf.analytic_steady_state(20.0, 8.0, g_eff=g_eff, delta0=0.7)
    assert ss.diagnostics["residual"] < 1e-8
    assert abs(ss.Z - an.Z) < 2e-3
    np.testing.assert_allclose(ss.sz, an.sz, atol=5e-3)
    assert abs(ss.diagnostics["omega"] - an.omega) < 2e-3


def test_analytic_equals_long_time_ode_detuning_sample():
    """Eqs. 3-4 solved for a sample of detunings vs the ODE with those detunings."""
    rng = np.random.default_rng(0)
    d = rng.uniform(-1, 1, 400)
    s = DipoleSystem.all_to_all(400, 20.0, 8.0, g_eff=2.0, delta=d)
    ss = mf.steady_state(s, seed=1)
    an = mf.analytic_steady_state(20.0, 8.0, g_eff=2.0, kind=d)
    assert abs(ss.Z - an.Z) < 2e-3
    assert abs(ss.diagnostics["omega"] - an.omega) < 2e-3
    np.testing.assert_allclose(ss.sz, an.sz, atol=5e-3)


def test_unsynchronised_below_threshold():
    s = DipoleSystem.all_to_all(100, 3.0, 2.0)   # f_eff D < Q^2
    ss = mf.steady_state(s, seed=0)
    assert ss.Z < 1e-6
    assert mf.analytic_steady_state(3.0, 2.0).Z == 0
    np.testing.assert_allclose(ss.sz, (2.0 - 1) / 3.0, atol=1e-6)


def test_max_z_is_sqrt_one_eighth_at_half_f_eff():
    """Supplement: Z_max -> sqrt(1/8) at W_opt -> f_eff/2 with sz -> 1/2 (S^z = 1/4)."""
    for f_eff in (100.0, 1000.0):
        W_opt, z_max = mf.optimal_pump(f_eff)
        assert abs(W_opt / f_eff - 0.5) < 2.0 / f_eff
        assert abs(z_max - np.sqrt(1 / 8)) < 3.0 / f_eff
        assert abs(mf.analytic_steady_state(f_eff, W_opt).sz - 0.5) < 2.0 / f_eff
    # and it approaches from below
    assert mf.optimal_pump(100.0)[1] < mf.optimal_pump(1000.0)[1] < np.sqrt(1 / 8)


def test_lorentzian_eq6_against_quantile_sample():
    """Eq. 6 (closed form) vs Eqs. 3-4 solved for a deterministic Lorentzian sample."""
    f, W, spread = 20.0, 8.0, 1.5
    closed = mf.analytic_steady_state(f, W, delta_spread=spread, kind="lorentzian").Z
    p = (np.arange(40001) + 0.5) / 40001
    sample = spread * np.tan(np.pi * (p - 0.5))
    num = mf.analytic_steady_state(f, W, kind=sample).Z
    assert closed > 0
    assert abs(closed - num) < 2e-3


def test_critical_spread():
    """Z(Delta) of Eq. 6 vanishes exactly at Delta_c = (f_eff D - Q^2) / (2Q)."""
    f, W = 20.0, 8.0
    dc = mf.critical_spread(f, W)
    assert dc == pytest.approx((f * 7 - 81) / 18)
    z = lambda d: float(mf.analytic_steady_state(f, W, delta_spread=d, kind="lorentzian").Z)  # noqa: E731
    assert z(0.999 * dc) > 0
    assert z(0.999 * dc) < 0.02
    assert z(1.001 * dc) == 0
    # spread lowers the optimum pump: W_opt ~ f/2 - Delta/sqrt 2 for f >> Gamma
    W_opt, _ = mf.optimal_pump(400.0, delta_spread=10.0)
    assert abs(W_opt - (200 - 10 / np.sqrt(2))) < 3.0
    # and the identical case is the zero-spread limit
    assert z(1e-12) == pytest.approx(float(mf.analytic_steady_state(f, W).Z), abs=1e-6)


def test_phase_diagram_fast_and_consistent():
    W = np.linspace(0, 40, 100)
    F = np.linspace(0.5, 40, 100)
    t = time.perf_counter()
    Z = mf.phase_diagram(W, F)
    assert time.perf_counter() - t < 1.0
    assert Z.shape == (100, 100)
    assert 0 <= Z.min() and Z.max() <= np.sqrt(1 / 8)
    i, j = 57, 31
    assert Z[i, j] == pytest.approx(float(mf.analytic_steady_state(F[i], W[j]).Z))
    Zl = mf.phase_diagram(W, F, delta_spread=1.0)
    assert np.all(Zl <= Z + 1e-12)


def test_sanity_equation_and_product_moments(rng):
    """The sanity equation of docs/physics.md#moment-equations with <sz_a s-_b> = <sz_a><s-_b> (product state)."""
    n = 6
    s = DipoleSystem.from_matrices(random_psd_f(rng, n), random_g(rng, n), W=1.3,
                                   delta=rng.normal(size=n))
    states = mf.random_phase_state(n, seed=5, sz=0.3)
    sz = np.array([np.real(r[1, 1] - r[0, 0]) for r in states])
    m = np.array([r[1, 0] for r in states])
    dsz, dm = rhs_meanfield(Couplings(s), sz, m)
    want = np.array([-(1j * s.delta[a] + (1 + s.W) / 2) * m[a]
                     + 0.5 * sum((s.f[a, b] + 1j * s.g[a, b]) * sz[a] * m[b] for b in range(n) if b != a)
                     for a in range(n)])
    np.testing.assert_allclose(dm, want, atol=1e-13)
    np.testing.assert_allclose(sz, 0.3)
    ts = mf.evolve(s, [0.0, 0.5], initial=states)
    mom = ts.at(1).moments
    np.testing.assert_allclose(mom.correlations[0, 1], np.conj(mom.sm[0]) * mom.sm[1])
    np.testing.assert_allclose(mom.zz[2, 4], mom.sz[2] * mom.sz[4])
    np.testing.assert_allclose(np.diag(mom.correlations).real, (1 + mom.sz) / 2)


def test_random_phases_are_seeded():
    s = DipoleSystem.all_to_all(30, 10.0, 5.0)
    t = np.linspace(0, 1, 3)
    a = mf.evolve(s, t, seed=7)
    b = mf.evolve(s, t, seed=7)
    c = mf.evolve(s, t, seed=8)
    np.testing.assert_array_equal(a.sm, b.sm)
    assert not np.allclose(a.sm, c.sm)
    assert a.Z[0] < 0.5


def test_z_property_is_order_parameter():
    s = DipoleSystem.all_to_all(50, 30.0, 15.0)
    ss = mf.steady_state(s, seed=2)
    assert ss.Z == pytest.approx(float(mf.order_parameter(ss.sm)))
    # mean-field Z_Q^2 = |mean <s+>|^2 up to the diagonal: the quantum and classical order agree
    assert ss.ZQ == pytest.approx(ss.Z, rel=1e-6)


def test_warns_when_f_is_not_positive_semidefinite():
    """Mean field solves the equations for any f, but warns when f is not PSD (the master
    equation then has no Lindblad form); a PSD f (including round-off) stays silent."""
    import warnings

    from mpsync.errors import NotLindbladWarning

    with pytest.warns(NotLindbladWarning, match="not positive semidefinite"):
        mf.steady_state(DipoleSystem.all_to_all(4, f_eff=8.0, W=3.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotLindbladWarning)
        mf.steady_state(DipoleSystem.all_to_all(8, f_eff=8.0, W=3.0))
        mf.evolve(DipoleSystem.chain(6, 0.05, "magic", W=2.0), [0.0, 0.5])  # dense chain: l_min ~ 0
