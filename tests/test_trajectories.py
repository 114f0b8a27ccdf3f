"""Quantum trajectories (method='trajectories') against the exact master equation,
QFI closed forms, seed reproducibility and the memory refusal."""

import numpy as np
import pytest
from conftest import random_g, random_psd_f

from mpsync.errors import InvalidOptionError, InvalidSystemError, TooLargeError
from mpsync.model import DipoleSystem
from mpsync.observables import collective_spin_operators, qfi, qfi_from_operators
from mpsync.paper import studies
from mpsync.solvers import trajectories as tr
from mpsync.solvers.trajectories.statevector import StateSpace, pure_state_qfi


# ---------------------------------------------------------------- independent reference
def _reference_steady(system):
    """Exact steady moments: mpsync's exact solver, or QuTiP's full Liouvillian if absent."""
    try:
        from mpsync.solvers import exact

        ss = exact.steady_state(system)
        return ss.sz, ss.correlations, ss.zz
    except ImportError:
        return _qutip_steady(system)


def _qutip_ops(n):
    import qutip as qt

    sm = [qt.tensor([qt.destroy(2) if b == a else qt.qeye(2) for b in range(n)]) for a in range(n)]
    return qt, sm


def _qutip_steady(system):
    qt, sm = _qutip_ops(system.n)
    n, f, g = system.n, system.f, system.g
    sp = [s.dag() for s in sm]
    H = sum(0.5 * system.delta[a] * (2 * sp[a] * sm[a] - 1) for a in range(n))
    H += sum(0.5 * g[a, b] * sp[a] * sm[b] for a in range(n) for b in range(n) if a != b)
    lam, V = np.linalg.eigh(f)
    c_ops = [np.sqrt(max(l, 0)) * sum(V[b, k] * sm[b] for b in range(n)) for k, l in enumerate(lam) if l > 1e-12]
    c_ops += [np.sqrt(system.W) * s for s in sp] if system.W > 0 else []
    rho = qt.steadystate(H, c_ops)
    sz = np.array([qt.expect(2 * sp[a] * sm[a] - 1, rho) for a in range(n)]).real
    C = np.array([[qt.expect(sp[a] * sm[b], rho) for b in range(n)] for a in range(n)])
    zz = np.array([[qt.expect((2 * sp[a] * sm[a] - 1) * (2 * sp[b] * sm[b] - 1), rho) for b in range(n)]
                   for a in range(n)]).real
    return sz, C, zz


def _deviations(ss, ref):
    """(estimate - exact) / standard error for sz, Re/Im C_ab, zz_ab (a < b) and ZQ2."""
    sz, C, zz = ref
    n = len(sz)
    iu = np.triu_indices(n, 1)
    e = ss.errors
    zq_ref = np.mean(np.real(C)[~np.eye(n, dtype=bool)])
    parts = [(ss.sz - sz) / e["sz"],
             (ss.correlations - C).real[iu] / e["correlations"].real[iu],
             (ss.zz - zz)[iu] / e["zz"][iu],
             [(ss.ZQ2 - zq_ref) / e["ZQ2"]]]
    imag_se = e["correlations"].imag[iu]
    if np.all(imag_se > 1e-6):
        parts.append((ss.correlations - C).imag[iu] / imag_se)
    return np.concatenate([np.ravel(p) for p in parts])


def _random_system(seed, n, W):
    rng = np.random.default_rng(seed)
    return DipoleSystem.from_matrices(random_psd_f(rng, n), random_g(rng, n), W=W,
                                      delta=0.5 * rng.normal(size=n))


