"""Benchmark of the MPO solver's steady state (TDVP) on dipolar chains.

Usage::

    python benchmarks/bench_mpo.py                      # N = 12, chi in 16 32 48 64
    python benchmarks/bench_mpo.py --n 50 --chi 16 32   # larger chains, chosen chi
    python benchmarks/bench_mpo.py --exact              # also the exact solver (N <= 12)

Magic-angle chain, spacing 0.1 lambda, W = 2 Gamma unless given. BLAS is pinned
to one thread (threadpoolctl). Prints a markdown table: per max_bond, the wall
time, Z_Q, |Delta Z_Q| against the largest max_bond (the max_bond-converged
reference) and, with --exact, against the exact solver, the final relative
residual, the stop reason, the evolved time and steps, the MPS and MPO bonds.
"""

from __future__ import annotations

import argparse
import subprocess
import time

import numpy as np
from threadpoolctl import threadpool_limits


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=12)
    p.add_argument("--chi", type=int, nargs="+", default=[16, 32, 48, 64])
    p.add_argument("--spacing", type=float, default=0.1)
    p.add_argument("--theta", default="magic")
    p.add_argument("--W", type=float, default=2.0)
    p.add_argument("--tol", type=float, default=1e-6)
    p.add_argument("--zq-tol", type=float, default=1e-6)
    p.add_argument("--t-max", type=float, default=200.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--exact", action="store_true", help="also run the exact solver")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    threadpool_limits(args.threads)

    from mpsync import DipoleSystem, steady_state

    theta = args.theta if args.theta == "magic" else float(args.theta)
    system = DipoleSystem.chain(args.n, args.spacing, theta, W=args.W)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    rows = []
    for chi in args.chi:
        t0, c0 = time.perf_counter(), time.process_time()
        ss = steady_state(system, method="mpo", max_bond=chi, tol=args.tol, zq_tol=args.zq_tol,
                          t_max=args.t_max, progress=args.progress)
        sec, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append((chi, sec, cpu, ss))
        d = ss.diagnostics
        print(f"# chi={chi}: {sec:.1f} s wall, {cpu:.1f} s CPU, ZQ={ss.ZQ:.6f}, "
              f"residual={d['residual']:.2e}, {d['stop_reason']}", flush=True)
    ref = rows[-1][3]
    exact_zq = None
    if args.exact:
        t0 = time.perf_counter()
        ex = steady_state(system, method="exact")
        exact_zq = float(ex.ZQ)
        print(f"# exact: {time.perf_counter() - t0:.1f} s, ZQ={exact_zq:.6f}", flush=True)
    print(f"\nN = {args.n}, spacing {args.spacing}, theta {args.theta}, W = {args.W}; "
          f"{args.threads} BLAS thread(s); commit {commit}\n")
    head = "| max_bond | wall s | CPU s | ZQ | abs dZQ vs chi=%d |" % rows[-1][0]
    if exact_zq is not None:
        head += " abs dZQ vs exact |"
    head += " residual | stop | t | steps | MPS bonds (max) | MPO bond (max) |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for chi, sec, cpu, ss in rows:
        d = ss.diagnostics
        line = f"| {chi} | {sec:.1f} | {cpu:.1f} | {ss.ZQ:.6f} | {abs(ss.ZQ - ref.ZQ):.1e} |"
        if exact_zq is not None:
            line += f" {abs(ss.ZQ - exact_zq):.1e} |"
        line += (f" {d['residual']:.1e} | {d['stop_reason']} | {d['time']:.1f} | {d['steps']} |"
                 f" {max(d['bond_dims'])} | {max(d['mpo_bond_dims'])} |")
        print(line)
    return rows


if __name__ == "__main__":
    main()
