"""Tests of the permutation-symmetric solver (method="permutational").

References: the full master equation built independently with QuTiP from the
same f, g, delta and W (qutip is a test dependency only), the exact solver
(mpsync.solvers.exact) when available, and QuTiP-PIQS at N = 70.
"""

import numpy as np
import pytest
from scipy.sparse.linalg import expm_multiply

import mpsync
from mpsync import DipoleSystem
from mpsync.errors import InvalidSystemError, NotApplicableError
from mpsync.observables import ZQ_MAX, qfi
from mpsync.solvers import exact
from mpsync.solvers import permutational as P
from mpsync.solvers.permutational.dicke_sectors import Sector, sector_liouvillian
from mpsync.solvers.permutational.site_space import SiteSpace

qt = pytest.importorskip("qutip")

# (N, f_eff, W, g_eff, delta): below (W < Gamma) and above (W > Gamma) threshold,
# with and without coherent exchange and detuning
CASES = [
    (2, 1.5, 0.3, 0.0, 0.0),
    (3, 2.0, 0.5, 0.0, 0.0),
    (4, 2.5, 3.0, 0.7, 0.3),
    (5, 4.0, 0.6, -1.2, 0.5),
    (5, 3.0, 2.0, 0.0, 0.0),
    (6, 3.0, 1.5, 0.8, -0.4),
    (4, -1.0, 1.2, 0.5, 0.0),  # negative f_ab (still positive semidefinite)
]


# ---------------------------------------------------------------------- reference
def _qutip_model(system):
    """H and collapse operators of docs/physics.md#master-equation, site 0 first, basis 0 = down."""
    n = system.n
    sm1 = qt.Qobj(np.array([[0.0, 1.0], [0.0, 0.0]]))
    ops = []
    for k in range(n):
        lst = [qt.qeye(2)] * n
        lst[k] = sm1
        ops.append(qt.tensor(lst))
    H = 0 * ops[0]
    for a in range(n):
        H += 0.5 * system.delta[a] * (2 * ops[a].dag() * ops[a] - 1)
        for b in range(n):
            if a != b:
                H += 0.5 * system.g[a, b] * ops[a].dag() * ops[b]
    lam, V = np.linalg.eigh(system.f)
    c_ops = [np.sqrt(l) * sum(V[b, k] * ops[b] for b in range(n)) for k, l in enumerate(lam) if l > 1e-12]
    c_ops += [np.sqrt(system.W) * o.dag() for o in ops]
    return H, c_ops, ops


def _reference_steady(system):
    H, c_ops, ops = _qutip_model(system)
    rho = qt.steadystate(H, c_ops).full()
    return rho, [o.full() for o in ops]


def _moments_from_rho(rho, ops):
    n = len(ops)
    sz = np.array([np.real(np.trace(rho @ (2 * o.conj().T @ o - np.eye(len(rho))))) for o in ops])
    C = np.array([[np.trace(rho @ ops[a].conj().T @ ops[b]) for b in range(n)] for a in range(n)])
    Z = [2 * o.conj().T @ o - np.eye(len(rho)) for o in ops]
    zz = np.array([[np.real(np.trace(rho @ Z[a] @ Z[b])) for b in range(n)] for a in range(n)])
    return sz, C, zz


# ---------------------------------------------------------------------- steady state
@pytest.mark.parametrize("n, f_eff, W, g_eff, delta", CASES)
def test_steady_state_matches_full_master_equation(n, f_eff, W, g_eff, delta):
    system = DipoleSystem.all_to_all(n, f_eff, W, g_eff=g_eff, delta=delta)
    res = P.steady_state(system)
    rho, ops = _reference_steady(system)
    sz, C, zz = _moments_from_rho(rho, ops)
    assert np.max(np.abs(res.sz - sz)) < 1e-8
    assert np.max(np.abs(res.correlations - C)) < 1e-8
    assert np.max(np.abs(res.zz - zz)) < 1e-8
    assert res.diagnostics["residual"] < 1e-12
    # observables through the shared result type
    assert abs(res.ZQ2 - np.mean(np.real(C[~np.eye(n, dtype=bool)]))) < 1e-8