# ---------------------------------------------------------------- averages vs exact
@pytest.mark.parametrize("system", [
    DipoleSystem.chain(4, 0.1, "magic", W=2.0),
    _random_system(5, 5, 1.3),
    DipoleSystem.chain(6, 0.25, np.pi / 2, W=1.0, delta=np.linspace(-0.3, 0.3, 6)),
], ids=["chain4", "random5", "chain6"])
def test_jumps_steady_state_matches_exact(system):
    ref = _reference_steady(system)
    ss = tr.steady_state(system, ntraj=40, t_burn=8.0, t_avg=25.0, seed=11, workers=1)
    dev = _deviations(ss, ref)
    assert np.all(np.isfinite(dev))
    assert np.max(np.abs(dev)) < 4.0, dev
    # the errors are real statistical errors, not inflated: the typical deviation is O(1)
    assert np.sqrt(np.mean(dev ** 2)) < 2.0
    assert ss.method == "trajectories" and ss.diagnostics["mean_jumps"] > 10


@pytest.mark.parametrize("unravelling,dt,extrapolate", [("diffusion", 2e-3, False), ("homodyne", 2e-3, False),
                                                       ("diffusion", 5e-3, True)])
def test_diffusive_steady_state_matches_exact(unravelling, dt, extrapolate):
    system = _random_system(7, 4, 1.5)
    ref = _reference_steady(system)
    ss = tr.steady_state(system, ntraj=14, t_burn=6.0, t_avg=14.0, dt=dt, seed=3, workers=1,
                         unravelling=unravelling, extrapolate=extrapolate)
    dev = _deviations(ss, ref)
    assert np.max(np.abs(dev)) < 4.0, dev
    assert "Euler-Maruyama" in ss.diagnostics["integrator"]
    assert ("Talay-Tubaro" in ss.diagnostics["integrator"]) == extrapolate


def test_jumps_evolve_matches_exact_dynamics():
    system = _random_system(9, 4, 0.8)
    times = np.linspace(0.0, 3.0, 7)
    ts = tr.evolve(system, times, initial="up", ntraj=60, seed=5, workers=1)
    try:
        from mpsync.solvers import exact

        ex = exact.evolve(system, times, initial="up")
        ref_sz, ref_C = ex.sz, ex.correlations
    except ImportError:
        pytest.skip("needs the exact solver's evolve")
    assert np.allclose(ts.sz[0], 1.0) and np.allclose(ts.errors["sz"][0], 0.0)
    later = slice(1, None)
    dev_sz = (ts.sz[later] - ref_sz[later]) / ts.errors["sz"][later]
    iu = np.triu_indices(4, 1)
    dC = (ts.correlations[later] - ref_C[later]).real[:, iu[0], iu[1]]
    dev_C = dC / ts.errors["correlations"].real[later][:, iu[0], iu[1]]
    assert np.max(np.abs(dev_sz)) < 4.0 and np.max(np.abs(dev_C)) < 4.0
    assert ts.extras["qfi_trajectories"].shape == (60, len(times))


@pytest.mark.parametrize("unravelling", ["jumps", "diffusion"])
def test_coherent_initial_state_spans_sectors(unravelling):
    """From every dipole along x the state spans all excitation sectors; <s-> is tracked."""
    system = DipoleSystem.chain(3, 0.2, "magic", W=0.5, delta=[0.1, -0.2, 0.3])
    times = np.array([0.0, 0.5, 1.0])
    try:
        from mpsync.solvers import exact

        ex = exact.evolve(system, times, initial="x")
    except ImportError:
        pytest.skip("needs the exact solver's evolve")
    ntraj = 80 if unravelling == "jumps" else 20
    ts = tr.evolve(system, times, initial="x", ntraj=ntraj, seed=3, workers=1, unravelling=unravelling,
                   dt=2e-3)
    assert np.allclose(ts.moments.sm[0], 0.5) and np.allclose(ts.sz[0], 0.0, atol=1e-12)
    for key in ("sz", "sm"):
        est, ref, se = getattr(ts.moments, key)[1:], getattr(ex.moments, key)[1:], ts.errors[key][1:]
        if key == "sm":
            assert np.max(np.abs((est - ref).real / se.real)) < 4.0
            assert np.max(np.abs((est - ref).imag / se.imag)) < 4.0
        else:
            assert np.max(np.abs((est - ref) / se)) < 4.0


