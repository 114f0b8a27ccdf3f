"""MPO solver: TDVP, the bond-dimension ladder and the method="mpo" entry points.

Every accuracy test compares with the exact solver (mpsync.solvers.exact, sparse
Liouvillian in the balanced sector / full space), an independent code path.
"""

import numpy as np
import pytest
import scipy.sparse.linalg as spla

import mpsync
from mpsync import DipoleSystem
from mpsync.channels import SM, SP, bra_superop, ket_superop, local_generator, pair_channel_coefficients
from mpsync.errors import (ConvergenceError, ConvergenceWarning, InvalidOptionError, InvalidSystemError,
                           NotApplicableError, TooLargeError)
from mpsync.solvers import exact
from mpsync.solvers.mpo import tdvp


# ---------------------------------------------------------------------- helpers
def automaton_mpo(system):
    """Uncompressed Liouvillian MPO written independently of mpsync.solvers.mpo.liouvillian.

    Bond states: 0 = nothing placed, 1 = done, 2 + 4 l + t = channel of type t
    opened at site l (t: ket s+, ket s-, bra s+, bra s-).
    """
    n = system.n
    ket, bra, cross = pair_channel_coefficients(system.f, system.g)
    Kp, Km, Bp, Bm = ket_superop(SP), ket_superop(SM), bra_superop(SP), bra_superop(SM)
    opens = [Kp, Km, Bp, Bm]

    def close(t, l, r):
        return [ket[l, r] * Km, ket[r, l] * Kp + cross[r, l] * Bp,
                bra[l, r] * Bm + cross[l, r] * Km, bra[r, l] * Bp][t]

    out = []
    for a in range(n):
        Wa = np.zeros((2 + 4 * a, 2 + 4 * (a + 1), 4, 4), complex)
        Wa[0, 0] = Wa[1, 1] = np.eye(4)
        Wa[0, 1] = local_generator(system.delta[a], system.gamma, system.W)
        for t in range(4):
            Wa[0, 2 + 4 * a + t] = opens[t]
            for l in range(a):
                Wa[2 + 4 * l + t, 2 + 4 * l + t] = np.eye(4)
                Wa[2 + 4 * l + t, 1] = close(t, l, a)
        out.append(Wa)
    out[0] = out[0][:1]
    out[-1] = out[-1][:, 1:2]
    return out


def to_vector(mps):
    v = mps[0]
    for A in mps[1:]:
        v = np.tensordot(v, A, axes=([-1], [0]))
    return v.reshape(-1)


def down_mps(n):
    return [np.diag([1.0, 0.0]).reshape(1, 4, 1).astype(complex) for _ in range(n)]


@pytest.fixture(scope="module")
def chain4():
    return DipoleSystem.chain(4, 0.15, "magic", W=2.0, delta=[0.3, -0.2, 0.1, 0.0])


# ---------------------------------------------------------------------- TDVP core
def test_automaton_mpo_matches_exact_liouvillian(chain4):
    mpo = automaton_mpo(chain4)
    full = mpo[0]
    for w in mpo[1:]:
        full = np.einsum("abij,bckl->acikjl", full, w).reshape(
            1, w.shape[1], full.shape[2] * 4, full.shape[3] * 4)
    L = exact.liouvillian(chain4).toarray()
    assert np.abs(full[0, 0] - L).max() < 1e-12


def test_expm_krylov_matches_dense_expm_forward_and_backward(rng):
    A = rng.normal(size=(60, 60)) + 1j * rng.normal(size=(60, 60)) - 8 * np.eye(60)
    v = rng.normal(size=60) + 0j
    import scipy.linalg
    for t in (0.3, -0.2, 4.0):  # 4.0: |t A| ~ 60, needs sub-steps with m_max = 10
        got = tdvp.expm_krylov(lambda x: A @ x, v, t, tol=1e-12, m_max=10)
        ref = scipy.linalg.expm(t * A) @ v
        assert np.linalg.norm(got - ref) <= 1e-9 * np.linalg.norm(ref)