@pytest.mark.parametrize("n, f_eff, W, g_eff, delta", [CASES[2], CASES[3], CASES[5]])
def test_steady_state_matches_exact_solver(n, f_eff, W, g_eff, delta):
    system = DipoleSystem.all_to_all(n, f_eff, W, g_eff=g_eff, delta=delta)
    a, b = P.steady_state(system), exact.steady_state(system)
    for name in ("sz", "correlations", "zz"):
        assert np.max(np.abs(getattr(a, name) - getattr(b, name))) < 1e-8, name
    assert abs(a.mutual_information() - b.mutual_information()) < 1e-7
    assert abs(a.discord() - b.discord()) < 1e-6


def test_single_atom_and_ground_state():
    one = P.steady_state(DipoleSystem.all_to_all(1, 0.0, 3.0))
    assert abs(one.sz[0] - (3.0 - 1.0) / (3.0 + 1.0)) < 1e-14
    dark = P.steady_state(DipoleSystem.all_to_all(5, 2.0, 0.0))
    assert np.allclose(dark.sz, -1.0) and abs(dark.ZQ2) < 1e-15


def test_trace_is_conserved_in_every_sector():
    for n in (6, 7):
        for s in (0, -1, 2):
            sec = Sector.build(n, s)
            L = sector_liouvillian(sec, 0.3, 0.7, 1.3, 0.4, -0.6)
            if s == 0:
                assert np.max(np.abs(np.asarray(L.sum(axis=0)))) < 1e-12
            assert sec.size == (sum(2 * j + 1 - abs(s) for j in np.arange(n / 2, -0.1, -1) if 2 * j + 1 > abs(s)))


def test_site_space_contains_the_steady_state():
    # the Clebsch-Gordan decomposition of the N-spin steady state into (N-1) x site
    # must be a null vector of the independently assembled (N-1) x site Liouvillian
    system = DipoleSystem.all_to_all(6, 3.0, 2.5, g_eff=0.9, delta=0.4)
    res = P.steady_state(system)
    r = P.rates(system)
    space = SiteSpace(6, 0)
    x = space.from_dicke_populations(res.extras["populations"], res.extras["j"], res.extras["m"], lower_site=False)
    L = space.liouvillian(r["collective_emission"], r["emission"], r["pumping"], r["delta"], r["g"])
    assert np.max(np.abs(L @ x)) < 1e-13
    blk, u, i, u1, k = space.elems.T
    assert abs(np.sum(x[(u == u1) & (i == k)]) - 1) < 1e-13  # unit trace


# ---------------------------------------------------------------------- errors
def test_chain_is_refused_with_alternatives():
    chain = DipoleSystem.chain(6, spacing=0.2, theta="magic", W=2.0)
    with pytest.raises(NotApplicableError) as err:
        mpsync.steady_state(chain, method="permutational")
    msg = str(err.value)
    for name in ("exact", "cumulant", "mpo"):
        assert name in msg
    nonuniform = DipoleSystem.all_to_all(4, 2.0, 1.0, delta=[0, 0.1, 0, 0])
    with pytest.raises(NotApplicableError):
        P.steady_state(nonuniform)


def test_non_lindblad_all_to_all_is_refused():
    with pytest.raises(InvalidSystemError, match="permutational"):
        P.steady_state(DipoleSystem.all_to_all(4, 8.0, 1.0))  # f_eff/N = 2 > Gamma


def test_non_uniform_initial_state_is_refused():
    system = DipoleSystem.all_to_all(3, 2.0, 1.0)
    with pytest.raises(NotApplicableError, match="same initial state"):
        P.evolve(system, [0, 1], initial=[np.diag([1.0, 0]), np.diag([0, 1.0]), np.diag([1.0, 0])])


