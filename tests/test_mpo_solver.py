"""MPO solver (issue 3, part B): TDVP time evolution and the method="mpo" entry points.

Every accuracy test compares with the exact solver (mpsync.solvers.exact, sparse
Liouvillian in the balanced sector / full space), an independent code path.
"""

import numpy as np
import pytest
import scipy.sparse.linalg as spla

import mpsync
from mpsync import DipoleSystem
from mpsync.channels import SM, SP, bra_superop, ket_superop, local_generator, pair_channel_coefficients
from mpsync.errors import InvalidSystemError, NotApplicableError
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
    W = automaton_mpo(chain4)
    full = W[0]
    for w in W[1:]:
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


def test_tdvp_evolution_matches_exact_propagator(chain4):
    """Full bond dimension: TDVP is exact up to its O(dt^3) splitting error per step."""
    W = automaton_mpo(chain4)
    L = exact.liouvillian(chain4)
    v0 = to_vector(down_mps(4))
    errs = []
    for dt in (0.04, 0.02):
        eng = tdvp.TDVP(W, down_mps(4), max_bond=64, cutoff=1e-14)
        for _ in range(int(round(0.4 / dt))):
            eng.step(dt)
        got = to_vector(tdvp.trace_normalized(eng.mps))
        ref = spla.expm_multiply(L * 0.4, v0)
        errs.append(np.abs(got - ref).max())
    assert errs[1] < 1e-4
    assert errs[1] < errs[0]  # converges with dt


def test_one_site_tdvp_at_full_bond_is_exact(chain4):
    """Once the bonds are full ([4, 16, 4]) the one-site tangent space is the whole space."""
    W = automaton_mpo(chain4)
    L = exact.liouvillian(chain4)
    eng = tdvp.TDVP(W, down_mps(4), max_bond=64, cutoff=0.0)
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
    W = automaton_mpo(chain4)
    eng = tdvp.TDVP(W, down_mps(4), max_bond=64, cutoff=1e-14)
    for _ in range(5):
        eng.step(0.1)
    mps = tdvp.trace_normalized(eng.mps)
    v = to_vector(mps)
    rho = v.reshape([2, 2] * 4).transpose(0, 2, 4, 6, 1, 3, 5, 7).reshape(16, 16)
    assert abs(tdvp.trace(mps) - 1) < 1e-12 and abs(np.trace(rho) - 1) < 1e-12
    assert abs(tdvp.norm(mps) - np.linalg.norm(v)) < 1e-12
    L = exact.liouvillian(chain4)
    assert abs(tdvp.residual_norm(W, mps) - np.linalg.norm(L @ v) / np.linalg.norm(v)) < 1e-7
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
    system = _system(6, case)
    ref = exact.steady_state(system)
    ss = mpsync.steady_state(system, method="mpo", max_bond=64)
    d = ss.diagnostics
    assert d["converged"], d["stop_reason"]
    assert d["residual"] < 1e-6 and d["dZQ_dt"] < 1e-6
    assert np.abs(ss.correlations - ref.correlations).max() <= 1e-4
    assert np.abs(ss.sz - ref.sz).max() <= 1e-4
    assert np.abs(ss.zz - ref.zz).max() <= 1e-4
    for key in ("seconds", "time", "steps", "bond_dims", "truncation", "mpo_bond_dims"):
        assert key in d


