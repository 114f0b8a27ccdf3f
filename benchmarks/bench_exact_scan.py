"""Benchmark: the exact solver's mirror reduction and pump scans (the cost of a Fig. 4 point).

A dipolar chain off the magic angle (theta = 0.35, spacing 0.05 lambda: max |g| = 84 Gamma,
the stiff corner of Fig. 4), W = x f_eff for x = 0.6, 0.9, 1.2, 1.6 (Gamma = 1), BLAS pinned
to one thread with threadpoolctl. For each N it times

* ``whole``: the whole balanced sector, every W solved from scratch (``symmetry="none",
  reuse=False``, tol 1e-12: the solver before the mirror reduction);
* ``mirror``: the same with the mirror reduction (``symmetry="auto"``);
* ``scan``: the mirror reduction, the operator built once for the four W
  (``reuse=True``) and each W started from the previous one (``x0``), tol 1e-9
  (Fig. 4's settings);

and prints the largest |Z_Q| difference between the three. Usage::

    python benchmarks/bench_exact_scan.py --n 10 11 12

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from threadpoolctl import threadpool_limits  # noqa: E402

from mpsync import DipoleSystem  # noqa: E402
from mpsync.solvers import exact  # noqa: E402

X = (0.6, 0.9, 1.2, 1.6)


def systems(n, spacing=0.05, theta=0.35):
    s = DipoleSystem.chain(n, spacing, theta, W=1.0)
    return [s.replace(W=x * s.f_eff) for x in X]


def run(n, mode):
    exact.clear_operator_cache()
    t0 = time.perf_counter()
    out, prev, its = [], None, []
    for s in systems(n):
        if mode == "whole":
            r = exact.steady_state(s, symmetry="none", reuse=False)
        elif mode == "mirror":
            r = exact.steady_state(s, symmetry="auto", reuse=False)
        else:
            r = exact.steady_state(s, tol=1e-9, x0=prev)
            prev = r
        out.append(float(r.ZQ))
        its.append(r.diagnostics["iterations"])
    exact.clear_operator_cache()
    return time.perf_counter() - t0, out, its


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10, 11])
    ap.add_argument("--modes", nargs="+", default=["whole", "mirror", "scan"])
    args = ap.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"commit {commit}, BLAS threads 1, chain spacing 0.05, theta 0.35, W/f_eff = {X}")
    print("| N | mode | seconds (4 W) | per W | GMRES its | max abs dZ_Q vs whole |")
    print("|---|---|---|---|---|---|")
    with threadpool_limits(1):
        for n in args.n:
            ref = None
            for mode in args.modes:
                sec, zq, its = run(n, mode)
                ref = ref or zq
                dz = max(abs(a - b) for a, b in zip(zq, ref))
                print(f"| {n} | {mode} | {sec:.1f} | {sec / len(X):.1f} | {'/'.join(map(str, its))} | {dz:.1e} |",
                      flush=True)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")


if __name__ == "__main__":
    main()
