"""Tests of the exact solver against QuTiP 5 and against exact identities."""

import numpy as np
import pytest
import scipy.linalg

from conftest import random_g, random_psd_f

import mpsync
from mpsync import DipoleSystem
from mpsync.channels import SM, SP, SZ, bra_superop, ket_superop, local_generator, superop
from mpsync.errors import InvalidSystemError, TooLargeError
from mpsync.solvers import exact

qutip = pytest.importorskip("qutip")


# ---------------------------------------------------------------------- QuTiP reference
def _op(single, a, n):
    ops = [qutip.qeye(2)] * n
    ops[a] = qutip.Qobj(single)
    return qutip.tensor(ops)


def qutip_model(system):
    """H and collapse operators of docs/physics.md#master-equation, jumps from f = V diag(l) V^T."""
    n = system.n
    sm = [_op(SM, a, n) for a in range(n)]
    H = 0 * _op(SZ, 0, n)
    for a in range(n):
        H += 0.5 * system.delta[a] * _op(SZ, a, n)
        for b in range(n):
            if a != b:
                H += 0.5 * system.g[a, b] * sm[a].dag() * sm[b]
    lam, vec = np.linalg.eigh(system.f)
    c_ops = [np.sqrt(lk) * sum(vec[b, k] * sm[b] for b in range(n))
             for k, lk in enumerate(lam) if lk > 1e-13]
    c_ops += [np.sqrt(system.W) * sm[a].dag() for a in range(n) if system.W > 0]
    return H, c_ops


def qutip_moments(rho, n):
    """Moments by qutip.expect (independent of mpsync's moment code)."""
    rho = qutip.Qobj(rho, dims=[[2] * n, [2] * n]) if not isinstance(rho, qutip.Qobj) else rho
    sm = [_op(SM, a, n) for a in range(n)]
    sz = [_op(SZ, a, n) for a in range(n)]
    out = {
        "sz": np.array([qutip.expect(z, rho) for z in sz]).real,
        "correlations": np.array([[qutip.expect(sm[a].dag() * sm[b], rho) for b in range(n)]
                                  for a in range(n)]),
        "zz": np.array([[qutip.expect(sz[a] * sz[b], rho) for b in range(n)] for a in range(n)]).real,
        "sm": np.array([qutip.expect(sm[a], rho) for a in range(n)]),
        "zsm": np.array([[qutip.expect(sz[a] * sm[b], rho) if a != b else 0 for b in range(n)]
                         for a in range(n)]),
        "smsm": np.array([[qutip.expect(sm[a] * sm[b], rho) if a != b else 0 for b in range(n)]
                          for a in range(n)]),
    }
    return out


def random_system(rng, n, W=None):
    W = rng.uniform(0.3, 3.0) if W is None else W
    return DipoleSystem.from_matrices(random_psd_f(rng, n), random_g(rng, n), W=W,
                                      delta=rng.normal(size=n))


def assert_moments(m, ref, atol, full=False):
    np.testing.assert_allclose(m.sz, ref["sz"], atol=atol)
    np.testing.assert_allclose(m.correlations, ref["correlations"], atol=atol)
    np.testing.assert_allclose(m.zz, ref["zz"], atol=atol)
    if full:
        np.testing.assert_allclose(m.sm, ref["sm"], atol=atol)
        np.testing.assert_allclose(m.zsm, ref["zsm"], atol=atol)
        np.testing.assert_allclose(m.smsm, ref["smsm"], atol=atol)


def colstack_perm(n):
    """Our ket_bra index i*D + j -> QuTiP's column-stacking index j*D + i."""
    d = 2 ** n
    idx = np.arange(d * d)
    return (idx % d) * d + idx // d


# ---------------------------------------------------------------------- Liouvillian
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_liouvillian_ket_bra_equals_qutip(rng, n):
    s = random_system(rng, n)
    H, c_ops = qutip_model(s)
    Lq = qutip.liouvillian(H, c_ops).full()
    L = exact.liouvillian(s, ordering="ket_bra").toarray()
    p = colstack_perm(n)
    np.testing.assert_allclose(L, Lq[np.ix_(p, p)], atol=1e-12)


def _embed(ops_by_site, n):
    out = np.ones((1, 1))
    for a in range(n):
        out = np.kron(out, ops_by_site.get(a, np.eye(4)))
    return out


def test_liouvillian_interleaved_equals_kron_construction(rng):
    """The interleaved order is the Kronecker product of per-site 4x4 superoperators."""
    n = 3
    s = random_system(rng, n)
    L = exact.liouvillian(s).toarray()
    ref = np.zeros((4 ** n, 4 ** n), dtype=complex)
    for a in range(n):
        ref += _embed({a: local_generator(s.delta[a], s.gamma, s.W)}, n)
    for a in range(n):
        for b in range(n):
            if a == b:
                continue
            ket = -0.5j * s.g[a, b] - 0.5 * s.f[a, b]
            ref += ket * _embed({a: ket_superop(SP), b: ket_superop(SM)}, n)
            ref += np.conj(ket) * _embed({a: bra_superop(SP), b: bra_superop(SM)}, n)
            ref += s.f[a, b] * _embed({a: superop(np.eye(2), SP), b: superop(SM, np.eye(2))}, n)
    np.testing.assert_allclose(L, ref, atol=1e-13)