def test_expm_krylov_long_step_of_a_decaying_start():
    """A start that decays fast (all down under a pump W: <v|L|v> = -N W) must not be taken
    for converged after one Krylov vector: exp(t H_11) underflows while the true answer keeps
    its trace (the phi_1 error estimate; found in exact.evolve at N = 7-11, one step t = 2)."""
    import scipy.linalg

    from mpsync.solvers.krylov import expm_krylov

    s = DipoleSystem.chain(3, 0.1, "magic", W=8.0)
    L = exact.liouvillian(s, ordering="ket_bra").toarray()
    rho = np.zeros((8, 8), dtype=complex)
    rho[0, 0] = 1.0
    v = rho.reshape(-1)
    for t in (0.5, 2.0):
        ref = scipy.linalg.expm(t * L) @ v
        got = expm_krylov(lambda x: L @ x, v, t, tol=1e-10, m_max=20)
        assert abs(np.trace(got.reshape(8, 8)) - 1) < 1e-8
        assert np.linalg.norm(got - ref) <= 1e-8


def test_expm_krylov_series_checks_every_output_time(rng, monkeypatch):
    """Every output time inside a sub-step has its error estimate checked: one that fails is
    propagated on its own (forced here by an estimate that fails at the inner times only),
    and either way the series equals the dense exponential."""
    import sys

    import scipy.linalg

    from mpsync.solvers import krylov

    A = rng.normal(size=(40, 40)) + 1j * rng.normal(size=(40, 40)) - 6 * np.eye(40)
    v = rng.normal(size=40) + 0j
    times = np.linspace(0.0, 3.0, 13)
    ref = np.array([scipy.linalg.expm(t * A) @ v for t in times])
    real = krylov._exp_and_error
    refused = []

    def inner_times_fail(tau, H, m, hn):
        E, err = real(tau, H, m, hn)
        if sys._getframe(1).f_code.co_name == "expm_krylov_series":  # an output time's check
            refused.append(tau)
            return E, 1.0
        return E, err                   # the sub-steps' own checks pass through

    for forced in (False, True):
        if forced:
            monkeypatch.setattr(krylov, "_exp_and_error", inner_times_fail)
        calls = {"n": 0}

        def mv(x):
            calls["n"] += 1
            return A @ x

        got = krylov.expm_krylov_series(mv, v, times, lambda V: V, tol=1e-12, m_max=12)
        assert np.abs(got - ref).max() <= 1e-9 * np.abs(ref).max()
        if not forced:
            plain = calls["n"]
        else:
            assert refused and calls["n"] > plain  # the refused times cost their own spaces


def test_tdvp_evolution_matches_exact_propagator(chain4):
    """Full bond dimension: TDVP is exact up to its O(dt^3) splitting error per step."""
    mpo = automaton_mpo(chain4)
    L = exact.liouvillian(chain4)
    v0 = to_vector(down_mps(4))
    errs = []
    for dt in (0.04, 0.02):
        eng = tdvp.TDVP(mpo, down_mps(4), max_bond=64, cutoff=1e-14)
        for _ in range(int(round(0.4 / dt))):
            eng.step(dt)
        got = to_vector(tdvp.trace_normalized(eng.mps))
        ref = spla.expm_multiply(L * 0.4, v0)
        errs.append(np.abs(got - ref).max())
    assert errs[1] < 1e-4
    assert errs[1] < errs[0]  # converges with dt


def test_one_site_tdvp_at_full_bond_is_exact(chain4):
    """Once the bonds are full ([4, 16, 4]) the one-site tangent space is the whole space."""
    mpo = automaton_mpo(chain4)
    L = exact.liouvillian(chain4)
    eng = tdvp.TDVP(mpo, down_mps(4), max_bond=64, cutoff=0.0)
    for _ in range(4):
        eng.step(0.05)
    assert eng.bond_dims == [4, 16, 4]
    v1 = to_vector(tdvp.trace_normalized(eng.mps))
    for _ in range(10):
        eng.step1(0.05)
    assert eng.bond_dims == [4, 16, 4]
    got = to_vector(tdvp.trace_normalized(eng.mps))
    ref = spla.expm_multiply(L * 0.5, v1)
    assert np.abs(got - ref).max() < 1e-6


