"""Tests of the second-order cumulant solver (method="cumulant").

The equations are checked term by term against the exact master equation on
states whose three-site cumulants vanish (products of random two-site states:
there the closure of supplement Eq. 7 is exact), the steady state against the
exact solver (N <= 6), the permutational solver (N = 70) and the large-N limit, and the documented failure mode (large g).
"""

import numpy as np
import pytest

from conftest import random_g, random_psd_f
from mpsync.model import DipoleSystem
from mpsync.errors import NotLindbladWarning
from mpsync.paper import studies
from mpsync.solvers import cumulant as cu
from mpsync.solvers import exact, permutational
from mpsync.solvers.cumulant import newton_steady as steady
from mpsync.solvers.moment_equations import Couplings, rhs_u1

SP = np.array([[0, 0], [1, 0]], complex)
SM = SP.T.copy()
SZ = np.diag([-1.0, 1.0]).astype(complex)


def _op(o, a, n):
    out = np.eye(1)
    for k in range(n):
        out = np.kron(out, o if k == a else np.eye(2))
    return out


def _dense_lindblad(system, rho):
    """L[rho] of docs/physics.md#master-equation, built directly from its definition."""
    n = system.n
    sp = [_op(SP, a, n) for a in range(n)]
    sm = [_op(SM, a, n) for a in range(n)]
    sz = [_op(SZ, a, n) for a in range(n)]
    H = sum(0.5 * system.delta[a] * sz[a] for a in range(n))
    H = H + sum(0.5 * system.g[a, b] * sp[a] @ sm[b] for a in range(n) for b in range(n) if a != b)
    out = -1j * (H @ rho - rho @ H)
    for a in range(n):
        for b in range(n):
            L = sp[a] @ sm[b]
            out = out + 0.5 * system.f[a, b] * (2 * sm[b] @ rho @ sp[a] - L @ rho - rho @ L)
        L = sm[a] @ sp[a]
        out = out + 0.5 * system.W * (2 * sp[a] @ rho @ sm[a] - L @ rho - rho @ L)
    return out, sp, sm, sz


def _moments(rho, sp, sm, sz):
    n = len(sp)

    def ex(O):
        return np.trace(rho @ O)
    s = np.array([ex(sz[a]) for a in range(n)]).real
    m = np.array([ex(sm[a]) for a in range(n)])
    C = np.array([[ex(sp[a] @ sm[b]) for b in range(n)] for a in range(n)])
    zz = np.array([[ex(sz[a] @ sz[b]) for b in range(n)] for a in range(n)]).real
    Y = np.array([[ex(sz[a] @ sm[b]) if a != b else 0 for b in range(n)] for a in range(n)])
    P = np.array([[ex(sm[a] @ sm[b]) if a != b else 0 for b in range(n)] for a in range(n)])
    return s, m, C, zz, Y, P


def _random_pair_state(rng, u1):
    a = rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4))
    r = a @ a.conj().T
    if u1:  # block diagonal in the excitation number (dd | du, ud | uu)
        mask = np.zeros((4, 4), bool)
        mask[0, 0] = mask[3, 3] = True
        mask[1:3, 1:3] = True
        r = r * mask
    return r / np.trace(r)


@pytest.mark.parametrize("u1", [True, False])
def test_equations_exact_when_three_site_cumulants_vanish(rng, u1):
    """Products of two-site states (pairs (0,2), (1,3)) have vanishing three-site
    cumulants, so every cumulant equation must equal the exact d<O>/dt."""
    n = 4
    s = DipoleSystem.from_matrices(random_psd_f(rng, n), random_g(rng, n), W=0.7,
                                   delta=rng.normal(size=n))
    rho = np.kron(_random_pair_state(rng, u1), _random_pair_state(rng, u1))
    perm = [0, 2, 1, 3]
    rho = rho.reshape([2] * 8).transpose(perm + [p + 4 for p in perm]).reshape(16, 16)
    L, sp, sm, sz = _dense_lindblad(s, rho)
    mom = _moments(rho, sp, sm, sz)
    dmom = _moments(L, sp, sm, sz)
    if u1:
        assert np.max(np.abs(mom[1])) < 1e-14
        got = cu.rhs(s, mom[0], mom[2], mom[3])
        keys = [("sz", 0), ("correlations", 2), ("zz", 3)]
    else:
        got = cu.rhs(s, mom[0], mom[2], mom[3], m=mom[1], Y=mom[4], P=mom[5])
        keys = [("sz", 0), ("sm", 1), ("correlations", 2), ("zz", 3), ("zsm", 4), ("smsm", 5)]
    for key, i in keys:
        want = np.array(dmom[i])
        if key == "zz":
            np.fill_diagonal(want, 0.0)
        np.testing.assert_allclose(got[key], want, atol=1e-12, err_msg=key)