# ---------------------------------------------------------------------- steady state
@pytest.mark.parametrize("n,solver", [(3, "direct"), (4, "iterative"), (5, "direct"), (5, "iterative")])
def test_steady_state_equals_qutip(rng, n, solver):
    s = random_system(rng, n)
    H, c_ops = qutip_model(s)
    rho_q = qutip.steadystate(H, c_ops)
    ss = exact.steady_state(s, solver=solver)
    assert ss.diagnostics["solver"] == solver
    assert ss.diagnostics["residual"] < 1e-10
    np.testing.assert_allclose(exact.density_matrix(ss), rho_q.full(), atol=1e-9)
    assert_moments(ss.moments, qutip_moments(rho_q, n), atol=1e-8)


@pytest.mark.parametrize("W", [0.0, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("solver", ["direct", "iterative"])
def test_single_atom(W, solver):
    s = DipoleSystem.chain(1, 0.1, "magic", W=W, gamma=1.7)
    ss = mpsync.steady_state(s, method="exact", solver=solver)
    assert ss.sz[0] == pytest.approx((W - 1.7) / (W + 1.7), abs=1e-12)
    assert ss.diagnostics["residual"] < 1e-12


def test_no_pump_gives_ground_state(rng):
    s = random_system(rng, 4, W=0.0)
    ss = exact.steady_state(s)
    np.testing.assert_allclose(ss.sz, -1.0, atol=1e-14)
    assert ss.diagnostics["residual"] < 1e-14
    # with a singular f (a dark singlet) the steady state is not unique: say so
    dark = DipoleSystem.from_matrices(np.ones((2, 2)), np.zeros((2, 2)), W=0.0)
    assert "not unique" in exact.steady_state(dark).diagnostics["warning"]


def test_steady_state_is_a_density_matrix():
    s = DipoleSystem.chain(6, 0.1, "magic", W=2.0)
    ss = exact.steady_state(s)
    rho = exact.density_matrix(ss)
    assert np.trace(rho) == pytest.approx(1.0, abs=1e-13)
    np.testing.assert_allclose(rho, rho.conj().T, atol=1e-13)
    assert np.linalg.eigvalsh(rho).min() > -1e-11
    # the moments equal those of the dense matrix
    m = exact.full_moments(rho)
    np.testing.assert_allclose(ss.correlations, m.correlations, atol=1e-12)
    np.testing.assert_allclose(ss.zz, m.zz, atol=1e-12)
    np.testing.assert_allclose(m.sm, 0, atol=1e-14)


@pytest.mark.parametrize("preconditioner", ["gauss-seidel-down", "gauss-seidel-up", "jacobi"])
@pytest.mark.parametrize("W", [1.5, 6.0])
def test_iterative_equals_direct_dipolar_chain(preconditioner, W):
    s = DipoleSystem.chain(6, 0.15, 0.3, W=W, delta=np.linspace(-0.5, 0.5, 6))
    a = exact.steady_state(s, solver="direct")
    b = exact.steady_state(s, solver="iterative", preconditioner=preconditioner)
    assert b.diagnostics["preconditioner"] == preconditioner
    # the default picks the sweep that keeps the stronger coupling
    auto = exact.steady_state(s, solver="iterative", preconditioner="gauss-seidel")
    assert auto.diagnostics["preconditioner"] == ("gauss-seidel-up" if W > 2 else "gauss-seidel-down")
    np.testing.assert_allclose(a.correlations, b.correlations, atol=1e-10)
    np.testing.assert_allclose(a.zz, b.zz, atol=1e-10)


def test_schur_path_equals_eig_path(rng, monkeypatch):
    s = random_system(rng, 5)
    a = exact.steady_state(s, solver="iterative")
    monkeypatch.setattr(exact, "EIG_COND_MAX", 0.0)
    b = exact.steady_state(s, solver="iterative", reuse=False)  # a new decomposition
    assert b.diagnostics["schur_blocks"] == 4  # k = 1..4; the 1 x 1 blocks k = 0, 5 are normal
    np.testing.assert_allclose(a.correlations, b.correlations, atol=1e-10)


def test_sector_equals_full_space(rng):
    """Null vector of the full 4^N Liouvillian == the balanced-sector steady state."""
    n = 4
    s = random_system(rng, n)
    L = exact.liouvillian(s, ordering="ket_bra").toarray()
    _, sv, vh = np.linalg.svd(L)
    assert sv[-1] < 1e-12 * sv[0] and sv[-2] > 1e-6 * sv[0]  # unique steady state
    rho = vh[-1].conj().reshape(2 ** n, 2 ** n)
    rho /= np.trace(rho)
    np.testing.assert_allclose(exact.density_matrix(exact.steady_state(s)), rho, atol=1e-10)


def test_all_to_all_degenerate_blocks():
    """g = 0 and uniform delta: K_k is normal with degenerate eigenvalues (the diagonal Schur path)."""
    s = DipoleSystem.all_to_all(6, f_eff=5.5, W=0.1)
    a = exact.steady_state(s, solver="iterative")
    b = exact.steady_state(s, solver="direct")
    assert a.diagnostics["gmres_info"] == 0 and a.diagnostics["residual"] < 1e-11
    np.testing.assert_allclose(a.correlations, b.correlations, atol=1e-10)


def test_sector_operator_equals_sparse_sector(rng):
    s = random_system(rng, 4)
    op = exact.SectorOperator(s)
    L, _ = exact.sector_liouvillian(s)
    v = rng.normal(size=L.shape[0]) + 1j * rng.normal(size=L.shape[0])
    np.testing.assert_allclose(op.apply(v), L @ v, atol=1e-12)
    np.testing.assert_allclose(op.apply_D(op.solve_D(v)), v, atol=1e-10)


# ---------------------------------------------------------------------- time evolution
def _qutip_evolve(s, rho0, times):
    H, c_ops = qutip_model(s)
    Lq = qutip.liouvillian(H, c_ops).full()
    d = 2 ** s.n
    out = []
    for t in times:
        v = scipy.linalg.expm(Lq * t) @ rho0.reshape(-1, order="F")
        out.append(v.reshape(d, d, order="F"))
    return out


@pytest.mark.parametrize("initial", ["down", "up", "mixed_diag", "x", "mixed_coh"])
def test_evolve_equals_qutip(rng, initial):
    n = 4
    s = random_system(rng, n)
    if initial == "mixed_diag":
        initial = [np.diag([p, 1 - p]) for p in rng.uniform(size=n)]
    elif initial == "mixed_coh":
        initial = []
        for _ in range(n):
            v = rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2))
            m = v @ v.conj().T
            initial.append(m / np.trace(m))
    states = mpsync.states.product_state(initial, n)
    rho0 = states[0]
    for m in states[1:]:
        rho0 = np.kron(rho0, m)
    times = [0.0, 0.2, 0.7, 1.5]
    ts = mpsync.evolve(s, times, initial=initial, method="exact")
    coh = mpsync.states.has_coherences(states)
    assert ts.diagnostics["space"] == ("full" if coh else "sector")
    for k, rho in enumerate(_qutip_evolve(s, rho0, times)):
        assert_moments(ts.at(k).moments, qutip_moments(rho, n), atol=1e-9, full=coh)