# ---------------------------------------------------------------------- QuTiP-PIQS
def _pim_moments(n, f_eff, W, gamma=1.0):
    from scipy.sparse.linalg import splu
    from qutip import piqs

    pim = piqs.Pim(n, emission=gamma - f_eff / n, pumping=W, collective_emission=f_eff / n)
    M = pim.coefficient_matrix().tocsc()
    size = M.shape[0]
    keep = np.arange(1, size)
    p = np.insert(splu(M[keep][:, keep].tocsc()).solve(-M[keep][:, [0]].toarray().ravel()), 0, 1.0)
    p /= p.sum()
    J = np.zeros(size)
    m = np.zeros(size)
    cols = n // 2 + 1 if n % 2 == 0 else (n + 1) // 2
    for r, c in np.ndindex(n + 1, cols):
        if pim.isdicke(r, c):
            k = pim.calculate_k(r, c)
            J[k], m[k] = pim.calculate_j_m(r, c)
    sz = 2 * (p @ m) / n
    C = (p @ ((J + m) * (J - m + 1)) - n * (1 + sz) / 2) / (n * (n - 1))
    return sz, C


@pytest.mark.parametrize("W", [2.0, 7.5, 12.0])
def test_matches_qutip_piqs_at_n70(W):
    res = P.steady_state(DipoleSystem.all_to_all(70, 15.0, W))
    sz, C = _pim_moments(70, 15.0, W)
    assert abs(res.sz[0] - sz) < 1e-6
    assert abs(res.ZQ2 - C) < 1e-6


# ---------------------------------------------------------------------- physics
def test_large_n_optimum_approaches_meiser_holland():
    # C -> x (1 - x)/2, x = W/f_eff; Z_Q -> 1/sqrt(8) at W = f_eff/2 as N, f_eff grow
    gaps = []
    for n, f_eff in ((100, 40.0), (400, 200.0)):
        zq = {x: P.steady_state(DipoleSystem.all_to_all(n, f_eff, x * f_eff)).ZQ for x in (0.4, 0.5, 0.6)}
        assert zq[0.5] > zq[0.4] and zq[0.5] > zq[0.6]
        gaps.append(ZQ_MAX - zq[0.5])
    assert 0 < gaps[1] < gaps[0] and gaps[1] < 0.01


@pytest.mark.slow
def test_n1000_within_targets():
    res = P.steady_state(DipoleSystem.all_to_all(1000, 500.0, 250.0))
    assert res.diagnostics["seconds"] < 60
    assert abs(res.ZQ - ZQ_MAX) < 0.005
    assert res.diagnostics["residual"] < 1e-10


def test_unconditional_qfi_matches_dense_spectral_formula():
    for n, f_eff, W, g_eff, delta in (CASES[2], CASES[4]):
        system = DipoleSystem.all_to_all(n, f_eff, W, g_eff=g_eff, delta=delta)
        rho, _ = _reference_steady(system)
        F, (fx, fy, fz) = P.unconditional_qfi(P.steady_state(system), per_axis=True)
        assert abs(F - qfi(rho)) < 1e-7
        assert fz == 0.0 and fx == fy


# ---------------------------------------------------------------------- dynamics
def _qutip_propagate(system, rho0, times, obs):
    H, c_ops, ops = _qutip_model(system)
    L = qt.liouvillian(H, c_ops).full()  # QuTiP stacks columns
    d = rho0.shape[0]
    v = np.asarray(rho0, complex).reshape(-1, order="F")
    out = []
    for t in times:
        vt = expm_multiply(L * t, v) if t > 0 else v
        out.append(obs(vt.reshape(d, d, order="F")))
    return out