def test_measurements_match_dense_vector(chain4, rng):
    mpo = automaton_mpo(chain4)
    eng = tdvp.TDVP(mpo, down_mps(4), max_bond=64, cutoff=1e-14)
    for _ in range(5):
        eng.step(0.1)
    mps = tdvp.trace_normalized(eng.mps)
    v = to_vector(mps)
    rho = v.reshape([2, 2] * 4).transpose(0, 2, 4, 6, 1, 3, 5, 7).reshape(16, 16)
    assert abs(tdvp.trace(mps) - 1) < 1e-12 and abs(np.trace(rho) - 1) < 1e-12
    assert abs(tdvp.norm(mps) - np.linalg.norm(v)) < 1e-12
    L = exact.liouvillian(chain4)
    assert abs(tdvp.residual_norm(mpo, mps) - np.linalg.norm(L @ v) / np.linalg.norm(v)) < 1e-7
    ref = exact.full_moments(rho)
    s, z, tr = tdvp.zq2_sum(mps)
    off = ~np.eye(4, dtype=bool)
    assert abs(s / tr - ref.correlations[off].sum()) < 1e-12
    assert abs(z / tr - ref.sz.sum()) < 1e-12
    assert tdvp.antihermitian_norm(mps) < 1e-7  # sqrt of round-off
    # a non-Hermitian perturbation is detected with the right size
    bad = [A.copy() for A in mps]
    bad[0] = bad[0] + 0.01 * rng.normal(size=bad[0].shape)
    vb = to_vector(bad).reshape([2, 2] * 4).transpose(0, 2, 4, 6, 1, 3, 5, 7).reshape(16, 16)
    expect = np.linalg.norm(vb - vb.conj().T) / 2 / np.linalg.norm(vb)
    assert abs(tdvp.antihermitian_norm(bad) - expect) < 1e-10


# ---------------------------------------------------------------------- steady state vs exact
CASES = [
    dict(spacing=0.1, theta="magic", W=2.0),
    dict(spacing=0.2, theta=0.0, W=1.5),
    dict(spacing=0.25, theta="magic", W=3.0),
    dict(spacing=0.15, theta=0.0, W=3.0),
    dict(spacing=0.1, theta="magic", W=2.0, delta="random"),
]


def _system(n, case):
    kw = dict(case)
    if kw.get("delta") == "random":
        kw["delta"] = np.random.default_rng(7).uniform(-0.5, 0.5, n)
    return DipoleSystem.chain(n, **kw)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_steady_state_matches_exact_n6(case):
    """At the full bond dimension 4^3 = 64 nothing is truncated: the MPO is exact."""
    system = _system(6, case)
    ref = exact.steady_state(system)
    ss = mpsync.steady_state(system, method="mpo", max_bond=64, rung_tol=1e-7)
    d = ss.diagnostics
    assert d["converged"] and d["stop_reason"] == "exact_bond", d["stop_reason"]
    assert np.abs(ss.correlations - ref.correlations).max() <= 1e-5
    assert np.abs(ss.sz - ref.sz).max() <= 1e-5
    assert np.abs(ss.zz - ref.zz).max() <= 1e-5
    assert ss.errors["ZQ"] < 1e-5
    for key in ("seconds", "time", "steps", "bond_dims", "truncation", "mpo_bond_dims", "ladder"):
        assert key in d


def test_ladder_error_bar_bounds_true_error_n8():
    """The default ladder's error estimate covers the true error against the exact solver."""
    system = _system(8, CASES[0])
    ref = exact.steady_state(system)
    ss = mpsync.steady_state(system, method="mpo")
    d = ss.diagnostics
    assert d["converged"] and d["stop_reason"] == "converged", d["stop_reason"]
    rungs = [r["max_bond"] for r in d["ladder"]]
    assert rungs == sorted(rungs) and len(rungs) >= 2 and rungs[0] == 8
    last, prev = d["ladder"][-1], d["ladder"][-2]
    assert ss.errors["ZQ"] >= abs(last["ZQ"] - prev["ZQ"]) + last["drift"]
    assert ss.errors["ZQ"] < 1e-3
    assert abs(ss.ZQ - ref.ZQ) <= ss.errors["ZQ"]
    # every rung but the first started warm: few two-site steps, never t_grow again
    assert all(r["stop_reason"] == "converged" for r in d["ladder"])
    assert abs(float(ss.ZQ) - last["ZQ"]) < 1e-12
    assert ss.errors["sz"].shape == (8,)


def test_warm_rung_equals_cold_start():
    """A rung started from the previous rung's state lands where a cold start at the same
    bond dimension does, well within the ladder's own error estimate."""
    system = _system(8, CASES[1])
    warm = mpsync.steady_state(system, method="mpo", ladder=(8, 16), zq_tol=1.0)
    cold = mpsync.steady_state(system, method="mpo", max_bond=16)
    assert warm.diagnostics["ladder"][-1]["max_bond"] == 16
    step = abs(warm.diagnostics["ladder"][1]["ZQ"] - warm.diagnostics["ladder"][0]["ZQ"])
    assert abs(warm.ZQ - cold.ZQ) < max(0.25 * step, 2e-5)
    assert np.abs(warm.correlations - cold.correlations).max() < 5e-4
    assert warm.diagnostics["ladder"][-1]["steps"] < cold.diagnostics["ladder"][0]["steps"]