def test_closure_is_an_approximation_for_correlated_states(rng):
    """Sanity of the test above: a generic (GHZ-like) state breaks the closure."""
    n = 3
    s = DipoleSystem.from_matrices(random_psd_f(rng, n), np.zeros((n, n)), W=0.5)
    psi = np.zeros(8, complex)
    psi[[0, 7]] = 1 / np.sqrt(2)
    psi[[3, 5]] = 0.3
    psi /= np.linalg.norm(psi)
    rho = np.outer(psi, psi.conj())
    L, sp, sm, sz = _dense_lindblad(s, rho)
    mom = _moments(rho, sp, sm, sz)
    dmom = _moments(L, sp, sm, sz)
    got = cu.rhs(s, mom[0], mom[2], mom[3], m=mom[1], Y=mom[4], P=mom[5])
    assert np.max(np.abs(got["correlations"] - dmom[2])) > 1e-3


def test_sanity_equation(rng):
    """docs/physics.md#moment-equations: d<s-_a>/dt = -(i delta_a + (Gamma + W)/2) <s-_a>
    + 1/2 sum_{b != a} (f_ab + i g_ab) <sz_a s-_b>, for a coherent product state."""
    n = 6
    s = DipoleSystem.from_matrices(random_psd_f(rng, n), random_g(rng, n), W=1.3,
                                   delta=rng.normal(size=n))
    states = []
    for _ in range(n):
        th, ph = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        psi = np.array([np.cos(th / 2), np.sin(th / 2) * np.exp(1j * ph)])
        states.append(np.outer(psi, psi.conj()))
    sz, m, C, zz, Y, P = cu._initial_variables(states)
    d = cu.rhs(s, sz, C, zz, m=m, Y=Y, P=P)
    gam = s.gamma
    want = np.array([-(1j * s.delta[a] + (gam + s.W) / 2) * m[a]
                     + 0.5 * sum((s.f[a, b] + 1j * s.g[a, b]) * sz[a] * m[b] for b in range(n) if b != a)
                     for a in range(n)])
    np.testing.assert_allclose(d["sm"], want, atol=1e-13)
    # Y from the state is sz_a m_b for a product state: the equation used Y, not sz m
    np.testing.assert_allclose(Y[0, 1], sz[0] * m[1])


def _random_point(rng, n, real):
    sz = rng.uniform(-0.6, 0.6, n)
    C = 0.05 * rng.normal(size=(n, n))
    if not real:
        C = C + 0.05j * rng.normal(size=(n, n))
    C = C + C.conj().T
    np.fill_diagonal(C, 0.5 * (1 + sz))
    return sz, C


@pytest.mark.parametrize("real", [True, False])
def test_reduced_equations_are_the_pair_equations_with_zz_slaved(rng, real):
    """The steady-state engine solves d sz = d C = 0 with <sz sz> eliminated: its
    residual equals rhs_u1 at the slaved zz, where d zz / dt vanishes exactly."""
    n = 9
    g = np.zeros((n, n)) if real else random_g(rng, n, 0.5)
    delta = None if real else 0.3 * rng.normal(size=n)
    s = DipoleSystem.from_matrices(random_psd_f(rng, n), g, W=3.0, delta=delta)
    cp = Couplings(s)
    red = steady.ReducedU1(cp)
    assert red.real is real
    sz, C = _random_point(rng, n, real)
    X = red.pack(sz, C)
    zz = red.zz(X)
    dsz, dC, dzz = rhs_u1(cp, sz, C, zz)
    R = red.residual(X)
    np.testing.assert_allclose(np.diagonal(R).real, dsz, atol=1e-13)
    off = ~np.eye(n, dtype=bool)
    np.testing.assert_allclose(R[off], dC[off], atol=1e-13)
    np.testing.assert_allclose(dzz, 0.0, atol=1e-13)
    assert np.abs(R - R.conj().T).max() < 1e-14