def test_error_decreases_with_max_bond():
    system = _system(6, CASES[0])
    ref = exact.steady_state(system)
    errs = []
    for chi in (2, 4, 8, 16):
        ss = mpsync.steady_state(system, method="mpo", max_bond=chi, t_max=30.0, stall_steps=6)
        assert max(ss.diagnostics["bond_dims"]) <= chi
        errs.append(np.abs(ss.correlations - ref.correlations).max())
    assert all(b < a for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 0.1 * errs[0]


def test_result_is_unit_trace_and_hermitian():
    system = _system(5, CASES[4])
    ss = mpsync.steady_state(system, method="mpo", max_bond=32)
    mps = ss.extras["mps"]
    assert abs(tdvp.trace(mps) - 1) < 1e-12
    assert ss.diagnostics["antihermitian"] < 1e-6  # sqrt of round-off is ~1e-8
    assert tdvp.antihermitian_norm(mps) < 1e-6
    assert np.allclose(ss.correlations, ss.correlations.conj().T)
    assert np.all(np.abs(ss.sz) <= 1)
    # observables come from the shared result type
    rho = ss.pair_density_matrix(0, 1)
    assert abs(np.trace(rho) - 1) < 1e-10 and np.linalg.eigvalsh(rho).min() > -1e-8


def test_single_atom():
    system = DipoleSystem.chain(1, 0.1, "magic", W=3.0)
    ss = mpsync.steady_state(system, method="mpo")
    assert abs(ss.sz[0] - 0.5) < 1e-6  # (W - 1) / (W + 1); residual tol 1e-6


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
def test_checkpoint_resume_reproduces_uninterrupted_run(tmp_path):
    system = _system(5, CASES[0])
    opts = dict(method="mpo", max_bond=16, dt=0.05)
    full = mpsync.steady_state(system, **opts)
    path = tmp_path / "run.npz"
    part = mpsync.steady_state(system, checkpoint=path, checkpoint_every=2, max_steps=5, **opts)
    assert part.diagnostics["steps"] == 5 and not part.diagnostics["converged"]
    resumed = mpsync.steady_state(system, resume=path, **opts)
    assert resumed.diagnostics["steps"] == full.diagnostics["steps"]
    assert abs(resumed.diagnostics["time"] - full.diagnostics["time"]) < 1e-12
    assert np.abs(resumed.correlations - full.correlations).max() < 1e-10
    # a checkpoint is never resumed on another system
    with pytest.raises(InvalidSystemError, match="different system"):
        mpsync.steady_state(system.replace(W=3.0), resume=path, **opts)


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


# ---------------------------------------------------------------------- slow: N = 8
@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_steady_state_matches_exact_n8(case):
    system = _system(8, case)
    ref = exact.steady_state(system)
    ss = mpsync.steady_state(system, method="mpo", max_bond=64)
    assert np.abs(ss.correlations - ref.correlations).max() <= 1e-4
    assert abs(ss.ZQ - ref.ZQ) <= 1e-4


def test_effective_generator_contraction_orders_agree(rng):
    """The precomputed (D > chi) and direct contraction orders give the same map."""
    c = lambda *s: rng.normal(size=s) + 1j * rng.normal(size=s)  # noqa: E731
    chi, D = 3, 12
    LE, RE = c(chi, D, chi), c(chi, D, chi)
    W1, W2 = c(D, D, 4, 4), c(D, D, 4, 4)
    C, theta = c(chi, 4, chi), c(chi, 4, 4, chi)
    assert np.allclose(tdvp._op1(LE, W1, RE)(C), tdvp._apply1(LE, W1, RE, C))
    assert np.allclose(tdvp._op2(LE, W1, W2, RE)(theta), tdvp._apply2(LE, W1, W2, RE, theta))
    assert tdvp._op1(LE, W1, RE).__name__ == "apply"  # the precomputed path was taken


def test_refine_and_progress_bar(capsys):
    """The optional null-space refinement lowers the residual of a short run; tqdm bar runs."""
    system = _system(4, CASES[2])
    ref = exact.steady_state(system)
    short = mpsync.steady_state(system, method="mpo", t_max=1.0)
    refined = mpsync.steady_state(system, method="mpo", t_max=1.0, refine=True, progress=True)
    info = refined.diagnostics["refine"]
    assert info["residual_after"] < info["residual_before"]
    assert refined.diagnostics["residual"] < short.diagnostics["residual"]
    err = lambda s: np.abs(s.correlations - ref.correlations).max()  # noqa: E731
    assert err(refined) < err(short)
    assert "res=" in capsys.readouterr().err


def test_memory_check_before_heavy_work(monkeypatch):
    from mpsync.errors import TooLargeError
    monkeypatch.setenv("MPSYNC_MAX_MEMORY", "1M")
    with pytest.raises(TooLargeError, match="max_bond"):
        mpsync.steady_state(_system(20, CASES[0]), method="mpo", max_bond=256)


def test_unstable_large_steps_are_retried_and_match_permutational():
    # All-to-all, f_eff = N: with dt_max = 1 the projected evolution diverges to <sz> ~ -4;
    # the solver must notice (moments no density matrix can have) and retry with smaller steps.
    from mpsync.solvers import mpo, permutational

    system = DipoleSystem.all_to_all(8, f_eff=8.0, W=4.0)
    first = mpo.run_steady_state(system, max_bond=64)
    assert mpo._unphysical(first.moments) is not None
    res = mpo.steady_state(system, max_bond=64)
    ref = permutational.steady_state(system)
    assert res.diagnostics["dt_max_retries"] >= 1
    assert np.max(np.abs(res.correlations - ref.correlations)) < 1e-4
    assert np.max(np.abs(res.sz - ref.sz)) < 1e-4


def test_unphysical_result_without_retry_is_refused(monkeypatch):
    from mpsync.solvers import mpo

    system = DipoleSystem.all_to_all(8, f_eff=8.0, W=4.0)
    bad = mpo.run_steady_state(system, max_bond=64)
    # a resumed run is not restarted from scratch, so its unphysical end is an error
    monkeypatch.setattr(mpo, "run_steady_state", lambda *a, **k: bad)
    with pytest.raises(mpo.ConvergenceError, match="unphysical"):
        mpo.steady_state(system, resume="checkpoint.npz")