def test_state_is_a_quimb_mps_that_round_trips():
    """result.state is a quimb MPS whose dense density matrix is the exact steady state."""
    import quimb.tensor as qtn

    from mpsync.solvers.mpo import (density_matrix, from_quimb, liouvillian,
                                    operator_entanglement, reduced_density_matrix)

    system = _system(6, CASES[4])
    ss = mpsync.steady_state(system, method="mpo", max_bond=64, rung_tol=1e-7)
    assert isinstance(ss.state, qtn.MatrixProductState) and ss.state.L == 6
    assert ss.state.phys_dim() == 4
    rho = density_matrix(ss.state)
    ref = exact.density_matrix(exact.steady_state(system))
    assert abs(np.trace(rho) - 1) < 1e-12
    assert np.abs(rho - ref).max() < 1e-5
    # the index convention: site a carries k{a} = 2 i_a + j_a for |i_a><j_a|
    psi = ss.state.to_dense().reshape([2, 2] * 6)
    by_hand = psi.transpose(0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11).reshape(64, 64)
    assert np.abs(by_hand / np.trace(by_hand) - ref).max() < 1e-5
    assert len(from_quimb(ss.state)) == 6
    # reduced density matrices: of a pair from the moments (independent path), of 3 sites from rho
    assert np.abs(reduced_density_matrix(ss.state, [1, 4]) - ss.pair_density_matrix(1, 4)).max() < 1e-10
    keep = reduced_density_matrix(ss.state, [0, 4, 5])
    rfull = rho.reshape([2] * 12)
    ref3 = np.einsum("aBCDefgBCDij->aefgij", rfull).reshape(8, 8)
    assert np.abs(keep - ref3).max() < 1e-10
    # operator-space entanglement from the dense vector's Schmidt values
    vec = ss.state.to_dense().ravel()
    for cut in (1, 3):
        s = np.linalg.svd(vec.reshape(4 ** cut, -1), compute_uv=False)
        p = s ** 2 / np.sum(s ** 2)
        p = p[p > 1e-300]
        assert operator_entanglement(ss.state)[cut - 1] == pytest.approx(-np.sum(p * np.log2(p)), abs=1e-8)
    # the Liouvillian as a quimb MPO annihilates the steady state
    L = liouvillian(system)
    assert isinstance(L, qtn.MatrixProductOperator)
    assert abs(L.apply(ss.state).norm() / ss.state.norm()) < 1e-4
    assert np.abs(L.to_dense() - exact.liouvillian(system).toarray()).max() < 1e-8


def test_state_helpers_refuse_bad_input():
    from mpsync.errors import InvalidSiteError
    from mpsync.solvers.mpo import density_matrix, operator_entanglement, reduced_density_matrix
    from mpsync.solvers.mpo.vectorized import product_mps

    down = [np.diag([1.0, 0.0]) for _ in range(12)]
    psi = product_mps(down)
    assert np.allclose(operator_entanglement(psi), 0.0)
    with pytest.raises(InvalidSiteError):
        reduced_density_matrix(psi, [0, 0])
    with pytest.raises(InvalidSiteError):
        reduced_density_matrix(psi, [0, 1, 2, 3, 4])
    with pytest.raises(InvalidSiteError):
        reduced_density_matrix(psi, [12])
    with pytest.raises(TooLargeError, match="reduced_density_matrix"):
        density_matrix(psi)
    assert reduced_density_matrix(psi, [3])[0, 0] == pytest.approx(1.0)


def test_mpo_matches_permutational_all_to_all_n12():
    """All-to-all (f_ab = f_eff / N, f_eff = 4, W = 2) at N = 12 against the exact
    permutational solver: the ladder's error bar covers the true error."""
    from mpsync.solvers import permutational

    system = DipoleSystem.all_to_all(12, f_eff=4.0, W=2.0)
    ref = permutational.steady_state(system)
    ss = mpsync.steady_state(system, method="mpo", ladder=(8, 16, 32))
    assert ss.diagnostics["converged"]
    assert abs(ss.ZQ - ref.ZQ) <= ss.errors["ZQ"] < 1e-3
    assert np.abs(ss.sz - ref.sz).max() < 1e-3