def test_single_atom_decay_has_no_time_step_error():
    """N = 1, W = 0 from up: the jump time is exactly -ln(r); <sz>(t) = 2 exp(-t) - 1."""
    system = DipoleSystem.from_matrices(np.ones((1, 1)), np.zeros((1, 1)), W=0.0)
    times = np.array([0.5, 1.0, 2.0])
    ts = tr.evolve(system, times, initial="up", ntraj=400, seed=1, workers=1)
    expect = 2 * np.exp(-times) - 1
    assert np.all(np.abs(ts.sz[:, 0] - expect) < 4 * ts.errors["sz"][:, 0])
    # each trajectory is a pure up/down state: its own sz is exactly +-1
    rng_draws = np.array([np.random.default_rng(s).random() for s in tr.spawn_seeds(1, 400)])
    jump_times = -np.log(rng_draws)
    up_fraction = np.array([(jump_times > t).mean() for t in times])
    assert np.allclose((ts.sz[:, 0] + 1) / 2, up_fraction, atol=1e-10)


# ---------------------------------------------------------------- QFI
def _dicke(n, k):
    psi = np.zeros(2 ** n)
    for i in range(2 ** n):
        if bin(i).count("1") == k:
            psi[i] = 1.0
    return psi / np.linalg.norm(psi)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_qfi_closed_forms(n):
    space = StateSpace(DipoleSystem.from_matrices(np.eye(n), np.zeros((n, n)), W=0.0))
    ghz = np.zeros(2 ** n, dtype=complex)
    ghz[[0, -1]] = 2 ** -0.5
    assert pure_state_qfi(ghz, space=space) == pytest.approx((n * n + 2 * n) / 3, abs=1e-10)
    # coherent spin state along x: F[Jx] = 0, F[Jy] = F[Jz] = N
    css_x = np.ones(2 ** n) / 2 ** (n / 2)
    assert pure_state_qfi(css_x, space=space) == pytest.approx(2 * n / 3, abs=1e-10)
    per_axis = qfi_from_operators(css_x, collective_spin_operators(n))
    assert np.allclose(per_axis, [0.0, n, n], atol=1e-10)
    # Dicke |J = N/2, M>: F[Jz] = 0, F[Jx] = F[Jy] = 2 (J(J+1) - M^2)
    J = n / 2
    for k in range(n + 1):
        M = k - J
        psi = _dicke(n, k)
        expect = 4.0 / 3.0 * (J * (J + 1) - M * M)
        assert pure_state_qfi(psi, space=space) == pytest.approx(expect, abs=1e-10)
        assert qfi(psi) == pytest.approx(expect, abs=1e-10)
    # mixed states (spectral formula): the maximally mixed state has F = 0; the equal
    # mixture of |0...0> and |1...1> commutes with Jz, so F[Jz] = 0, while F[Jx] = N
    # (each component is a Jx-variance-N/4 state and they are not connected by Jx for N > 1)
    assert qfi(np.eye(2 ** n) / 2 ** n) == pytest.approx(0.0, abs=1e-12)
    rho = np.zeros((2 ** n, 2 ** n))
    rho[0, 0] = rho[-1, -1] = 0.5
    fx, fy, fz = qfi_from_operators(rho, collective_spin_operators(n))
    assert fz == pytest.approx(0.0, abs=1e-12)
    assert fx == pytest.approx(fy) and fx == pytest.approx(n if n > 1 else 1.0, abs=1e-10)


def test_qfi_from_moments_equals_variances_on_random_states(rng):
    n = 4
    space = StateSpace(DipoleSystem.from_matrices(np.eye(n), np.zeros((n, n)), W=0.0))
    for _ in range(5):
        psi = rng.normal(size=2 ** n) + 1j * rng.normal(size=2 ** n)
        assert pure_state_qfi(psi, space=space) == pytest.approx(qfi(psi / np.linalg.norm(psi)), rel=1e-10)


