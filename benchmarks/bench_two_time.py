"""Benchmark: steady-state two-time functions through ``mpsync.two_time`` (issue 20).

Cases (BLAS pinned to one thread with threadpoolctl; Gamma = 1):

* ``exact10``: magic-angle chain N = 10, spacing 0.1, W = 2, 201 delays over 0 <= tau <= 10,
  the central dipole against all others (target <= 60 s), and QuTiP's ``correlation_2op_1t``
  on one pair of the same chain at N = 6 (peer timing and agreement);
* ``mpo``: chain N = 6 (and ``--mpo-n``), pairs (1, 3) and (0, 5), 41 delays to tau = 4,
  against exact: the true error beside the error bar, and the time;
* ``mpo-central``: chain N = 8 (``--mpo-n``), the central dipole against all others, 101 delays
  over 0 <= tau <= 10, dt = 0.1, against exact (issue 20's "MPO vs exact to 1e-3 over tau <= 10").

Usage::

    python benchmarks/bench_two_time.py            # both
    python benchmarks/bench_two_time.py --only exact10

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import mpsync  # noqa: E402
from mpsync import DipoleSystem  # noqa: E402


def _qutip_pair(system, taus, a, b):
    import qutip

    from mpsync.channels import SM, SZ

    n = system.n

    def op(single, k):
        ops = [qutip.qeye(2)] * n
        ops[k] = qutip.Qobj(single)
        return qutip.tensor(ops)

    sm = [op(SM, k) for k in range(n)]
    H = 0 * op(SZ, 0)
    for i in range(n):
        for j in range(n):
            if i != j:
                H += 0.5 * system.g[i, j] * sm[i].dag() * sm[j]
    lam, vec = np.linalg.eigh(system.f)
    c_ops = [np.sqrt(lk) * sum(vec[j, k] * sm[j] for j in range(n)) for k, lk in enumerate(lam) if lk > 1e-13]
    c_ops += [np.sqrt(system.W) * s.dag() for s in sm]
    A = sm[a] + sm[b]
    return qutip.correlation_2op_1t(H, None, taus, c_ops, A.dag(), A, options={"atol": 1e-10, "rtol": 1e-8})


def exact10():
    s = DipoleSystem.chain(10, 0.1, "magic", W=2.0)
    taus = np.linspace(0.0, 10.0, 201)
    t0 = time.perf_counter()
    ss = mpsync.steady_state(s)
    t1 = time.perf_counter()
    r = mpsync.two_time(ss, taus)
    t2 = time.perf_counter()
    print(f"| exact, N = 10 chain, 201 delays, central dipole vs 9 (+ J) | {t2 - t1:.1f} s "
          f"(+ steady state {t1 - t0:.1f} s) | target <= 60 s | nu_5,4 = {r.fits['nu'][4]:.4f} "
          f"+- {r.fits['nu_err'][4]:.1g}, linewidth {r.linewidth[0]:.4f} |")
    small = DipoleSystem.chain(6, 0.1, "magic", W=2.0)
    tq = np.linspace(0.0, 10.0, 201)
    t0 = time.perf_counter()
    ref = _qutip_pair(small, tq, 2, 3)
    t1 = time.perf_counter()
    ours = mpsync.two_time(small, tq, pairs=[(2, 3)])
    t2 = time.perf_counter()
    print(f"| N = 6, one pair, 201 delays: QuTiP correlation_2op_1t (with its steady state) | "
          f"{t1 - t0:.2f} s | mpsync exact {t2 - t1:.2f} s (ratio {(t1 - t0) / (t2 - t1):.0f}) | "
          f"max diff {np.max(np.abs(ref - ours.Z[0])):.1e} |")


def mpo(n):
    s = DipoleSystem.chain(n, 0.1, "magic", W=2.0)
    taus = np.linspace(0.0, 4.0, 41)
    pairs = [(1, n // 2), (0, n - 1)]
    ref = mpsync.two_time(s, taus, pairs=pairs)
    t0 = time.perf_counter()
    ss = mpsync.steady_state(s, method="mpo")
    t1 = time.perf_counter()
    r = mpsync.two_time(ss, taus, pairs=pairs)
    t2 = time.perf_counter()
    err = np.abs(r.Z - ref.Z)
    cover = bool(np.all(err <= r.errors["Z"] + 1e-6))
    print(f"| mpo, N = {n} chain, pairs {pairs}, 41 delays to tau = 4, chi = {r.diagnostics['max_bond']} "
          f"vs {r.diagnostics['low_bond']} | {t2 - t1:.0f} s (+ steady state {t1 - t0:.0f} s) | "
          f"max |Z - exact| {err.max():.1e}, error bar max {r.errors['Z'].max():.1e}, covers: {cover}; "
          f"J: {np.max(np.abs(r.J - ref.J)):.1e} |")


def mpo_central(n):
    s = DipoleSystem.chain(n, 0.1, "magic", W=2.0)
    taus = np.linspace(0.0, 10.0, 101)
    c = n // 2
    pairs = [(c, b) for b in range(n) if b != c]
    ref = mpsync.two_time(s, taus, pairs=pairs)
    t0 = time.perf_counter()
    ss = mpsync.steady_state(s, method="mpo")
    t1 = time.perf_counter()
    r = mpsync.two_time(ss, taus, pairs=pairs, dt=0.1)
    t2 = time.perf_counter()
    err = np.abs(r.Z - ref.Z)
    cover = bool(np.all(err <= r.errors["Z"] + 1e-6))
    where = taus[np.unravel_index(err.argmax(), err.shape)[1]]
    print(f"| mpo, N = {n} chain, central dipole vs {n - 1}, 101 delays to tau = 10, chi = "
          f"{r.diagnostics['max_bond']} vs {r.diagnostics['low_bond']} (lower rung's steady state: "
          f"{r.diagnostics['error_bar_includes_steady_state']}) | {t2 - t1:.0f} s (+ steady state "
          f"{t1 - t0:.0f} s) | max |Z - exact| {err.max():.1e} at tau = {where:g}, error bar max "
          f"{r.errors['Z'].max():.1e}, covers: {cover}; J: {np.max(np.abs(r.J - ref.J)):.1e} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["exact10", "mpo", "mpo-central"])
    ap.add_argument("--mpo-n", type=int, default=None, help="N of the mpo cases (6; mpo-central: 8)")
    args = ap.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, BLAS threads 1, commit {commit}")
    print("| case | time | target / peer | numbers |")
    print("|---|---|---|---|")
    with threadpool_limits(1):
        if args.only in (None, "exact10"):
            exact10()
        if args.only in (None, "mpo"):
            mpo(args.mpo_n or 6)
        if args.only == "mpo-central":     # ~11 min: only on request
            mpo_central(args.mpo_n or 8)


if __name__ == "__main__":
    main()