def test_evolve_sector_equals_full_and_keeps_u1(rng):
    """Without coherences the full-space evolution keeps sm = zsm = smsm = 0 (U(1))."""
    s = random_system(rng, 3)
    init = [np.diag([0.3, 0.7]), np.diag([1.0, 0.0]), np.diag([0.0, 1.0])]
    times = np.linspace(0, 2, 5)
    a = exact.evolve(s, times, initial=init, space="sector")
    b = exact.evolve(s, times, initial=init, space="full")
    np.testing.assert_allclose(a.correlations, b.correlations, atol=1e-12)
    np.testing.assert_allclose(a.zz, b.zz, atol=1e-12)
    np.testing.assert_allclose(b.moments.sm, 0, atol=1e-14)
    np.testing.assert_allclose(b.moments.zsm, 0, atol=1e-14)
    np.testing.assert_allclose(b.moments.smsm, 0, atol=1e-14)
    assert np.max(np.abs(b.correlations[-1] - np.diag(np.diag(b.correlations[-1])))) > 1e-3


def test_evolve_reaches_steady_state():
    s = DipoleSystem.chain(4, 0.2, "magic", W=1.0)
    ts = exact.evolve(s, [0.0, 60.0], initial="down")
    ss = exact.steady_state(s)
    np.testing.assert_allclose(ts.correlations[-1], ss.correlations, atol=1e-9)


@pytest.mark.parametrize("case", ["chain8", "chain8_one_step", "random6_asym", "all_to_all7"])
def test_evolve_free_operator_equals_stored_matrix(rng, case):
    """The matrix-free Krylov exponential (mirror-reduced where it applies) gives the stored
    matrix's expm_multiply evolution (issue 21: evolve at N = 13 is matrix-free)."""
    times = [0.0, 2.5] if case == "chain8_one_step" else [0.0, 0.3, 1.0, 2.5]
    if case.startswith("chain8"):
        s, initial, mirror = DipoleSystem.chain(8, 0.1, "magic", W=2.0), "down", True
    elif case == "random6_asym":  # asymmetric system and initial state: no mirror reduction
        s, mirror = random_system(rng, 6), False
        initial = [np.diag([p, 1 - p]) for p in rng.uniform(size=6)]
    else:
        s, initial, mirror = DipoleSystem.all_to_all(7, f_eff=3.0, W=1.5), "up", True
    a = exact.evolve(s, times, initial=initial, operator="matrix")
    b = exact.evolve(s, times, initial=initial, operator="free")
    assert a.diagnostics["operator"] == "matrix" and b.diagnostics["operator"] == "free"
    assert b.diagnostics["mirror"] == mirror and b.diagnostics["matvecs"] > 0
    np.testing.assert_allclose(b.correlations, a.correlations, atol=1e-10)
    np.testing.assert_allclose(b.zz, a.zz, atol=1e-10)
    np.testing.assert_allclose(b.sz, a.sz, atol=1e-10)
    assert np.abs(a.correlations[-1] - a.correlations[0]).max() > 1e-2  # it moved


