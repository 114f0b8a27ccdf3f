"""Benchmark: steady-state two-time functions through ``mpsync.two_time`` (issue 20).

Cases (BLAS pinned to one thread with threadpoolctl; Gamma = 1):

* ``exact10``: magic-angle chain N = 10, spacing 0.1, W = 2, 201 delays over 0 <= tau <= 10,
  the central dipole against all others (target <= 60 s), and QuTiP's ``correlation_2op_1t``
  on one pair of the same chain at N = 6 (peer timing and agreement);
* ``mpo``: chain N = 6 (and ``--mpo-n``), pairs (1, 3) and (0, 5), 41 delays to tau = 4,
  against exact: the true error beside the error bar, and the time;
* ``mpo-central``: chain N = 8 (``--mpo-n``), the central dipole against all others, 101 delays
  over 0 <= tau <= 10, dt = 0.1, against exact (issue 20's "MPO vs exact to 1e-3 over tau <= 10");
* ``mpo-source``: chain N = 50 (``--mpo-n``), one source (the central dipole, pair (c, c)),
  201 delays over 0 <= tau <= 20, dt = 0.1, at chi and chi / 2: the cost of one of the
  N / 2 sources (mirror) that issue 20's "N = 50, 200 delays, all pairs with the central
  site" needs, and the whole request's cost from it;
* ``mpo-u1``: chain N = 16 (``--mpo-n``), pair (8, 7) and J, 6 delays to tau = 0.5, dt = 0.1,
  the same request dense (``symmetry="none"``) and on U(1) blocks (charge -1): time ratio and
  the largest difference;
* ``mpo-a2a``: all-to-all N = 30 (``--mpo-n``), f_eff = 3, W = 6, pair (0, 1) and J, 41 delays to
  tau = 4, dt = 0.1, against ``permutational`` (issue 20's "MPO vs permutational for all-to-all
  N = 30").

Usage::

    python benchmarks/bench_two_time.py            # both
    python benchmarks/bench_two_time.py --only exact10
    python benchmarks/bench_two_time.py --only mpo-central --mpo-n 10 --integrator 2site

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


#: the MPO propagation's steps (``--integrator``)
INTEGRATOR = "auto"


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


def mpo_source(n):
    s = DipoleSystem.chain(n, 0.1, "magic", W=2.0)
    taus = np.linspace(0.0, 20.0, 201)
    c = n // 2
    t0 = time.perf_counter()
    ss = mpsync.steady_state(s, method="mpo")
    t1 = time.perf_counter()
    r = mpsync.two_time(ss, taus, method="mpo", pairs=[(c, c)], dt=0.1, collective=False,
                        integrator=INTEGRATOR)
    t2 = time.perf_counter()
    sources = (n + 1) // 2
    runs = "; ".join(f"chi {x['max_bond']}: {x['steps']} steps ({x['one_site_steps']} one-site), "
                     f"{x['matvecs']} matvecs" for x in r.diagnostics["runs"])
    print(f"| mpo, N = {n} chain, one source (site {c}), 201 delays to tau = 20, dt = 0.1, chi = "
          f"{r.diagnostics['max_bond']} vs {r.diagnostics['low_bond']}, integrator {INTEGRATOR} | "
          f"{t2 - t1:.0f} s (+ steady state {t1 - t0:.0f} s, Z_Q {float(ss.ZQ):.5f} +- "
          f"{float(ss.errors['ZQ']):.1e}) | the central-vs-all request ({sources} sources with the "
          f"mirror): {sources * (t2 - t1) / 60:.0f} min | {runs}; bar of G_cc max "
          f"{r.errors['Z'].max() / 4:.1e} |")


def mpo_central(n):
    s = DipoleSystem.chain(n, 0.1, "magic", W=2.0)
    taus = np.linspace(0.0, 10.0, 101)
    c = n // 2
    pairs = [(c, b) for b in range(n) if b != c]
    ref = mpsync.two_time(s, taus, pairs=pairs)
    t0 = time.perf_counter()
    ss = mpsync.steady_state(s, method="mpo")
    t1 = time.perf_counter()
    r = mpsync.two_time(ss, taus, pairs=pairs, dt=0.1, integrator=INTEGRATOR)
    t2 = time.perf_counter()
    err = np.abs(r.Z - ref.Z)
    cover = bool(np.all(err <= r.errors["Z"] + 1e-6))
    where = taus[np.unravel_index(err.argmax(), err.shape)[1]]
    print(f"| mpo, N = {n} chain, central dipole vs {n - 1}, 101 delays to tau = 10, integrator "
          f"{INTEGRATOR}, mirror {r.diagnostics['mirror']}, chi = "
          f"{r.diagnostics['max_bond']} vs {r.diagnostics['low_bond']} (lower rung's steady state: "
          f"{r.diagnostics['error_bar_includes_steady_state']}) | {t2 - t1:.0f} s (+ steady state "
          f"{t1 - t0:.0f} s) | max |Z - exact| {err.max():.1e} at tau = {where:g}, error bar max "
          f"{r.errors['Z'].max():.1e}, covers: {cover}; J: {np.max(np.abs(r.J - ref.J)):.1e} |")


def mpo_u1(n):
    s = DipoleSystem.chain(n, 0.1, "magic", W=2.0)
    taus = np.linspace(0.0, 0.5, 6)
    ss = mpsync.steady_state(s, method="mpo")
    pairs = [(n // 2, n // 2 - 1)]
    runs = {}
    for sym in ("none", "U1"):
        t0 = time.perf_counter()
        runs[sym] = (mpsync.two_time(ss, taus, method="mpo", pairs=pairs, dt=0.1, symmetry=sym),
                     time.perf_counter() - t0)
    (d, td), (b, tb) = runs["none"], runs["U1"]
    diff = max(np.abs(d.Z - b.Z).max(), np.abs(d.J - b.J).max())
    engines = ", ".join(sorted({f"chi {x['max_bond']}: {x['engine']}" for x in b.diagnostics["runs"]}))
    print(f"| mpo, N = {n} chain, pair {pairs[0]} + J, 6 delays to tau = 0.5, chi = "
          f"{b.diagnostics['max_bond']} vs {b.diagnostics['low_bond']} | dense {td:.1f} s, blocks "
          f"{tb:.1f} s | ratio {td / tb:.1f} | max difference {diff:.1e} ({engines}) |")


def mpo_all_to_all(n, f_eff=3.0, W=6.0):
    s = DipoleSystem.all_to_all(n, f_eff=f_eff, W=W)
    taus = np.linspace(0.0, 4.0, 41)
    pairs = [(0, 1)]
    ref = mpsync.two_time(s, taus, pairs=pairs, method="permutational")
    t0 = time.perf_counter()
    ss = mpsync.steady_state(s, method="mpo")
    t1 = time.perf_counter()
    r = mpsync.two_time(ss, taus, method="mpo", pairs=pairs, dt=0.1)
    t2 = time.perf_counter()
    err = np.abs(r.Z - ref.Z)
    jerr = np.abs(r.J - ref.J)
    print(f"| mpo, all-to-all N = {n}, f_eff = {f_eff:g}, W = {W:g}, pair (0, 1) + J, 41 delays to "
          f"tau = 4, chi = {r.diagnostics['max_bond']} vs {r.diagnostics['low_bond']} | {t2 - t1:.0f} s "
          f"(+ steady state {t1 - t0:.0f} s) | permutational | max |Z - exact| {err.max():.1e}, bar max "
          f"{r.errors['Z'].max():.1e}, covers: {bool(np.all(err <= r.errors['Z']))}; J: {jerr.max():.1e} "
          f"({jerr.max() / abs(ref.J[0]):.1e} of J(0)), bar {r.errors['J'].max():.1e}; fitted gamma "
          f"{r.fits['gamma'][0]:.5f} vs {ref.fits['gamma'][0]:.5f}, linewidth {r.linewidth[0]:.4f} vs "
          f"{ref.linewidth[0]:.4f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["exact10", "mpo", "mpo-central", "mpo-a2a", "mpo-u1", "mpo-source"])
    ap.add_argument("--integrator", choices=["auto", "2site"], default="auto",
                    help="the MPO propagation's steps (mpo-central, mpo-source)")
    ap.add_argument("--mpo-n", type=int, default=None,
                    help="N of the mpo cases (6; mpo-central: 8; mpo-a2a: 30; mpo-u1: 16)")
    args = ap.parse_args()
    global INTEGRATOR
    INTEGRATOR = args.integrator
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
        if args.only == "mpo-a2a":         # ~6 min: only on request
            mpo_all_to_all(args.mpo_n or 30)
        if args.only == "mpo-source":      # N = 50: long, only on request
            mpo_source(args.mpo_n or 50)
        if args.only == "mpo-u1":
            mpo_u1(args.mpo_n or 16)


if __name__ == "__main__":
    main()