@pytest.mark.parametrize("initial", ["down", "x", "mixed"])
def test_evolve_matches_full_master_equation(initial):
    n = 4
    system = DipoleSystem.all_to_all(n, 2.5, 1.5, g_eff=0.6, delta=0.2)
    rho1 = {"down": np.diag([1.0, 0.0]), "x": 0.5 * np.ones((2, 2)),
            "mixed": np.array([[0.3, 0.2 - 0.1j], [0.2 + 0.1j, 0.7]])}[initial]
    times = np.array([0.0, 0.3, 1.0, 2.5])
    ts = P.evolve(system, times, initial=rho1 if initial == "mixed" else initial)
    rho0 = rho1
    for _ in range(n - 1):
        rho0 = np.kron(rho0, rho1)
    _, _, ops = _qutip_model(system)
    ops = [o.full() for o in ops]
    ref = _qutip_propagate(system, rho0, times,
                           lambda r: (_moments_from_rho(r, ops), np.trace(r @ ops[0]),
                                      np.trace(r @ (2 * ops[0].conj().T @ ops[0] - np.eye(2 ** n)) @ ops[1]),
                                      np.trace(r @ ops[0] @ ops[1])))
    for k in range(times.size):
        (sz, C, zz), sm, zsm, smsm = ref[k]
        assert np.max(np.abs(ts.sz[k] - sz)) < 1e-9
        assert np.max(np.abs(ts.correlations[k] - C)) < 1e-9
        assert np.max(np.abs(ts.zz[k] - zz)) < 1e-9
        if initial != "down":
            assert abs(ts.moments.sm[k, 0] - sm) < 1e-9
            assert abs(ts.moments.zsm[k, 0, 1] - zsm) < 1e-9
            assert abs(ts.moments.smsm[k, 0, 1] - smsm) < 1e-9


def test_two_time_functions_match_full_master_equation():
    n = 4
    system = DipoleSystem.all_to_all(n, 2.5, 3.0, g_eff=0.7, delta=0.3)
    res = P.steady_state(system)
    taus = np.linspace(0.0, 1.5, 6)
    r = mpsync.two_time(res, taus, pairs=[(0, 1)])
    rho, ops = _reference_steady(system)
    Jm = sum(ops)
    H, c_ops, _ = _qutip_model(system)
    ref_j = _qutip_propagate(system, Jm @ rho, taus, lambda r: np.trace(Jm.conj().T @ r))
    ref_same = _qutip_propagate(system, ops[0] @ rho, taus, lambda r: np.trace(ops[0].conj().T @ r))
    ref_cross = _qutip_propagate(system, ops[0] @ rho, taus, lambda r: np.trace(ops[1].conj().T @ r))
    ref_j, ref_same, ref_cross = (np.array(v) for v in (ref_j, ref_same, ref_cross))
    assert r.method == "permutational"
    assert np.max(np.abs(r.J - ref_j)) < 1e-9
    assert np.max(np.abs(r.G[0] - ref_cross)) < 1e-9 and np.max(np.abs(r.G_reverse[0] - ref_cross)) < 1e-9
    assert np.max(np.abs(r.Z[0] - 2 * (ref_same + ref_cross))) < 1e-9
    # the former function, kept one release, gives the same numbers
    old = P.dicke_two_time(res, taus, kind="pair")
    assert np.max(np.abs(old.parts["same"] - ref_same)) < 1e-9
    assert np.max(np.abs(old.values - r.Z[0])) < 1e-12


def test_two_time_at_zero_equals_equal_time_correlations():
    n = 70
    res = P.steady_state(DipoleSystem.all_to_all(n, 15.0, 7.5))
    sz, C = res.sz[0], res.correlations[0, 1].real
    r = P.two_time(res.system, [0.0, 0.05, 0.1, 0.2], [(0, 1), (5, 5)], res)
    assert abs(r.J[0] - (n * (1 + sz) / 2 + n * (n - 1) * C)) < 1e-9 * n * n
    assert abs(r.Z[0, 0] - ((1 + sz) + 2 * C)) < 1e-10
    same = r.Z[1] / 4
    # consistency of the two spaces: <J+(tau)J-> = N (same + (N - 1) cross)
    assert np.max(np.abs(r.J - n * (same + (n - 1) * r.G[0]))) < 1e-8 * n * n
    assert r.fits["gamma"][0] > 0