def test_result_is_unit_trace_and_hermitian():
    system = _system(5, CASES[4])
    ss = mpsync.steady_state(system, method="mpo", max_bond=32)
    mps = ss.extras["mps"]
    assert abs(tdvp.trace(mps) - 1) < 1e-12
    assert ss.diagnostics["antihermitian"] < 1e-6  # sqrt of round-off is ~1e-8
    assert tdvp.antihermitian_norm(mps) < 1e-6
    assert np.allclose(ss.correlations, ss.correlations.conj().T)
    assert np.all(np.abs(ss.sz) <= 1)
    rho = ss.pair_density_matrix(0, 1)
    assert abs(np.trace(rho) - 1) < 1e-10 and np.linalg.eigvalsh(rho).min() > -1e-8


def test_single_atom():
    system = DipoleSystem.chain(1, 0.1, "magic", W=3.0)
    ss = mpsync.steady_state(system, method="mpo")
    assert abs(ss.sz[0] - 0.5) < 1e-6  # (W - 1) / (W + 1)
    assert ss.diagnostics["stop_reason"] == "exact_bond"


# ---------------------------------------------------------------------- not converged, budgets
def test_unconverged_rung_warns_and_says_so():
    system = _system(6, CASES[0])
    with pytest.warns(ConvergenceWarning, match="max_steps"):
        ss = mpsync.steady_state(system, method="mpo", max_bond=8, max_steps=3)
    assert ss.diagnostics["converged"] is False
    assert "max_steps" in ss.diagnostics["warning"]


def test_ladder_stops_at_memory_limit_and_says_so(monkeypatch):
    from mpsync.solvers.mpo import estimate_memory

    system = _system(10, CASES[0])
    D = max(mpsync.solvers.mpo.build_mpo(system)[1])
    # room for chi = 8, not for chi = 16
    monkeypatch.setenv("MPSYNC_MAX_MEMORY", str(int(estimate_memory(10, 12, D) / 0.8)))
    with pytest.warns(ConvergenceWarning, match="memory"):
        ss = mpsync.steady_state(system, method="mpo", ladder=(8, 16))
    assert ss.diagnostics["stop_reason"] == "memory" and not ss.diagnostics["converged"]
    assert [r["max_bond"] for r in ss.diagnostics["ladder"]] == [8]
    # even the first rung too large: refused before any work
    monkeypatch.setenv("MPSYNC_MAX_MEMORY", "1M")
    with pytest.raises(TooLargeError, match="max_bond"):
        mpsync.steady_state(_system(20, CASES[0]), method="mpo", max_bond=256)


def test_time_budget_keeps_the_last_finished_rung():
    system = _system(8, CASES[0])
    full = mpsync.steady_state(system, method="mpo", ladder=(4, 8, 16, 32, 64), zq_tol=1e-9,
                               time_budget=None)
    first = full.diagnostics["ladder"][0]["seconds"]
    # a budget that the first rung fits in and the second (predicted 4x: not started, or
    # stopped by the in-step deadline) does not
    with pytest.warns(ConvergenceWarning, match="time_budget"):
        ss = mpsync.steady_state(system, method="mpo", ladder=(4, 8, 16, 32, 64), zq_tol=1e-9,
                                 time_budget=3 * first + 0.5)
    d = ss.diagnostics
    assert d["stop_reason"] == "time_budget" and not d["converged"]
    assert 1 <= len(d["ladder"]) < len(full.diagnostics["ladder"])
    assert abs(float(ss.ZQ) - d["ladder"][-1]["ZQ"]) < 1e-12
    # a budget that not even the first rung fits in: a clear error at the budget, not a hang
    with pytest.raises(ConvergenceError, match="not even the first rung"):
        mpsync.steady_state(system, method="mpo", ladder=(4, 8), time_budget=1e-3)
    # a single explicit rung is bounded by the same budget (docs/solvers.md, max_bond)
    with pytest.raises(ConvergenceError, match=r"max_bond=8\).*time_budget=0.001"):
        mpsync.steady_state(system, method="mpo", max_bond=8, time_budget=1e-3)