def test_evolve_auto_operator(monkeypatch):
    """auto: the stored matrix below FREE_EVOLVE_FROM_N, else (or when it does not fit) matrix-free;
    the full space has no free operator."""
    assert exact.evolve(DipoleSystem.chain(5, 0.1, "magic", W=2.0), [0.0, 0.1]).diagnostics["operator"] == "matrix"
    s8 = DipoleSystem.chain(exact.FREE_EVOLVE_FROM_N, 0.1, "magic", W=2.0)
    assert exact.evolve(s8, [0.0, 0.1]).diagnostics["operator"] == "free"
    # below FREE_EVOLVE_FROM_N, a stored matrix that does not fit is replaced by the free operator
    monkeypatch.setattr(exact, "FREE_EVOLVE_FROM_N", 10)
    s9 = DipoleSystem.chain(9, 0.1, "magic", W=2.0)
    matrix, free = (exact.estimate_memory(9, k, restart=30, mirror=True) for k in ("sector_matrix", "sector_free"))
    assert exact.evolve_memory(s9) == pytest.approx(matrix)
    monkeypatch.setenv("MPSYNC_MAX_MEMORY", str(int((matrix + free) / 2 / 0.8)))
    assert exact.evolve(s9, [0.0, 0.1]).diagnostics["operator"] == "free"
    assert exact.evolve_memory(s9) == pytest.approx(free)
    with pytest.raises(TooLargeError, match="sector_matrix"):
        exact.evolve(s9, [0.0, 0.1], operator="matrix")
    s6 = DipoleSystem.chain(6, 0.1, "magic", W=2.0)
    with pytest.raises(mpsync.errors.InvalidOptionError, match="operator='free' works in the balanced sector"):
        exact.evolve(s6, [0.0, 0.1], initial="x", operator="free")
    with pytest.raises(mpsync.errors.InvalidOptionError, match="operator must be"):
        mpsync.evolve(s6, [0.0, 0.1], method="exact", operator="lanczos")
    with pytest.raises(mpsync.errors.InvalidOptionError, match="krylov_dim"):
        mpsync.evolve(s6, [0.0, 0.1], method="exact", krylov_dim=0)


# ---------------------------------------------------------------------- refusals
def test_memory_refusal_before_allocation(monkeypatch):
    monkeypatch.setenv("MPSYNC_MAX_MEMORY", "1M")

    def boom(*a, **k):
        raise AssertionError("allocated before the memory check")

    monkeypatch.setattr(exact, "SectorBasis", boom)
    monkeypatch.setattr(exact, "assemble", boom)
    s = DipoleSystem.chain(9, 0.1, "magic", W=2.0)
    # the methods named are those that fit within the limit (mpsync.solvers.applicability)
    with pytest.raises(TooLargeError, match=r"N=9.*use method='cumulant' or 'meanfield'"):
        exact.steady_state(s)
    with pytest.raises(TooLargeError, match=r"use method=.*'cumulant'"):
        exact.liouvillian(DipoleSystem.chain(7, 0.1, "magic", W=2.0))
    with pytest.raises(TooLargeError, match=r"use method=.*'cumulant'"):
        exact.evolve(s, [0.0, 1.0])


def test_refusal_names_the_largest_n_that_fits(monkeypatch):
    """A size that does not fit is refused before any allocation, naming the largest N that
    would and the methods that reach further (issue 21)."""
    s9, s10 = (DipoleSystem.chain(n, 0.1, "magic", W=2.0) for n in (9, 10))
    est9, est10 = (exact.estimate_memory(n, mirror=True) for n in (9, 10))
    monkeypatch.setenv("MPSYNC_MAX_MEMORY", str(int((est9 + est10) / 2 / 0.8)))

    def boom(*a, **k):
        raise AssertionError("allocated before the memory check")

    monkeypatch.setattr(exact, "SectorBasis", boom)
    monkeypatch.setattr(exact, "SectorOperator", boom)
    with pytest.raises(TooLargeError, match=r"N=10 .*use method=.*largest N that fits here is 9"):
        exact.steady_state(s10)
    with pytest.raises(AssertionError, match="allocated"):  # N = 9 passes the check
        exact.steady_state(s9)