@pytest.mark.parametrize("real", [True, False])
@pytest.mark.parametrize("shift", [0.0, 0.7])
def test_reduced_jacobian_matches_finite_differences(rng, real, shift):
    n = 8
    g = np.zeros((n, n)) if real else random_g(rng, n, 0.5)
    delta = None if real else 0.3 * rng.normal(size=n)
    s = DipoleSystem.from_matrices(random_psd_f(rng, n), g, W=3.0, delta=delta)
    red = steady.ReducedU1(Couplings(s))
    X = red.pack(*_random_point(rng, n, real))
    dsz, dC = _random_point(rng, n, real)
    dX = red.pack(dsz, dC)
    jac = red.jacobian(X)
    jac.shift = shift
    e = 1e-4
    fd = (red.residual(X + e * dX) - red.residual(X - e * dX)) / (2 * e) - shift * dX
    np.testing.assert_allclose(jac(dX), fd, atol=1e-9)
    jac.single = True     # single-precision product: the loose-forcing variant
    np.testing.assert_allclose(jac(dX), fd, atol=1e-5 * np.abs(fd).max())


def test_preconditioner_inverts_the_lyapunov_operator(rng):
    """Real equations, <sz> of one sign: the pair block of the preconditioner is the
    exact inverse of Y -> A Y + Y A^T - shift Y, A = -Q/2 + diag(sz) K."""
    n = 10
    s = DipoleSystem.from_matrices(random_psd_f(rng, n), np.zeros((n, n)), W=3.0)
    red = steady.ReducedU1(Couplings(s))
    pre = steady.LyapunovPreconditioner(red, floor=0.0)
    sz = rng.uniform(0.2, 0.8, n)
    pre.set_sz(sz)
    pre.set_shift(0.3)
    assert pre.exact
    A = -0.5 * red.Q * np.eye(n) + sz[:, None] * red.K
    assert abs(pre.a_max - np.linalg.eigvals(A).real.max()) < 1e-12
    R = rng.normal(size=(n, n))
    R = R + R.T
    rs = rng.normal(size=n)
    np.fill_diagonal(R, rs)
    out = pre(R)
    # dense reference: (A x 1 + 1 x A - shift) vec Y = vec R_offdiagonal
    Roff = R - np.diag(rs)
    L = np.kron(A, np.eye(n)) + np.kron(np.eye(n), A) - 0.3 * np.eye(n * n)
    Y = np.linalg.solve(L, Roff.ravel()).reshape(n, n)
    off = ~np.eye(n, dtype=bool)
    np.testing.assert_allclose(out[off], Y[off], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.diagonal(out), rs / (-red.Q - 0.3))
    pre.single = True
    np.testing.assert_allclose(pre(R)[off], Y[off], atol=1e-5 * np.abs(Y).max())


def test_continuation_follows_the_growing_mode():
    """20 x 20 lattice, alpha = 1: without the step cap the continuation converges to
    the unstable uncorrelated root (Z_Q^2 < 0, collective pair mode growing); the
    default cap ``ptc_cap / Re a`` follows the growth to the synchronised root, with
    no restart, and the kick-and-continue restart rescues the uncapped solve."""
    s = DipoleSystem.power_law((20, 20), 1.0, W=4.0)
    bad = cu.steady_state(s, ptc_cap=1e9, check_stability=False)
    assert bad.ZQ2 < 0 and cu.rightmost_pair_rate(s, bad.sz) > 0.2 * (1 + s.W)
    good = cu.steady_state(s)
    assert good.diagnostics["restarts"] == 0 and good.diagnostics["residual"] < 1e-8
    assert good.ZQ2 > 0.04 and good.diagnostics["pair_rate"] < 0
    rescued = cu.steady_state(s, ptc_cap=1e9)
    assert rescued.diagnostics["restarts"] >= 1
    np.testing.assert_allclose(rescued.sz, good.sz, atol=1e-7)
    assert abs(rescued.ZQ2 - good.ZQ2) < 1e-6