def test_deadline_stops_a_step_and_keeps_the_state():
    from mpsync.solvers.mpo.relax import RelaxSettings, RunControl, relax

    system = _system(6, CASES[0])
    mpo, _ = mpsync.solvers.mpo.build_mpo(system)
    eng = tdvp.TDVP(mpo, down_mps(6), max_bond=16)
    eng.step(0.1)
    saved = [a.copy() for a in eng.mps]
    eng.deadline = 0.0                      # long past
    with pytest.raises(tdvp.DeadlineReached):
        relax(eng, RunControl(), RelaxSettings(), 16, 6)
    assert all(np.array_equal(a, b) for a, b in zip(eng.mps, saved))
    eng.deadline = None
    eng.step(0.1)                           # the environments were rebuilt: it goes on


def test_bad_options_are_refused_before_work():
    system = _system(4, CASES[0])
    for bad in (dict(ladder=[]), dict(zq_tol=-1.0), dict(residual="x"), dict(max_bond=0),
                dict(ladder=["a"]), dict(dt_growth=0.5), dict(time_budget=0)):
        with pytest.raises(InvalidOptionError):
            mpsync.steady_state(system, method="mpo", **bad)


# ---------------------------------------------------------------------- evolve
def test_evolve_matches_exact():
    system = _system(5, CASES[1])
    times = [0.0, 0.25, 0.5, 1.0, 2.0]
    ref = exact.evolve(system, times)
    got = mpsync.evolve(system, times, method="mpo", max_bond=64, dt=0.02)
    assert got.moments.sz.shape == (5, 5)
    # full bond dimension: only the O(dt^2) splitting and the O((h L)^2) expansion errors
    assert np.abs(got.sz - ref.sz).max() < 1e-5
    assert np.abs(got.correlations - ref.correlations).max() < 1e-5
    assert np.abs(got.ZQ2 - ref.ZQ2).max() < 1e-6


def test_evolve_with_coherences_and_truncation():
    """Initial state along +x (breaks U(1): <s-> != 0) and a truncated bond dimension."""
    system = _system(6, CASES[4])
    times = [0.0, 0.5, 1.0]
    ref = exact.evolve(system, times, initial="x")
    full = mpsync.evolve(system, times, initial="x", method="mpo", max_bond=64, dt=0.05)
    small = mpsync.evolve(system, times, initial="x", method="mpo", max_bond=6, dt=0.05)
    assert max(small.diagnostics["bond_dims"]) <= 6
    err_full = np.abs(full.correlations - ref.correlations).max()
    err_small = np.abs(small.correlations - ref.correlations).max()
    assert err_full < 1e-5 < err_small
    assert np.abs(full.moments.sm - ref.moments.sm).max() < 1e-5


def test_evolve_rejects_bad_times():
    system = _system(3, CASES[0])
    with pytest.raises(InvalidSystemError):
        mpsync.evolve(system, [1.0, 0.5], method="mpo")


# ---------------------------------------------------------------------- checkpoint / resume
def test_checkpoint_resume_reproduces_uninterrupted_run(killed_mpo_run):
    """A run killed right after its 5th checkpoint (mid-ladder) resumes to the
    uninterrupted answer bit for bit."""
    system = _system(6, CASES[0])
    opts = dict(method="mpo", ladder=(8, 16), checkpoint_every=2)
    full = mpsync.steady_state(system, **opts)
    path = killed_mpo_run(system, opts, kill_after=5)
    resumed = mpsync.steady_state(system, resume=path, **opts)
    assert resumed.diagnostics["steps"] == full.diagnostics["steps"]
    assert resumed.diagnostics["ladder"][0]["ZQ"] == full.diagnostics["ladder"][0]["ZQ"]
    assert np.array_equal(resumed.correlations, full.correlations)
    assert resumed.errors["ZQ"] == full.errors["ZQ"]