_PEAK_SCRIPT = """
import json, os, sys
os.environ["OMP_NUM_THREADS"] = "1"
from threadpoolctl import threadpool_limits
threadpool_limits(1)
from mpsync import DipoleSystem
from mpsync.solvers import exact
n, krylov = int(sys.argv[1]), sys.argv[2]
# VmHWM: the peak RSS of this address space (ru_maxrss would also count the forked pytest
# process before exec)
def status(key):
    return int([ln for ln in open("/proc/self/status") if ln.startswith(key)][0].split()[1]) * 1024
# a small solve first, so the modules the solver imports lazily count in the interpreter's share
exact.steady_state(DipoleSystem.chain(5, 0.1, "magic", W=2.0), solver="iterative", krylov=krylov)
base = status("VmRSS:")
ss = exact.steady_state(DipoleSystem.chain(n, 0.1, "magic", W=2.0), krylov=krylov)
d = ss.diagnostics
print(json.dumps({"growth": status("VmHWM:") - base,
                  "estimate": exact.estimate_memory(n, restart=d["restart"], mirror=d["mirror"],
                                                    krylov=d["krylov"]) - exact._BASE_BYTES,
                  "residual": d["residual"]}))
"""


@pytest.mark.parametrize("n, krylov", [(9, "auto"), (10, "auto"), (10, "bicgstab")])
def test_memory_estimate_matches_the_measured_peak(n, krylov):
    """estimate_memory within 20 % of the peak RSS of a process that does one solve (issue 21)."""
    import json
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(n), krylov], capture_output=True, text=True,
                         timeout=300, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr
    r = json.loads(run.stdout.strip().splitlines()[-1])
    assert r["residual"] < 1e-10
    assert abs(r["estimate"] / r["growth"] - 1) < 0.2, r


_EVOLVE_PEAK_SCRIPT = """
import json, sys
import numpy as np
from threadpoolctl import threadpool_limits
threadpool_limits(1)
from mpsync import DipoleSystem
from mpsync.solvers import exact
def status(key):
    return int([ln for ln in open("/proc/self/status") if ln.startswith(key)][0].split()[1]) * 1024
n, sym = int(sys.argv[1]), sys.argv[2] == "sym"
def start(n):
    return "down" if sym else [np.diag([1.0, 0.0])] + [np.diag([0.0, 1.0])] * (n - 1)
# a small run first, so the modules evolve imports lazily count in the interpreter's share
exact.evolve(DipoleSystem.chain(5, 0.1, "magic", W=2.0), [0.0, 1.0], initial=start(5), operator="free")
base = status("VmRSS:")
ts = exact.evolve(DipoleSystem.chain(n, 0.1, "magic", W=2.0), [0.0, 0.5, 1.0], initial=start(n),
                  operator="free")
d = ts.diagnostics
print(json.dumps({"growth": status("VmHWM:") - base, "mirror": d["mirror"],
                  "estimate": exact.estimate_memory(n, "sector_free", restart=d["krylov_dim"],
                                                    mirror=d["mirror"]) - exact._BASE_BYTES}))
"""


@pytest.mark.parametrize("sym", ["sym", "asym"])
def test_free_evolve_memory_estimate_matches_the_measured_peak(sym):
    """The estimate evolve's memory check uses is within 20 % of a process's peak RSS (N = 10).

    Compared above the interpreter's own RSS, which differs from machine to machine (CI's is
    ~20 MB above this one's), so the test checks the part the estimate models: the vectors."""
    import json
    import os
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", _EVOLVE_PEAK_SCRIPT, "10", sym], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr
    r = json.loads(run.stdout.strip().splitlines()[-1])
    assert r["mirror"] == (sym == "sym")
    assert abs(r["estimate"] / r["growth"] - 1) < 0.2, r


@pytest.mark.parametrize("mirror", [False, True])
def test_free_jumps_equal_stored_jumps(rng, mirror):
    """The jumps applied from index tables (default) equal the stored sparse matrices."""
    s = _mirror_chain(6) if mirror else random_system(rng, 5)
    free = exact.SectorOperator(s, mirror=mirror)
    stored = exact.SectorOperator(s, mirror=mirror, jumps="stored")
    assert free.jumps == "free" and free.nnz_jumps < stored.nnz_jumps
    v = rng.normal(size=free.size) + 1j * rng.normal(size=free.size)
    for f in ("apply", "apply_lower", "apply_raise", "solve_M"):
        a, b = getattr(free, f)(v), getattr(stored, f)(v)
        np.testing.assert_allclose(a, b, atol=1e-12 * np.abs(b).max(), err_msg=f)