def test_steady_state_equals_long_evolution(rng):
    n = 12
    f = random_psd_f(rng, n, scale=0.9) * 1.0
    s = DipoleSystem.from_matrices(f, random_g(rng, n, 0.3), W=3.0, delta=0.2 * rng.normal(size=n))
    ss = cu.steady_state(s)
    assert ss.diagnostics["residual"] < 1e-9
    assert ss.diagnostics["seconds"] >= 0
    ts = cu.evolve(s, [0.0, 150.0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ss.sz, ts.sz[-1], atol=1e-7)
    np.testing.assert_allclose(ss.correlations, ts.correlations[-1], atol=1e-7)
    np.testing.assert_allclose(ss.zz, ts.zz[-1], atol=1e-7)


@pytest.mark.parametrize("W", [0.5, 2.0])
def test_design_pitfall_roots_are_physical(W):
    """docs/physics.md#pitfall-cumulant-roots: all-to-all N = 70, f_eff = 15 at W = 2 and 0.5 -- generic
    root solves landed on unphysical roots; ours must equal the time integration."""
    s = DipoleSystem.all_to_all(70, 15.0, W)
    ss = cu.steady_state(s, symmetric=False)
    ts = cu.evolve(s, [0.0, 120.0], rtol=1e-9, atol=1e-11)
    assert np.all(np.abs(ss.sz) <= 1)
    np.testing.assert_allclose(ss.sz, ts.sz[-1], atol=1e-6)
    np.testing.assert_allclose(ss.ZQ2, ts.ZQ2[-1], atol=1e-7)


def test_single_atom_limit():
    """With f_ab = 0 for a != b the dipoles are independent: sz = (W - G)/(W + G), C = 0."""
    s = DipoleSystem.from_matrices(np.eye(4), np.zeros((4, 4)), W=2.5)
    ss = cu.steady_state(s)
    np.testing.assert_allclose(ss.sz, (2.5 - 1) / 3.5, atol=1e-12)
    assert np.max(np.abs(ss.correlations - np.diag(np.diag(ss.correlations)))) < 1e-12


# --------------------------------------------------------------------------- vs exact
def _exact(system):
    return exact.steady_state(system)


@pytest.mark.parametrize("W", [2.0, 4.0, 8.0])
def test_against_exact_g0_above_threshold(rng, W):
    """N = 5, random positive f, g = 0, W above threshold. Measured agreement:
    |d sz| <= 1.5e-3, |d C_ab| <= 1.6e-3 (C_ab itself ~ 0.05), Z_Q^2 within 3 %.
    The asserted tolerances (5e-3 and 5 %) leave room but would catch a wrong sign
    or a missing term (those change C by 1e-2 or more)."""
    n = 5
    f = random_psd_f(np.random.default_rng(5), n, scale=0.9)
    s = DipoleSystem.from_matrices(f, np.zeros((n, n)), W=W)
    a = cu.steady_state(s)
    b = _exact(s)
    off = ~np.eye(n, dtype=bool)
    assert np.max(np.abs(a.sz - b.sz)) < 5e-3
    assert np.max(np.abs(a.correlations - b.correlations)[off]) < 5e-3
    assert abs(a.ZQ2 - b.ZQ2) < 0.05 * abs(b.ZQ2)


def test_all_to_all_against_exact_n6():
    """All-to-all N = 6, f_eff = 4: Z_Q^2 within 6 % above threshold (measured 4.5 %)."""
    for W in (2.0, 4.0):
        s = DipoleSystem.all_to_all(6, 4.0, W)
        a = cu.steady_state(s)
        b = _exact(s)
        assert abs(a.ZQ2 - b.ZQ2) < 0.06 * abs(b.ZQ2)
        assert np.max(np.abs(a.sz - b.sz)) < 6e-3


def test_degrades_with_large_g():
    """The supplement: good 'provided the elastic couplings g are sufficiently small'.
    N = 5 vs exact: the error in C grows monotonically with the scale of g."""
    rng = np.random.default_rng(5)
    n = 5
    f = random_psd_f(rng, n, scale=0.9)
    g = random_g(rng, n)
    errs = []
    for scale in (0.0, 1.0, 4.0):
        s = DipoleSystem.from_matrices(f, scale * g, W=2.0)
        a = cu.steady_state(s)
        b = _exact(s)
        errs.append(np.max(np.abs(a.correlations - b.correlations)))
    assert errs[0] < errs[1] < errs[2]
    assert errs[2] > 5 * errs[0]


def test_subradiant_regime_worse_than_synchronised():
    """Fig. S1: agreement is worst at W << Gamma (subradiant correlations)."""
    s_lo = DipoleSystem.all_to_all(6, 4.0, 0.2)
    s_hi = DipoleSystem.all_to_all(6, 4.0, 4.0)
    rel = []
    for s in (s_lo, s_hi):
        a = cu.steady_state(s)
        b = _exact(s)
        rel.append(abs(a.sz.mean() - b.sz.mean()))
    assert rel[0] > 0.5 * rel[1]  # not better at low pump, in absolute sz


# --------------------------------------------------------------------------- vs permutational
@pytest.mark.parametrize("W,rel", [(0.2, 0.02), (0.5, 0.02), (2.0, 0.2), (7.5, 0.2), (12.0, 0.2)])
def test_against_permutational_n70(W, rel):
    """All-to-all N = 70, f_eff = 15 across W (the paper's Fig. 2(b,e) system), against
    the permutational (exact) solver. Measured: Z_Q^2 within 0.5 % for W < Gamma;
    for 2 <= W <= 14 the cumulant overestimates Z_Q^2 by 10-18 % and its <sz> is lower
    by <= 0.032 (the relative error does not shrink with N at fixed f_eff: 9 % at
    N = 16, 14 % at N = 70 and 100 for W = 7.5)."""
    s = DipoleSystem.all_to_all(70, 15.0, W)
    a = cu.steady_state(s, symmetric=False)
    b = permutational.steady_state(s)
    assert abs(np.mean(a.sz) - np.mean(b.sz)) < 0.035
    assert abs(a.ZQ2 - b.ZQ2) < rel * abs(b.ZQ2)
    if W > 1:
        assert a.ZQ2 > b.ZQ2  # the documented bias
        assert abs(a.mutual_information(0, 1) - b.mutual_information(0, 1)) < 0.3 * b.mutual_information(0, 1)


def test_large_n_all_to_all_limit():
    """Meiser-Holland limit: C -> x (1 - x)/2, x = W / f_eff, for N, f_eff >> Gamma.
    At f_eff = N = 400 (f_ab = Gamma: f positive semidefinite, pure collective decay)
    the measured deviation is <= 1.2 % (Gamma/W corrections)."""
    f_eff, n = 400.0, 400
    for x in (0.3, 0.5, 0.7):
        s = DipoleSystem.all_to_all(n, f_eff, x * f_eff)
        ss = cu.steady_state(s, symmetric=False)
        assert abs(ss.ZQ2 - x * (1 - x) / 2) < 0.03 * x * (1 - x) / 2
        if x == 0.5:
            assert abs(ss.ZQ - 1 / np.sqrt(8)) < 0.005
            np.testing.assert_allclose(ss.correlations[0, 1], ss.correlations[3, 7], rtol=1e-8)


@pytest.mark.parametrize("n,f_eff,W", [(70, 15.0, 0.5), (70, 15.0, 7.5), (200, 100.0, 30.0), (40, 8.0, 0.2)])
def test_symmetric_reduction_equals_full_equations(n, f_eff, W):
    """Identical all-to-all dipoles: the 3 reduced equations give the N x N solution."""
    s = DipoleSystem.all_to_all(n, f_eff, W)
    a = cu.steady_state(s, symmetric=False)
    b = cu.steady_state(s)
    assert b.diagnostics["symmetric"] and not a.diagnostics["symmetric"]
    np.testing.assert_allclose(b.sz, a.sz, atol=1e-8)
    np.testing.assert_allclose(b.correlations, a.correlations, atol=1e-8)
    np.testing.assert_allclose(b.zz, a.zz, atol=1e-8)


def test_fig_s2_and_large_n_symmetric_limit():
    """Fig. S2: mutual information and discord reach a finite value at large N; and
    the Meiser-Holland limit at N = 1e6, f_eff = 1e4: C = x(1 - x)/2 within 0.3 %."""
    d = studies.fig_s2_data([100, 10 ** 4, 10 ** 6], f_eff=15.0)
    assert np.all(d["discord"] > 0) and np.all(d["discord"] <= d["mutual_information"])
    assert abs(d["mutual_information"][2] - d["mutual_information"][1]) < 0.01 * d["mutual_information"][2]
    for x in (0.25, 0.5):
        s, c, z, res = cu.symmetric_moments(10 ** 6, 1e4 / 10 ** 6, x * 1e4)
        assert res < 1e-8
        assert abs(c - x * (1 - x) / 2) < 3e-3 * x * (1 - x) / 2


def test_unstable_root_is_rejected():
    """With a seed too short to leave the uncorrelated root, Newton converges to an
    unstable root (negative Z_Q^2); the stability check rejects it, the default
    solve does not return it. Plain Newton (``ptc_dt=None``) needs the restart with a
    longer seed; the default pseudo-transient continuation follows the dynamics and
    lands on the same stable root with no restart."""
    s = DipoleSystem.all_to_all(200, 100.0, 30.0)
    bad = cu.steady_state(s, check_stability=False, symmetric=False, ptc_dt=None)
    good = cu.steady_state(s, symmetric=False, ptc_dt=None)
    assert bad.ZQ2 < 0 < good.ZQ2
    assert cu.rightmost_pair_rate(s, bad.sz) > 0.3 * (1 + s.W)
    assert cu.rightmost_pair_rate(s, good.sz) < 0.0
    assert good.diagnostics["restarts"] >= 1
    ptc = cu.steady_state(s, symmetric=False)
    assert ptc.diagnostics["restarts"] == 0
    assert ptc.diagnostics["residual"] < 1e-8
    assert abs(ptc.ZQ2 - good.ZQ2) < 1e-6 * abs(good.ZQ2)
    np.testing.assert_allclose(ptc.sz, good.sz, atol=1e-8)


# --------------------------------------------------------------------------- observables
def test_observables_on_a_lattice():
    s = DipoleSystem.power_law((6, 6), 1.5, W=2.0)
    ss = cu.steady_state(s)
    assert ss.n == 36
    assert ss.cluster_ZQ(2) >= ss.cluster_ZQ(6) >= 0
    rho = ss.pair_density_matrix(0, 1)
    np.testing.assert_allclose(np.trace(rho), 1.0, atol=1e-12)
    assert np.linalg.eigvalsh(rho).min() > -1e-6
    assert 0 <= ss.discord(0, 1) <= ss.mutual_information(0, 1) + 1e-9


def test_evolve_with_coherences_breaks_u1():
    s = DipoleSystem.all_to_all(8, 6.0, 3.0)
    ts = cu.evolve(s, np.linspace(0, 2, 5), initial="x")
    assert ts.moments.sm is not None
    assert abs(ts.sm[0]).max() > 0.1
    # coherences decay towards the U(1) steady state eventually: sm shrinks? at least finite
    assert np.all(np.isfinite(ts.correlations))


def test_errors():
    from mpsync.errors import InvalidSystemError
    s = DipoleSystem.all_to_all(1, 1.0, 2.0)
    with pytest.raises(InvalidSystemError):
        cu.steady_state(s)
    s = DipoleSystem.all_to_all(3, 1.0, 2.0)
    with pytest.raises(InvalidSystemError):
        cu.evolve(s, [1.0, 0.5])
    from mpsync.errors import InvalidOptionError
    for bad in ({"ptc_cap": 0.0}, {"tol": -1.0}, {"krylov": 0}, {"ptc_dt": -0.1}):
        with pytest.raises(InvalidOptionError, match=next(iter(bad))):
            cu.steady_state(s, symmetric=False, **bad)


# --------------------------------------------------------------------------- two-time functions
def _dense_superop(system):
    n = system.n
    d = 2 ** n
    cols = []
    for k in range(d * d):
        e = np.zeros(d * d, complex)
        e[k] = 1
        out, sp, sm, sz = _dense_lindblad(system, e.reshape(d, d))
        cols.append(out.ravel())
    return np.array(cols).T, sp, sm, sz


def test_two_time_independent_dipoles_exact():
    """f_ab = 0 for a != b: G_aa(tau) = C_aa exp((i delta_a - Q/2) tau) exactly,
    so the fit returns nu = delta and gamma = Q / 2."""
    s = DipoleSystem.from_matrices(np.eye(3), np.zeros((3, 3)), W=3.0, delta=0.8)
    ss = cu.steady_state(s)
    taus = np.linspace(0, 6, 301)
    tt, Z = cu.two_time_correlations(ss, 1, taus)
    caa = (1 + ss.sz[0]) / 2
    np.testing.assert_allclose(Z[0], 2 * caa * np.exp((0.8j - 2.0) * taus), atol=1e-12)
    fit = cu.fit_pair_spectra(tt, Z, site=1)
    assert np.isnan(fit["nu"][1])
    np.testing.assert_allclose(fit["nu"][[0, 2]], 0.8, rtol=1e-5)
    np.testing.assert_allclose(fit["gamma"][[0, 2]], 2.0, rtol=1e-5)


def test_two_time_against_exact_regression():
    """Z_ab(tau) from the cumulant regression vs the exact quantum regression theorem
    (dense Liouvillian, N = 4, g = 0, synchronised pump). The paper's regression
    closure <sz_a(tau) s+_j(tau) s-_b> ~ <sz_a> G_jb also factorises same-site
    products (a = b), so at small N the curves differ by a visible amount:
    measured max deviation 8-13 % of Z_ab(0) for N = 3-5, f_eff = 8, W = 3-6
    (13 % here); asserted 16 %. The fitted decay rate of the cumulant is 28 % lower
    here (asserted: within 35 %, and lower -- the closure narrows the line at small N).
    f_ab = f_eff / N = 2 Gamma makes f indefinite (not a Lindblad equation): kept on
    purpose, the test compares two solutions of the same equations of motion, and the
    solver says so with a NotLindbladWarning."""
    n = 4
    s = DipoleSystem.all_to_all(n, 8.0, 3.0, delta=np.array([0.2, -0.1, 0.0, 0.1]))
    L, sp, sm, sz = _dense_superop(s)
    w, v = np.linalg.eig(L)
    rho = v[:, np.argmin(np.abs(w))].reshape(2 ** n, 2 ** n)
    rho = rho / np.trace(rho)
    taus = np.linspace(0, 3, 31)
    b = 1
    with pytest.warns(NotLindbladWarning):
        ss = cu.steady_state(s)
    _, Zc = cu.two_time_correlations(ss, b, taus)
    from scipy.linalg import expm
    step = expm(L * (taus[1] - taus[0]))
    for a in (0, 2):
        x = ((sm[a] + sm[b]) @ rho).ravel()
        vals = []
        for _ in taus:
            vals.append(np.trace((sp[a] + sp[b]) @ x.reshape(2 ** n, 2 ** n)))
            x = step @ x
        vals = np.array(vals)
        assert np.max(np.abs(Zc[a] - vals)) < 0.16 * abs(vals[0])
        from mpsync.observables import fit_decay
        g_exact = fit_decay(taus, vals)[1]
        g_cum = fit_decay(taus, Zc[a])[1]
        assert 0 < g_exact - g_cum < 0.35 * g_exact


def test_fig3b_histogram_data_small():
    out = studies.fig3b_histogram_data([0.5, 3.0], n=31, seed=4, bins=10)
    again = studies.fig3b_histogram_data([0.5], n=31, seed=4, bins=10)
    for alpha, v in out.items():
        assert v["nu"].shape == (30,) and v["site"] == 15
        assert v["counts"].sum() == np.isfinite(v["nu"]).sum()
        assert np.all(v["gamma"][np.isfinite(v["gamma"])] > 0)
    np.testing.assert_allclose(again[0.5]["nu"], out[0.5]["nu"])
    # long range (alpha = 0.5) synchronises: narrower spread of pair frequencies
    assert np.nanstd(out[0.5]["nu"]) < np.nanstd(out[3.0]["nu"])
    assert out[0.5]["ZQ"] > out[3.0]["ZQ"]


@pytest.mark.slow
def test_lattice_30x30_fig3a_point():
    """Fig. 3(a) size: 30 x 30 power-law lattice, alpha = 1.5, W = 4 (~10-20 s)."""
    s = DipoleSystem.power_law((30, 30), 1.5, W=4.0)
    ss = cu.steady_state(s)
    assert ss.diagnostics["residual"] < 1e-7
    zq = [ss.cluster_ZQ(d) for d in (2, 5, 10, 30)]
    assert zq[0] > zq[1] > zq[2] > zq[3] > 0
    assert ss.diagnostics["pair_rate"] < 0


def test_warns_when_f_is_not_positive_semidefinite():
    """All-to-all with f_eff / N > Gamma is not a Lindblad equation: the cumulant still
    solves its equations but warns; at f_eff / N <= Gamma it is silent."""
    import warnings

    with pytest.warns(NotLindbladWarning, match="smallest eigenvalue -6.5"):
        cu.steady_state(DipoleSystem.all_to_all(2, f_eff=15, W=7.5))
    with pytest.warns(NotLindbladWarning):
        cu.evolve(DipoleSystem.all_to_all(4, f_eff=8, W=3), [0.0, 0.1])
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotLindbladWarning)
        cu.steady_state(DipoleSystem.all_to_all(16, f_eff=15, W=7.5))
        cu.steady_state(DipoleSystem.all_to_all(6, f_eff=6, W=3))   # f_ab = Gamma: rank one, PSD


