"""Benchmark of method="permutational" against QuTiP-PIQS on the all-to-all steady state.

Problem: N dipoles, f_ab = f_eff/N (a != b), Gamma = 1, g = delta = 0,
f_eff = 15 (N = 70) or f_eff = N/5 (larger N), W = f_eff/2. PIQS rates:
collective_emission = f_eff/N, emission = Gamma - f_eff/N, pumping = W.

Peers, in the same run, one BLAS thread:

- PIQS ``Pim``: the population rate equation (``coefficient_matrix``) plus a
  sparse LU null-vector solve (Pim has no steady-state routine);
- PIQS ``Dicke``: the full Dicke-basis Liouvillian (nds^2 x nds^2), restricted to
  the block coupled to the ground state (its connected component: the balanced
  populations) since ``qutip.steadystate`` on the whole matrix fails as singular,
  then a sparse LU solve with the trace row.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_permutational.py [--quick] [--no-1000]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scipy.sparse import csc_matrix, csgraph  # noqa: E402
from scipy.sparse.linalg import splu  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from mpsync import DipoleSystem  # noqa: E402
from mpsync.solvers import permutational as P  # noqa: E402


def best_of(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def f_eff_for(n):
    return 15.0 if n == 70 else n / 5.0


def perm(n):
    return P.steady_state(DipoleSystem.all_to_all(n, f_eff_for(n), f_eff_for(n) / 2))


def _null_vector(M, trace_weights):
    """Solve M x = 0 with sum(trace_weights * x) = 1 (one row replaced)."""
    A = M.tolil()
    A[0, :] = trace_weights
    b = np.zeros(M.shape[0])
    b[0] = 1.0
    return splu(A.tocsc()).solve(b)


def pim(n):
    from qutip import piqs

    fe = f_eff_for(n)
    model = piqs.Pim(n, emission=1 - fe / n, pumping=fe / 2, collective_emission=fe / n)
    M = model.coefficient_matrix().tocsc()
    p = _null_vector(M, np.ones(M.shape[0]))
    # observables: k -> (j, m)
    J = np.zeros(M.shape[0])
    m = np.zeros(M.shape[0])
    cols = n // 2 + 1 if n % 2 == 0 else (n + 1) // 2
    for r, c in np.ndindex(n + 1, cols):
        if model.isdicke(r, c):
            k = model.calculate_k(r, c)
            J[k], m[k] = model.calculate_j_m(r, c)
    sz = 2 * (p @ m) / n
    C = (p @ ((J + m) * (J - m + 1)) - n * (1 + sz) / 2) / (n * (n - 1))
    return sz, C


def dicke(n):
    from qutip import piqs
    from qutip.piqs._piqs import jmm1_dictionary

    fe = f_eff_for(n)
    system = piqs.Dicke(n, emission=1 - fe / n, pumping=fe / 2, collective_emission=fe / n)
    L = system.liouvillian().to("csr").data_as("csr_matrix")
    nds = piqs.num_dicke_states(n)
    flat = jmm1_dictionary(n)[3]  # (j, m, m') -> flat index nds * i + k
    ground = flat[(n / 2, -n / 2, -n / 2)]
    _, labels = csgraph.connected_components(abs(L), directed=False)
    block = np.flatnonzero(labels == labels[ground])
    Lb = L[block][:, block].tocsc()
    Lb = csc_matrix((Lb.data.real, Lb.indices, Lb.indptr), shape=Lb.shape)  # no Hamiltonian: real rates
    inv = {v: k for k, v in flat.items()}
    jm = np.array([inv[b] for b in block])
    J, m, m1 = jm.T
    x = _null_vector(Lb, (m == m1).astype(float)).real
    sz = 2 * (x @ m) / n
    C = (x @ ((J + m) * (J - m + 1)) - n * (1 + sz) / 2) / (n * (n - 1))
    return sz, C, block.size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip N = 1000 and the slow peers")
    ap.add_argument("--no-1000", action="store_true")
    args = ap.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"# permutational benchmark, commit {commit}, BLAS threads 1, {time.strftime('%Y-%m-%d')}\n")
    rows = []
    with threadpool_limits(1):
        perm(70)  # warm up imports
        sizes = [70, 200] + ([] if (args.quick or args.no_1000) else [1000])
        for n in sizes:
            t, res = best_of(lambda: perm(n), 3 if n < 1000 else 1)
            rows.append((n, t, res, peak_rss_mb()))
        print("| N | f_eff | W | basis | permutational (s) | LU nnz | Z_Q | peak RSS (MB) |")
        print("|---|---|---|---|---|---|---|---|")
        for n, t, res, rss in rows:
            print(f"| {n} | {f_eff_for(n):g} | {f_eff_for(n) / 2:g} | {res.diagnostics['basis_size']} | {t:.4f} | "
                  f"{res.diagnostics.get('lu_nnz', 0)} | {float(res.ZQ):.6f} | {rss:.0f} |")
        print()
        print("| N | peer | peer (s) | permutational (s) | ratio peer/perm | max dev. (sz, ZQ2) |")
        print("|---|---|---|---|---|---|")
        perm_t = {n: t for n, t, _, _ in rows}
        perm_r = {n: r for n, _, r, _ in rows}
        for n in (70, 200):
            t, (sz, C) = best_of(lambda: pim(n), 1 if n > 100 else 3)
            dev = max(abs(sz - perm_r[n].sz[0]), abs(C - perm_r[n].ZQ2))
            print(f"| {n} | PIQS Pim + LU | {t:.4f} | {perm_t[n]:.4f} | {t / perm_t[n]:.1f} | {dev:.1e} |")
        dicke_sizes = [70] if args.quick else [70, 100]
        for n in dicke_sizes:
            if n not in perm_t:
                perm_t[n], perm_r[n] = best_of(lambda: perm(n), 3)
            t, (sz, C, bs) = best_of(lambda: dicke(n), 1)
            dev = max(abs(sz - perm_r[n].sz[0]), abs(C - perm_r[n].ZQ2))
            print(f"| {n} | PIQS Dicke Liouvillian, coupled block ({bs}) + LU | {t:.3f} | {perm_t[n]:.4f} | "
                  f"{t / perm_t[n]:.0f} | {dev:.1e} |")
        # dynamics at N = 70
        res = perm_r[70]
        taus = np.linspace(0, 1, 41)
        tj, _ = best_of(lambda: P.two_time(res.system, taus, [], res), 1)
        tp, pair = best_of(lambda: P.two_time(res.system, taus, [(0, 1)], res), 1)
        tq, _ = best_of(lambda: P.unconditional_qfi(res), 3)
        print()
        print(f"N = 70 extras: <J+(tau)J-> on 41 delays {tj:.3f} s; Z_ab(tau) on 41 delays {tp:.3f} s "
              f"(fitted gamma = {pair.fits['gamma'][0]:.4f}); unconditional QFI {tq * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