@pytest.mark.parametrize("mirror", [False, True])
def test_bicgstab_equals_gmres(rng, mirror):
    """krylov='bicgstab' (about ten vectors instead of the GMRES basis) reaches the same state."""
    s = _mirror_chain(7) if mirror else random_system(rng, 6)
    a = exact.steady_state(s, solver="iterative", reuse=False)
    b = exact.steady_state(s, solver="iterative", reuse=False, krylov="bicgstab")
    assert b.diagnostics["krylov"] == "bicgstab" and b.diagnostics["gmres_info"] == 0
    assert b.diagnostics["mirror"] == mirror and b.diagnostics["residual"] < 1e-10
    assert b.diagnostics["matvecs"] == 2 * b.diagnostics["iterations"]
    np.testing.assert_allclose(b.correlations, a.correlations, atol=1e-10)
    bicg, gmres = (exact.estimate_memory(14, mirror=True, krylov=k) for k in ("bicgstab", "gmres"))
    assert bicg < 0.6 * gmres
    with pytest.raises(mpsync.errors.InvalidOptionError, match="krylov"):
        exact.steady_state(s, krylov="cg")


def test_refuses_n16():
    s = DipoleSystem.chain(16, 0.1, "magic", W=2.0)
    with pytest.raises(TooLargeError, match=r"N=16 needs ~.*GB.*use method=.*'mpo'.*'cumulant'"):
        mpsync.steady_state(s, method="exact")


def test_non_psd_f_is_refused():
    s = DipoleSystem.all_to_all(4, f_eff=8.0, W=1.0)  # f_ab = 2 > gamma: eigenvalue 1 - 2 = -1
    with pytest.raises(InvalidSystemError, match=r"-1\b.*exact"):
        exact.steady_state(s)
    with pytest.raises(InvalidSystemError, match=r"-1"):
        exact.evolve(s, [0.0, 1.0])


def test_options_checked():
    from mpsync.errors import InvalidOptionError

    s = DipoleSystem.chain(3, 0.1, "magic", W=2.0)
    with pytest.raises(InvalidOptionError, match="max_bond"):
        mpsync.steady_state(s, method="exact", max_bond=8)
    with pytest.raises(InvalidOptionError, match="solver"):
        exact.steady_state(s, solver="magic")
    # options of other methods are refused, not ignored; so are numbers given as strings
    with pytest.raises(InvalidOptionError, match="t_max"):
        mpsync.steady_state(s, method="exact", t_max=10.0)
    with pytest.raises(InvalidOptionError, match="tol"):
        mpsync.steady_state(s, method="exact", tol="1e-12")
    with pytest.raises(InvalidOptionError, match="dt"):
        mpsync.evolve(s, [0.0, 1.0], method="exact", dt=0.1)
    a = mpsync.steady_state(s, method="exact", solver="iterative", tol=1e-12, restart=20.0)
    b = exact.steady_state(s, solver="direct")
    np.testing.assert_allclose(a.correlations, b.correlations, atol=1e-10)
    ts = mpsync.evolve(s, [0.0, 1.0], method="exact")
    assert ts.sz.shape == (2, 3)


def test_warm_start_saves_iterations():
    s = DipoleSystem.chain(7, 0.1, "magic", W=2.0)
    cold = exact.steady_state(s.replace(W=2.05), solver="iterative")
    warm = exact.steady_state(s.replace(W=2.05), solver="iterative",
                              x0=exact.steady_state(s, solver="iterative").extras["sector_vector"])
    assert warm.diagnostics["iterations"] < cold.diagnostics["iterations"]
    np.testing.assert_allclose(warm.correlations, cold.correlations, atol=1e-10)


@pytest.mark.slow
def test_dipolar_chain_n7_equals_qutip():
    """The benchmark system at N = 7 (QuTiP's direct solve takes 10-60 s)."""
    s = DipoleSystem.chain(7, 0.1, "magic", W=2.0)
    H, c_ops = qutip_model(s)
    rho_q = qutip.steadystate(H, c_ops)
    ss = exact.steady_state(s)
    assert ss.diagnostics["solver"] == "iterative"
    assert_moments(ss.moments, qutip_moments(rho_q, 7), atol=1e-9)


@pytest.mark.slow
def test_n9_random_detunings_residual_and_positivity(rng):
    s = DipoleSystem.chain(9, 0.12, 0.4, W=1.2, delta=rng.uniform(-0.5, 0.5, 9))
    ss = exact.steady_state(s)
    assert ss.diagnostics["gmres_info"] == 0 and ss.diagnostics["residual"] < 1e-10
    rho = exact.density_matrix(ss)
    assert np.linalg.eigvalsh(rho).min() > -1e-10
    # the Jacobi-preconditioned run agrees
    other = exact.steady_state(s, preconditioner="jacobi")
    np.testing.assert_allclose(ss.correlations, other.correlations, atol=1e-10)