def test_conditional_qfi_and_averaged_state():
    system = DipoleSystem.chain(3, 0.1, "magic", W=1.0)
    out = studies.conditional_qfi(system, [0.5, 2.0], ntraj=4, t_burn=3.0, t_avg=3.0, sample_dt=0.5,
                                  dt=2e-3, seed=2, workers=1, unconditional="trajectories")
    assert out["threshold"] == pytest.approx(2.0) and out["maximum"] == pytest.approx(5.0)
    assert np.all(out["conditional"] > 0) and np.all(out["conditional"] <= out["maximum"] + 1e-9)
    assert np.all(np.isfinite(out["unconditional"]))
    # the averaged projector carries the same moments as the averaged trajectories
    ss = tr.steady_state(system, ntraj=3, t_burn=1.0, t_avg=2.0, seed=4, workers=1, keep_density_matrix=True)
    rho = ss.extras["rho"]
    assert np.trace(rho).real == pytest.approx(1.0)
    jz = collective_spin_operators(3)[2]
    assert np.trace(jz @ rho).real == pytest.approx(0.5 * np.sum(ss.sz), abs=1e-10)
    series = studies.qfi_vs_time(system, [0.0, 0.5, 1.0], ntraj=2, dt=2e-3, seed=1, workers=1)
    assert series["trajectories"].shape == (2, 3)
    # the ground state is the coherent spin state along -z: F = (0 + N + N) / 3 = 2N/3 exactly
    assert series["trajectories"][:, 0] == pytest.approx(2.0, abs=1e-12)


# ---------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("unravelling,kw", [("jumps", {}), ("diffusion", {"dt": 5e-3})])
def test_same_seed_same_trajectories_whatever_the_workers(unravelling, kw):
    system = DipoleSystem.chain(4, 0.2, "magic", W=1.5)
    run = lambda seed, workers: tr.steady_state(  # noqa: E731
        system, ntraj=4, t_burn=1.0, t_avg=1.0, seed=seed, workers=workers, unravelling=unravelling, **kw)
    a, b, c = run(7, 1), run(7, 2), run(8, 1)
    for key in ("trajectory_ZQ2", "trajectory_qfi"):
        assert np.array_equal(a.extras[key], b.extras[key])
    assert np.array_equal(a.correlations, b.correlations) and np.array_equal(a.sz, b.sz)
    assert not np.array_equal(a.extras["trajectory_qfi"], c.extras["trajectory_qfi"])


# ---------------------------------------------------------------- errors
def test_memory_refusal_names_the_mpo():
    system = DipoleSystem.chain(30, 0.1, "magic", W=2.0)
    with pytest.raises(TooLargeError, match="mpo"):
        tr.steady_state(system, ntraj=2, workers=1)


def test_memory_refusal_respects_the_limit(monkeypatch):
    monkeypatch.setenv("MPSYNC_MAX_MEMORY", "50M")
    # the methods named are those that fit in the limit too (mpo at max_bond 64 does not)
    with pytest.raises(TooLargeError, match="use method='cumulant' or 'meanfield', or fewer workers"):
        tr.evolve(DipoleSystem.chain(14, 0.1, "magic", W=2.0), [0.0, 1.0], ntraj=2, workers=1)


def test_bad_options_are_rejected_before_work():
    system = DipoleSystem.chain(3, 0.1, "magic", W=1.0)
    with pytest.raises(InvalidOptionError, match="unravelling"):
        tr.steady_state(system, unravelling="teleport")
    with pytest.raises(InvalidOptionError, match="ntraj"):
        tr.steady_state(system, ntraj=0)
    bad = DipoleSystem.all_to_all(4, f_eff=12.0, W=1.0)  # f_eff / N > Gamma: not PSD
    with pytest.raises(InvalidSystemError, match="positive semidefinite"):
        tr.steady_state(bad, ntraj=1)


