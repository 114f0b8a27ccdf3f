"""Benchmark of the MPO steady state: the default bond-dimension ladder on dipolar chains.

Usage::

    python benchmarks/bench_mpo.py --n 12 --exact            # magic-angle chain, vs the exact solver
    python benchmarks/bench_mpo.py --n 50                     # the ladder to zq_tol = 1e-3
    python benchmarks/bench_mpo.py --n 100 --time-budget 1800
    python benchmarks/bench_mpo.py --all-to-all --n 30 --f-eff 4 --W 2   # vs permutational
    python benchmarks/bench_mpo.py --n 16 --spacing 0.05 --max-bond 32  # one rung
    python benchmarks/bench_mpo.py --n 14 --reference exact_n14.npz      # vs a saved exact state

Magic-angle chain, spacing 0.1 lambda, W = 2 Gamma unless given. BLAS threads are pinned
through the environment *before* numpy and scipy load (``threadpoolctl`` after the import
would miss scipy's own OpenBLAS, and two busy-waiting BLAS pools on a 2-core machine made
earlier MPO timings 5-20x slower), and checked with threadpoolctl. Prints one markdown row
per rung (bond dimension, seconds, steps, matvecs, Z_Q, drift, certificate, certified) and the result line: Z_Q,
its error bar ``errors["ZQ"]`` and, with a reference, the true error.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=12)
    p.add_argument("--spacing", type=float, default=0.1)
    p.add_argument("--theta", default="magic")
    p.add_argument("--W", type=float, default=2.0)
    p.add_argument("--all-to-all", action="store_true", help="f_ab = f_eff / N instead of a chain")
    p.add_argument("--f-eff", type=float, default=4.0)
    p.add_argument("--zq-tol", type=float, default=1e-3)
    p.add_argument("--max-bond", type=int, default=None, help="one rung instead of the ladder")
    p.add_argument("--ladder", type=int, nargs="+", default=None)
    p.add_argument("--time-budget", type=float, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--exact", action="store_true", help="compare with the exact solver (N <= 12)")
    p.add_argument("--reference", default=None,
                   help="a saved SteadyState (.npz, e.g. from bench_exact.py --save) of the same system")
    p.add_argument("--like", default="numpy", help="array backend: numpy, cupy, torch")
    p.add_argument("--symmetry", default="auto", help="auto, U1 (block-sparse from chi = 32) or none (dense)")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np  # (after the environment is set)
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_info, threadpool_limits

    threadpool_limits(args.threads)
    pools = sorted({(i["internal_api"], i["num_threads"]) for i in threadpool_info()})

    from mpsync import DipoleSystem, SteadyState, steady_state

    if args.all_to_all:
        system = DipoleSystem.all_to_all(args.n, f_eff=args.f_eff, W=args.W)
        label = f"all-to-all N = {args.n}, f_eff = {args.f_eff}, W = {args.W}"
    else:
        theta = args.theta if args.theta == "magic" else float(args.theta)
        system = DipoleSystem.chain(args.n, args.spacing, theta, W=args.W)
        label = f"chain N = {args.n}, spacing {args.spacing}, theta {args.theta}, W = {args.W}"
    reference = None
    if args.reference is not None:
        # Checked before the MPO runs: a reference of another system would give a meaningless error.
        reference = SteadyState.load(args.reference)
        same = (reference.system.n == system.n and np.allclose(reference.system.f, system.f)
                and np.allclose(reference.system.g, system.g) and reference.system.W == system.W)
        if not same:
            sys.exit(f"error: --reference {args.reference} holds another system ({reference.system})")
    opts = dict(zq_tol=args.zq_tol, progress=args.progress, like=args.like, symmetry=args.symmetry)
    if args.max_bond is not None:
        opts["max_bond"] = args.max_bond
    if args.ladder is not None:
        opts["ladder"] = args.ladder
    if args.time_budget is not None:
        opts["time_budget"] = args.time_budget
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    t0, c0 = time.perf_counter(), time.process_time()
    ss = steady_state(system, method="mpo", **opts)
    sec, cpu = time.perf_counter() - t0, time.process_time() - c0
    ref, ref_name = None, None
    if args.all_to_all:
        ref_name = "permutational"
    elif args.exact:
        ref_name = "exact"
    if reference is not None:
        ref, ref_name = reference, f"{reference.method} (saved)"
    elif ref_name:
        t1 = time.perf_counter()
        ref = steady_state(system, method=ref_name)
        print(f"# {ref_name}: {time.perf_counter() - t1:.1f} s, ZQ = {ref.ZQ:.7f}", file=sys.stderr)
    d = ss.diagnostics
    print(f"\n{label}; BLAS pools {pools}; backend {args.like}; symmetry {d.get('symmetry')}; "
          f"commit {commit}; MPO bond {max(d['mpo_bond_dims'])}\n")
    print("| rung max_bond | s | steps | matvecs | Z_Q | drift | certificate | certified | stop |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in d["ladder"]:
        print(f"| {r['max_bond']} | {r['seconds']:.1f} | {r['steps']} | {r['matvecs']} | "
              f"{r['ZQ']:.6f} | {r['drift']:.1e} | {r.get('certificate', float('nan')):.1e} | "
              f"{'yes' if r.get('certified', True) else 'no: ' + str(r.get('rejected_because'))} | "
              f"{r['stop_reason']} |")
    err = ss.errors.get("ZQ")
    line = (f"\nresult: Z_Q = {ss.ZQ:.6f} +- {err:.1e}" if err is not None else
            f"\nresult: Z_Q = {ss.ZQ:.6f} (single rung, no error bar)")
    line += f"; {d['stop_reason']}, converged {d['converged']}; {sec:.1f} s wall, {cpu:.1f} s CPU"
    if ref is not None:
        true = abs(float(ss.ZQ) - float(ref.ZQ))
        line += f"; |Z_Q - {ref_name}| = {true:.1e}"
        if err is not None:
            line += f" ({'covered' if true <= err else 'NOT covered'} by the error bar)"
    print(line)
    return ss


if __name__ == "__main__":
    main()