@pytest.mark.parametrize("n", [6, 7])
def test_correlation_function_mirror_half_equals_all_columns(monkeypatch, n):
    """A mirror-symmetric chain propagates half the columns and fills the rest from
    G_ab = G_{N-1-a, N-1-b}; the result equals propagating every column."""
    from mpsync.solvers.exact import mirror

    s = DipoleSystem.chain(n, 0.1, "magic", W=2.0)
    taus = np.linspace(0.0, 4.0, 17)
    half = exact.correlation_function(s, taus)
    monkeypatch.setattr(mirror, "is_mirror_symmetric", lambda system: False)
    every = exact.correlation_function(s, taus)
    np.testing.assert_allclose(half, every, atol=1e-13)
    assert np.abs(half[:, 0, n - 1]).max() > 1e-3  # an off-diagonal column that is filled, not zero


def test_correlation_function_equals_qutip(rng):
    n = 3
    s = random_system(rng, n)
    taus = np.array([0.0, 0.3, 1.1, 2.0])
    G = exact.correlation_function(s, taus)
    ss = exact.steady_state(s)
    np.testing.assert_allclose(G[0], ss.correlations, atol=1e-12)
    H, c_ops = qutip_model(s)
    sm = [_op(SM, a, n) for a in range(n)]
    for a in range(n):
        for b in range(n):
            ref = qutip.correlation_2op_1t(H, None, taus, c_ops, sm[a].dag(), sm[b],
                                           options={"atol": 1e-12, "rtol": 1e-10})
            np.testing.assert_allclose(G[:, a, b], ref, atol=1e-8)


def test_unconverged_gmres_warns_and_retries():
    s = DipoleSystem.chain(6, 0.1, "magic", W=2.0)
    with pytest.warns(mpsync.ConvergenceWarning, match="GMRES did not reach"):
        ss = exact.steady_state(s, solver="iterative", restart=2, maxiter=1, tol=1e-14)
    assert ss.diagnostics["retried"] and "warning" in ss.diagnostics
    assert ss.diagnostics["converged"] is False
    assert ss.diagnostics["residual"] > 1e-14


# ---------------------------------------------------------------------- mirror reduction, pump reuse
def _mirror_chain(n, W=1.7):
    """A dipolar chain off the magic angle with mirror-symmetric detunings (strong g)."""
    d = np.linspace(-0.4, 0.4, n) ** 2
    return DipoleSystem.chain(n, 0.07, 0.4, W=W, delta=d)


def test_mirror_symmetry_detection():
    from mpsync.solvers.exact.mirror import is_mirror_symmetric

    assert is_mirror_symmetric(_mirror_chain(6))
    assert not is_mirror_symmetric(DipoleSystem.chain(6, 0.07, 0.4, W=1.0, delta=np.linspace(-1, 1, 6)))
    rng = np.random.default_rng(3)
    assert not is_mirror_symmetric(DipoleSystem(random_psd_f(rng, 5), random_g(rng, 5), None, 1.0))


@pytest.mark.parametrize("n", [5, 6, 7])
def test_parity_block_round_trips(n, rng):
    """U = [U_e | U_o] is orthogonal, and the half layout equals the rows of the full matrix."""
    from mpsync.solvers.exact.mirror import ParityBlock, bit_reverse
    from mpsync.solvers.exact.sector_basis import SectorBasis

    basis = SectorBasis(n)
    for k in range(n + 1):
        p = ParityBlock(basis.configs[k], basis.rank, n)
        U = np.hstack([p.Ue.toarray(), p.Uo.toarray()])
        np.testing.assert_allclose(U.T @ U, np.eye(p.m), atol=1e-14)
        assert p.me + p.mo == p.m and p.size == p.me ** 2 + p.mo ** 2
        # a mirror-invariant X: X = P X P with P the permutation of mirror images
        X = rng.normal(size=(p.m, p.m)) + 1j * rng.normal(size=(p.m, p.m))
        perm = basis.rank[bit_reverse(basis.configs[k], n)]
        X = X + X[np.ix_(perm, perm)]
        v = p.from_full(X)
        np.testing.assert_allclose(p.to_full(v), X, atol=1e-12)
        np.testing.assert_allclose(p.to_rep_rows(v), X[p.reps], atol=1e-12)
        np.testing.assert_allclose(p.from_rep_rows(X[p.reps]), v, atol=1e-12)


@pytest.mark.parametrize("n", [6, 7])
def test_mirror_reduction_equals_whole_sector(n):
    """The steady state solved among mirror-invariant states is the whole sector's one."""
    s = _mirror_chain(n)
    a = exact.steady_state(s, solver="iterative", symmetry="none", reuse=False)
    b = exact.steady_state(s, solver="iterative", symmetry="auto", reuse=False)
    assert b.diagnostics["mirror"] and not a.diagnostics["mirror"]
    assert b.diagnostics["mirror_leak"] < 1e-14
    assert b.diagnostics["nnz_jumps"] < 0.6 * a.diagnostics["nnz_jumps"]
    np.testing.assert_allclose(b.extras["sector_vector"], a.extras["sector_vector"], atol=1e-12)
    assert b.diagnostics["residual"] < 1e-10
    if n == 6:  # and both are QuTiP's steady state
        H, c_ops = qutip_model(s)
        rho = qutip.steadystate(H, c_ops).full()
        np.testing.assert_allclose(exact.density_matrix(b), rho, atol=1e-8)