def test_resume_restores_the_certified_rungs(monkeypatch, tmp_path):
    """Killed at the start of the third rung, a resumed ladder still holds the two rungs
    below: the lower run of the two-time error bar (``extras["previous_mps"]``) is the
    uninterrupted run's, and the checkpoint carries both certified states."""
    from mpsync.solvers.mpo import checkpoint as ck
    from mpsync.solvers.mpo import ladder

    system = _system(6, CASES[0])
    opts = dict(method="mpo", ladder=(4, 8, 16), zq_tol=1e-12, checkpoint_every=1000)
    full = mpsync.steady_state(system, **opts)
    assert full.extras["previous_max_bond"] == 8

    class Killed(Exception):
        pass

    real = ck.save_checkpoint

    def save_then_die(path, system_, mps, state, options, certified=()):
        real(path, system_, mps, state, options, certified)
        if state["rung"] == 2:
            raise Killed

    path = tmp_path / "run.npz"
    monkeypatch.setattr(ladder, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        mpsync.steady_state(system, checkpoint=path, **opts)
    monkeypatch.setattr(ladder, "save_checkpoint", real)
    with np.load(path) as data:
        assert {"R0_0", "R1_5"} <= set(data.files)
    resumed = mpsync.steady_state(system, resume=path, **opts)
    assert resumed.extras["previous_max_bond"] == 8
    for a, b in zip(resumed.extras["previous_mps"], full.extras["previous_mps"]):
        np.testing.assert_array_equal(a, b)
    assert np.array_equal(resumed.correlations, full.correlations)


def test_checkpoint_is_validated(tmp_path):
    from mpsync.solvers.mpo import CheckpointError

    system = _system(4, CASES[0])
    path = tmp_path / "run.npz"
    mpsync.steady_state(system, method="mpo", max_bond=8, checkpoint=path)
    # another system, another max_bond: refused with the reason
    with pytest.raises(CheckpointError, match="different system"):
        mpsync.steady_state(system.replace(W=3.0), method="mpo", max_bond=8, resume=path)
    with pytest.raises(CheckpointError, match="max_bond=8 \\(asked 4\\)"):
        mpsync.steady_state(system, method="mpo", max_bond=4, resume=path)
    # truncated, empty, not a checkpoint
    data = path.read_bytes()
    for name, content in (("trunc.npz", data[: len(data) // 2]), ("empty.npz", b"")):
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(CheckpointError, match="unreadable or truncated"):
            mpsync.steady_state(system, method="mpo", max_bond=8, resume=bad)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(CheckpointError, match="not an mpsync MPO checkpoint"):
        mpsync.steady_state(system, method="mpo", max_bond=8, resume=other)
    # an unwritable checkpoint path is refused before any work
    from mpsync.errors import OutputPathError
    with pytest.raises(OutputPathError):
        mpsync.steady_state(system, method="mpo", checkpoint=tmp_path / "no" / "dir" / "c.npz")


# ---------------------------------------------------------------------- refusals
def test_refuses_non_chain_with_alternatives():
    lattice = DipoleSystem.power_law((3, 3), alpha=3.0, W=1.0)
    with pytest.raises(NotApplicableError, match="exact"):
        mpsync.steady_state(lattice, method="mpo")
    with pytest.raises(NotApplicableError, match="exact"):
        mpsync.evolve(lattice, [0.0, 1.0], method="mpo")


def test_refuses_non_lindblad():
    f = np.array([[1.0, 1.5], [1.5, 1.0]])  # eigenvalue -0.5
    bad = DipoleSystem.from_matrices(f, np.zeros((2, 2)), W=1.0)
    with pytest.raises(InvalidSystemError, match="positive semidefinite"):
        mpsync.steady_state(bad, method="mpo")


# ---------------------------------------------------------------------- second backend
def test_torch_backend_gives_same_answer():
    torch = pytest.importorskip("torch")
    system = _system(4, CASES[0])
    a = mpsync.steady_state(system, method="mpo", max_bond=16)
    b = mpsync.steady_state(system, method="mpo", max_bond=16, like="torch")
    assert b.diagnostics["backend"] == "torch"
    assert np.abs(a.correlations - b.correlations).max() < 1e-9
    assert torch.is_tensor(mpsync.solvers.mpo.build_mpo(system, like="torch")[0][0])


def test_effective_generator_contraction_orders_agree(rng):
    """The precomputed (D > chi) and direct contraction orders give the same map."""
    c = lambda *s: rng.normal(size=s) + 1j * rng.normal(size=s)  # noqa: E731
    chi, D = 3, 12
    LE, RE = c(chi, D, chi), c(chi, D, chi)
    M1, M2 = c(D, D, 4, 4), c(D, D, 4, 4)
    C, theta = c(chi, 4, chi), c(chi, 4, 4, chi)
    assert np.allclose(tdvp._op1(LE, M1, RE)(C), tdvp._apply1(LE, M1, RE, C))
    assert np.allclose(tdvp._op2(LE, M1, M2, RE)(theta), tdvp._apply2(LE, M1, M2, RE, theta))
    assert tdvp._op1(LE, M1, RE).__name__ == "apply"  # the precomputed path was taken


def test_progress_bar(capsys):
    system = _system(4, CASES[2])
    mpsync.steady_state(system, method="mpo", max_bond=8, progress=True)
    err = capsys.readouterr().err
    assert "chi=8" in err and "ZQ=" in err


def test_strongly_collective_all_to_all_matches_permutational():
    # All-to-all, f_eff = N: large one-site steps can make the projected flow unstable
    # (it once diverged to <sz> ~ -4 at dt_max = 1); the run must end physical and exact.
    from mpsync.solvers import permutational

    system = DipoleSystem.all_to_all(8, f_eff=8.0, W=4.0)
    res = mpsync.steady_state(system, method="mpo", max_bond=256, rung_tol=1e-6)
    ref = permutational.steady_state(system)
    assert res.diagnostics["stop_reason"] == "exact_bond"
    assert np.max(np.abs(res.correlations - ref.correlations)) < 1e-4
    assert np.max(np.abs(res.sz - ref.sz)) < 1e-4


def test_unphysical_end_is_retried_then_refused(monkeypatch):
    from mpsync.errors import ConvergenceError
    from mpsync.solvers.mpo import ladder

    system = _system(4, CASES[0])
    climbs = []
    real_climb = ladder._climb

    def counted_climb(**cfg):
        climbs.append(cfg["settings"].dt_max)
        return real_climb(**cfg)

    monkeypatch.setattr(ladder, "_unphysical", lambda m: "max |<sz>| = 3.4 > 1")
    monkeypatch.setattr(ladder, "_climb", counted_climb)
    with pytest.raises(ConvergenceError, match="unphysical"):
        mpsync.steady_state(system, method="mpo", max_bond=8)
    # the first try and two retries with smaller dt_max
    assert climbs == pytest.approx([1.0, 0.2, 0.04])


# ---------------------------------------------------------------------- slow
@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_steady_state_matches_exact_n8(case):
    system = _system(8, case)
    ref = exact.steady_state(system)
    ss = mpsync.steady_state(system, method="mpo")
    assert abs(ss.ZQ - ref.ZQ) <= max(ss.errors["ZQ"], 1e-5)
    assert np.abs(ss.correlations - ref.correlations).max() <= 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("n", [20, 30])
def test_all_to_all_default_ladder_matches_permutational(n):
    """All-to-all f_eff = 4, W = 2 at N = 20 and 30: the default ladder agrees with the exact
    permutational solver to 1e-3 in Z_Q, and its error bar covers the true error."""
    from mpsync.solvers import permutational

    system = DipoleSystem.all_to_all(n, f_eff=4.0, W=2.0)
    ref = permutational.steady_state(system)
    ss = mpsync.steady_state(system, method="mpo")
    assert ss.diagnostics["converged"], ss.diagnostics["stop_reason"]
    assert abs(ss.ZQ - ref.ZQ) <= ss.errors["ZQ"] < 1e-3


def test_auto_residual_is_skipped_when_it_would_dominate_the_run():
    """A 5-minute N = 70, chi = 128 run must not be followed by a 20-minute residual
    (the old flop rule allowed it); a small run still gets its residual."""
    from types import SimpleNamespace

    from mpsync.solvers.mpo.ladder import _residual_is_cheap

    big = SimpleNamespace(bond_dims=[128] * 69)
    assert not _residual_is_cheap(big, [46] * 71, 70, seconds=300.0)
    small = SimpleNamespace(bond_dims=[16] * 5)
    assert _residual_is_cheap(small, [12] * 7, 6, seconds=1.0)
    ss = mpsync.steady_state(_system(6, CASES[0]), method="mpo", max_bond=16)
    assert ss.diagnostics["residual"] is not None


def test_forced_residual_that_does_not_fit_is_skipped_not_fatal(monkeypatch):
    from mpsync.errors import TooLargeError
    from mpsync.solvers.mpo import ladder

    def no_room(nbytes, what, *a, **k):
        raise TooLargeError(f"{what} needs ~{nbytes:.0f} B but only 1 B is available")

    monkeypatch.setattr(ladder, "check_memory", no_room)   # only the residual's check
    ss = mpsync.steady_state(_system(4, CASES[0]), method="mpo", max_bond=16, residual=True)
    assert ss.diagnostics["residual"] is None
    assert "residual skipped" in ss.diagnostics["residual_note"]
