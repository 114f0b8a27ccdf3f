"""Benchmark: exact steady state (balanced U(1) sector) vs QuTiP 5 ``steadystate``.

Dipolar chain at the magic angle, spacing 0.1 lambda, W = 2 (Gamma = 1), N = 5..10,
BLAS pinned to one thread with threadpoolctl. QuTiP's ``steadystate`` (default
direct method) runs on the same Liouvillian (checked entry by entry against
``mpsync.solvers.exact.liouvillian``) for N <= 7; N = 8 takes over 20 minutes.

Usage::

    python benchmarks/bench_exact.py              # N = 5..10, QuTiP at 5, 6, 7
    python benchmarks/bench_exact.py --nmax 8 --qutip-nmax 6

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from mpsync import DipoleSystem  # noqa: E402
from mpsync.channels import SM, SZ  # noqa: E402
from mpsync.solvers import exact  # noqa: E402


def qutip_liouvillian(system):
    """QuTiP superoperator of the same master equation (jumps from f = V diag(l) V^T)."""
    import qutip

    n = system.n

    def op(single, a):
        ops = [qutip.qeye(2)] * n
        ops[a] = qutip.Qobj(single)
        return qutip.tensor(ops)

    sm = [op(SM, a) for a in range(n)]
    H = 0 * op(SZ, 0)
    for a in range(n):
        H += 0.5 * system.delta[a] * op(SZ, a)
        for b in range(n):
            if a != b:
                H += 0.5 * system.g[a, b] * sm[a].dag() * sm[b]
    lam, vec = np.linalg.eigh(system.f)
    c_ops = [np.sqrt(lk) * sum(vec[b, k] * sm[b] for b in range(n))
             for k, lk in enumerate(lam) if lk > 1e-13]
    c_ops += [np.sqrt(system.W) * sm[a].dag() for a in range(n)]
    return qutip.liouvillian(H, c_ops)


def best_of(fn, repeat):
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nmin", type=int, default=5)
    ap.add_argument("--nmax", type=int, default=10)
    ap.add_argument("--qutip-nmax", type=int, default=7)
    ap.add_argument("--direct-nmax", type=int, default=7,
                    help="also time solver='direct' (sparse LU) up to this N")
    args = ap.parse_args(argv)
    threadpool_limits(1)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"commit {commit}, BLAS threads 1, dipolar chain magic angle, spacing 0.1, W = 2\n")
    print("| N | sector size | exact (s) | solver | GMRES its | residual | exact direct LU (s) "
          "| QuTiP steadystate (s) | QuTiP / exact | max abs diff of C_ab |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in range(args.nmin, args.nmax + 1):
        s = DipoleSystem.chain(n, 0.1, "magic", W=2.0)
        secs, ss = best_of(lambda: exact.steady_state(s), 3 if n <= 8 else 1)
        d = ss.diagnostics
        direct = "-"
        if n <= args.direct_nmax:
            t_dir, ss_dir = best_of(lambda: exact.steady_state(s, solver="direct"), 1)
            direct = f"{t_dir:.3g}"
        q_secs, ratio, diff = "-", "-", "-"
        if n <= args.qutip_nmax:
            import qutip

            Lq = qutip_liouvillian(s)
            # same Liouvillian: QuTiP stacks columns, our ket_bra order is row-major
            dim = 2 ** n
            idx = np.arange(dim * dim)
            perm = (idx % dim) * dim + idx // dim
            ours = exact.liouvillian(s, ordering="ket_bra")
            ref = Lq.to("csr").data.as_scipy().tocsr()[perm][:, perm]
            assert abs(ours - ref).max() < 1e-12
            tq, rho_q = best_of(lambda: qutip.steadystate(Lq), 3 if n <= 6 else 1)
            mq = exact.full_moments(rho_q.full())
            q_secs, ratio = f"{tq:.3g}", f"{tq / secs:.3g}"
            diff = f"{np.abs(mq.correlations - ss.correlations).max():.1e}"
        print(f"| {n} | {d['sector_size']} | {secs:.3g} | {d['solver']} | {d.get('iterations', '-')} "
              f"| {d['residual']:.1e} | {direct} | {q_secs} | {ratio} | {diff} |", flush=True)


if __name__ == "__main__":
    main()