def test_mirror_operator_equals_whole_sector_operator(rng):
    """Reduce -> apply -> expand equals the whole-sector L on a mirror-invariant vector."""
    s = _mirror_chain(5)
    full = exact.SectorOperator(s)
    red = exact.SectorOperator(s, mirror=True)
    v = red.expand(rng.normal(size=red.size) + 1j * rng.normal(size=red.size))
    np.testing.assert_allclose(red.expand(red.apply(red.reduce(v))), full.apply(v), atol=1e-12)
    np.testing.assert_allclose(red.expand(red.solve_M(red.reduce(v))), full.solve_M(v), atol=1e-10)
    assert abs(red.trace(red.reduce(v)) - full.trace(v)) < 1e-12


def test_symmetry_option_is_checked():
    from mpsync.errors import InvalidOptionError

    detuned = DipoleSystem.chain(6, 0.1, "magic", W=1.0, delta=np.linspace(-1, 1, 6))
    with pytest.raises(InvalidOptionError, match="mirror"):
        exact.steady_state(detuned, symmetry="mirror")
    with pytest.raises(InvalidOptionError, match="symmetry"):
        exact.steady_state(detuned, symmetry="U1")
    assert not exact.steady_state(detuned, solver="iterative").diagnostics["mirror"]
    assert exact.estimate_memory(12, mirror=True) < 0.8 * exact.estimate_memory(12)


@pytest.mark.parametrize("mirror", [False, True])
def test_with_pump_equals_a_new_operator(rng, mirror):
    """Moving an operator to another W (shifted eigenvalues, scaled pump) equals building it
    anew, to the bit (both are built at W = 0 and shifted), so reuse never changes a result."""
    s = _mirror_chain(5, W=0.8)
    moved = exact.SectorOperator(s, mirror=mirror).with_pump(3.1)
    new = exact.SectorOperator(s.replace(W=3.1), mirror=mirror)
    v = rng.normal(size=new.size) + 1j * rng.normal(size=new.size)
    for f in ("apply", "apply_D", "solve_D", "solve_M", "apply_raise"):
        np.testing.assert_array_equal(getattr(moved, f)(v), getattr(new, f)(v), err_msg=f)
    # and both are the sparse sector Liouvillian at W = 3.1
    if not mirror:
        L, _ = exact.sector_liouvillian(s.replace(W=3.1))
        np.testing.assert_allclose(moved.apply(v), L @ v, atol=1e-11)
    exact.clear_operator_cache()
    a = exact.steady_state(s, solver="iterative")
    b = exact.steady_state(s.replace(W=3.1), solver="iterative")  # reuses a's operator
    c = exact.steady_state(s.replace(W=3.1), solver="iterative", reuse=False)
    assert b.diagnostics["reused_operator"] and not c.diagnostics["reused_operator"]
    np.testing.assert_array_equal(b.extras["sector_vector"], c.extras["sector_vector"])
    exact.clear_operator_cache()


def test_pump_scan_reuses_the_operator_and_warm_starts():
    s = _mirror_chain(7)
    exact.clear_operator_cache()
    first = exact.steady_state(s, solver="iterative")
    second = exact.steady_state(s.replace(W=1.8), solver="iterative", x0=first)
    # the kept operator moved to another W, where the other sweep direction is used
    third = exact.steady_state(s.replace(W=2.9), solver="iterative", x0=second)
    assert not first.diagnostics["reused_operator"]
    assert second.diagnostics["reused_operator"] and third.diagnostics["reused_operator"]
    assert third.diagnostics["preconditioner"] == "gauss-seidel-up"
    # reuse=False builds anew (and releases the kept operator)
    fresh = exact.steady_state(s.replace(W=1.8), solver="iterative", reuse=False)
    ref = exact.steady_state(s.replace(W=2.9), solver="iterative", reuse=False)
    assert not fresh.diagnostics["reused_operator"] and not ref.diagnostics["reused_operator"]
    np.testing.assert_allclose(second.correlations, fresh.correlations, atol=1e-11)
    np.testing.assert_allclose(third.correlations, ref.correlations, atol=1e-11)
    # a close neighbour is a good start
    assert second.diagnostics["iterations"] < fresh.diagnostics["iterations"]
    # another system is not reused
    other = exact.steady_state(_mirror_chain(7).replace(W=2.9, g=np.zeros((7, 7))), solver="iterative")
    assert not other.diagnostics["reused_operator"]
    exact.clear_operator_cache()


def test_x0_is_checked():
    from mpsync.errors import InvalidOptionError

    s5 = exact.steady_state(_mirror_chain(5))
    with pytest.raises(InvalidOptionError, match="N = 5"):
        exact.steady_state(_mirror_chain(6), x0=s5)
    with pytest.raises(InvalidOptionError, match="length"):
        exact.steady_state(_mirror_chain(6), x0=np.ones(7))