def test_registry_reaches_the_solver():
    import mpsync

    ss = mpsync.steady_state(DipoleSystem.chain(2, 0.1, "magic", W=1.0), method="trajectories",
                             ntraj=2, t_burn=1.0, t_avg=1.0, seed=0, workers=1)
    assert ss.n == 2 and ss.method == "trajectories" and ss.diagnostics["ntraj"] == 2


# ---------------------------------------------------------------- jump basis (issue 14)
@pytest.mark.parametrize("basis", tr.JUMP_BASES)
def test_jump_operators_decompose_f(basis):
    """Every jump basis is a decomposition f = A A^T (so the master equation is the same)."""
    for system in (DipoleSystem.all_to_all(5, 2.5, 1.0), DipoleSystem.chain(5, 0.2, "magic", W=1.0)):
        A = tr.jump_operators(system, basis)
        np.testing.assert_allclose(A @ A.T, system.f, atol=1e-12)
    # all-to-all, f_ab = 0.5 < Gamma: eigenvalue 0.5 four times (degenerate) and 2.5 once
    A = tr.jump_operators(DipoleSystem.all_to_all(5, 2.5, 1.0), basis)
    if basis == "local":
        # local emission at Gamma - f_ab = 0.5 plus one collective channel sqrt(f_ab) sum_b s-_b
        np.testing.assert_allclose(A[:, :5], np.sqrt(0.5) * np.eye(5), atol=1e-12)
        np.testing.assert_allclose(np.abs(A[:, 5:]), np.sqrt(0.5) * np.ones((5, 1)), atol=1e-12)
    else:
        assert A.shape == (5, 5)
    # f_ab = Gamma (rank one): both bases are the single collective mode
    A1 = tr.jump_operators(DipoleSystem.all_to_all(4, 4.0, 1.0), basis)
    np.testing.assert_allclose(np.abs(A1), np.ones((4, 1)), atol=1e-12)
    with pytest.raises(InvalidOptionError, match="jump_basis"):
        tr.jump_operators(DipoleSystem.all_to_all(4, 4.0, 1.0), "dicke")


def test_unconditional_moments_do_not_depend_on_the_jump_basis():
    """Degenerate f (all-to-all N = 4, f_ab = 0.5): jumps in the eigenmode and in the
    local + collective basis give the exact steady-state moments within 5 standard errors."""
    from mpsync.solvers import exact

    system = DipoleSystem.all_to_all(4, 2.0, 2.0)
    ref = exact.steady_state(system)
    for basis in tr.JUMP_BASES:
        ss = tr.steady_state(system, ntraj=24, t_burn=8.0, t_avg=24.0, seed=3, workers=1,
                             jump_basis=basis)
        assert ss.diagnostics["jump_basis"] == basis
        se = np.sqrt(ss.errors["sz"] ** 2 + 1e-6)
        assert np.all(np.abs(ss.sz - ref.sz) <= 5 * se), (basis, ss.sz, ref.sz)
        sec = np.sqrt(np.real(ss.errors["correlations"]) ** 2 + 1e-6)
        assert np.all(np.abs((ss.correlations - ref.correlations).real) <= 5 * sec), basis


def test_unravelling_names():
    """jumps / homodyne / heterodyne; 'diffusion' is the old name of heterodyne (same paths)."""
    assert set(tr.UNRAVELLINGS) >= {"jumps", "homodyne", "heterodyne"}
    system = DipoleSystem.all_to_all(3, 3.0, 2.0)
    a, b = (tr.evolve(system, [0.0, 0.2], ntraj=2, dt=1e-2, seed=1, workers=1, unravelling=u)
            for u in ("heterodyne", "diffusion"))
    assert np.array_equal(a.extras["qfi_trajectories"], b.extras["qfi_trajectories"])
    with pytest.raises(InvalidOptionError, match="unravelling"):
        tr.evolve(system, [0.0, 0.2], ntraj=2, unravelling="photodetection")