def test_unphysical_pair_state_gives_nan_with_warning():
    """The pair matrix of the non-Lindblad N = 2, f_eff = 15 case has an eigenvalue -0.31:
    no mutual information or discord is computed from it (issue 14)."""
    from mpsync.errors import UnphysicalStateWarning

    with pytest.warns(NotLindbladWarning):
        ss = cu.steady_state(DipoleSystem.all_to_all(2, f_eff=15, W=7.5))
    assert np.linalg.eigvalsh(ss.pair_density_matrix(0, 1))[0] < -0.3
    with pytest.warns(UnphysicalStateWarning, match="smallest eigenvalue -0.308"):
        assert np.isnan(ss.mutual_information())
    with pytest.warns(UnphysicalStateWarning):
        assert np.isnan(ss.discord())
    with pytest.warns(UnphysicalStateWarning):
        out = studies.fig_s2_data([2], f_eff=15.0)
    assert np.isnan(out["mutual_information"][0]) and np.isnan(out["discord"][0])


def test_warnings_point_at_the_callers_line():
    """NotLindbladWarning / UnphysicalStateWarning name the user's file, also through
    mpsync.steady_state's dispatcher (not a line inside mpsync)."""
    import mpsync
    from mpsync.errors import UnphysicalStateWarning

    with pytest.warns(NotLindbladWarning) as rec:
        ss = mpsync.steady_state(DipoleSystem.all_to_all(2, f_eff=15, W=7.5), method="cumulant")
    assert rec[0].filename == __file__
    with pytest.warns(UnphysicalStateWarning) as rec:
        ss.mutual_information()
    assert rec[0].filename == __file__