def test_registry_entry_needs_no_options():
    res = mpsync.steady_state(DipoleSystem.all_to_all(70, 15.0, 7.5), method="permutational")
    d = res.to_dict()
    assert d["method"] == "permutational" and d["N"] == 70 and d["diagnostics"]["basis_size"] == 36 ** 2
    ts = mpsync.evolve(DipoleSystem.all_to_all(10, 5.0, 2.0), [0, 1, 2], initial="up", method="permutational")
    assert ts.sz.shape == (3, 10) and abs(ts.sz[0, 0] - 1) < 1e-14


def test_piqs_rate_mapping_at_small_n():
    # collective_emission = f_eff/N, emission = Gamma - f_eff/N, pumping = W reproduces
    # the full master equation: the mapping used at N = 70 above
    system = DipoleSystem.all_to_all(5, 3.0, 2.0)
    rho, ops = _reference_steady(system)
    sz, C, _ = _moments_from_rho(rho, ops)
    pim_sz, pim_C = _pim_moments(5, 3.0, 2.0)
    assert abs(pim_sz - sz[0]) < 1e-8 and abs(pim_C - C[0, 1].real) < 1e-8


def test_long_time_evolution_reaches_the_steady_state():
    system = DipoleSystem.all_to_all(30, 8.0, 4.0, g_eff=1.0, delta=0.5)
    ts = P.evolve(system, [0.0, 40.0], initial="x")
    ss = P.steady_state(system)
    assert abs(ts.sz[-1, 0] - ss.sz[0]) < 1e-8
    assert abs(ts.correlations[-1, 0, 1] - ss.correlations[0, 1]) < 1e-8
    assert abs(ts.moments.sm[-1, 0]) < 1e-8  # the coherence of the initial state decays
    assert abs(ts.sm[0, 0] - 0.5) < 1e-12  # <s-> = 1/2 along +x


def test_memory_check_before_allocation(monkeypatch):
    from mpsync.errors import TooLargeError

    monkeypatch.setenv("MPSYNC_MAX_MEMORY", "1M")
    with pytest.raises(TooLargeError, match="permutational"):
        P.steady_state(DipoleSystem.all_to_all(400, 80.0, 40.0))


def test_underflowing_pivot_population_does_not_break_the_solve():
    # Below threshold the middle Dicke populations underflow (~1e-33); fixing one of them made
    # the reduced LU exactly singular (Fig. 2(b) grid point). The solve must fall back to the
    # ground state and agree with the neighbouring, well-conditioned f_eff.
    bad = P.steady_state(DipoleSystem.all_to_all(70, 11.172413793103448, 0.5))
    near = P.steady_state(DipoleSystem.all_to_all(70, 11.1725, 0.5))
    assert bad.diagnostics["residual"] < 1e-12
    assert abs(float(bad.ZQ2) - float(near.ZQ2)) < 1e-6
    assert abs(bad.sz[0] - near.sz[0]) < 1e-5


@pytest.mark.parametrize("f_eff", [1.5, 5.0])
def test_optimal_pump_is_the_maximum_of_a_fine_scan(f_eff):
    """The refined optimum beats every point of an independent fine scan (N = 8)."""
    w_opt, zq_opt = P.optimal_pump(8, f_eff)
    fine = np.geomspace(0.3, 30.0, 301)
    zq = np.array([float(P.steady_state(DipoleSystem.all_to_all(8, f_eff, w)).ZQ) for w in fine])
    assert zq_opt >= zq.max() - 1e-9
    i = int(np.argmax(zq))
    assert fine[max(i - 1, 0)] <= w_opt <= fine[min(i + 1, len(fine) - 1)]
    assert abs(float(P.steady_state(DipoleSystem.all_to_all(8, f_eff, w_opt)).ZQ) - zq_opt) < 1e-12
    # a small f_eff needs W well above f_eff / 2 at finite N (not the mean-field optimum)
    assert w_opt / f_eff > (1.0 if f_eff < 2 else 0.5)
