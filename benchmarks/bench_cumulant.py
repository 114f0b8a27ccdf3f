"""Benchmarks of the mean-field and cumulant solvers (issue 5 targets).

BLAS threads are pinned with threadpoolctl (default 1; ``--threads 2`` uses
both cores of the 2-core target machine)::

    python benchmarks/bench_cumulant.py                 # the fast targets
    python benchmarks/bench_cumulant.py --big           # also 40 x 40 and 50 x 50
    python benchmarks/bench_cumulant.py --big --threads 2

Each case runs in a fresh subprocess so that its peak memory (ru_maxrss) is
its own. Prints a markdown table with wall-clock and process CPU seconds (on a
shared machine the CPU time is the less load-dependent figure).

Targets: cumulant steady state of the 30 x 30 power-law lattice (alpha = 1.5,
W near its optimum) <= 10 s; 50 x 50 <= 2 min; two-time correlations of one
dipole vs 199 others (N = 200) <= 30 s; memory O(N^2); mean-field analytic
phase diagram 100 x 100 <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CASES = {
    "phase_diagram": "mean-field analytic phase diagram 100 x 100",
    "lattice30": "cumulant steady state, 30 x 30 lattice, alpha = 1.5, W = 4",
    "two_time200": "two-time Z_ab(tau), N = 200 chain, central dipole vs 199 (steady state + fits)",
    "lattice40": "cumulant steady state, 40 x 40 lattice, alpha = 1.5, W = 4",
    "lattice50": "cumulant steady state, 50 x 50 lattice, alpha = 1.5, W = 4",
}
TARGETS = {"phase_diagram": 1.0, "lattice30": 10.0, "two_time200": 30.0, "lattice40": float("nan"), "lattice50": 120.0}


def run_case(name, threads=1):
    import resource

    import numpy as np
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    from mpsync.model import DipoleSystem
    from mpsync.solvers import cumulant as cu
    from mpsync.solvers import meanfield as mf

    out = {"name": name}
    if name == "phase_diagram":
        W = np.linspace(0, 40, 100)
        F = np.linspace(0.5, 40, 100)
        mf.phase_diagram(W, F)
        t, c = time.perf_counter(), time.process_time()
        for _ in range(10):
            Z = mf.phase_diagram(W, F)
        out["seconds"] = (time.perf_counter() - t) / 10
        out["cpu"] = (time.process_time() - c) / 10
        out["detail"] = f"max Z = {Z.max():.4f}"
        out["N"] = 0
    elif name in ("lattice30", "lattice40", "lattice50"):
        L = int(name[-2:])
        s = DipoleSystem.power_law((L, L), 1.5, W=4.0)
        t, c = time.perf_counter(), time.process_time()
        ss = cu.steady_state(s)
        out["seconds"] = time.perf_counter() - t
        out["cpu"] = time.process_time() - c
        d = ss.diagnostics
        out["N"] = s.n
        out["detail"] = (f"ZQ = {ss.ZQ:.4f}, ZQ^5 = {ss.cluster_ZQ(5):.4f}, residual {d['residual']:.1e}, "
                         f"Newton {len(d['newton_log'])}, GMRES {d['krylov_iterations']}, restarts {d['restarts']}, "
                         f"max Re a / Q {d['pair_rate'] / (1 + s.W):.3g}")
    elif name == "two_time200":
        rng = np.random.default_rng(1)
        s = DipoleSystem.power_law(200, 0.5, W=3.37, delta=rng.uniform(-0.5, 0.5, 200))
        t, c = time.perf_counter(), time.process_time()
        ss = cu.steady_state(s)
        taus, Z = cu.two_time_correlations(ss, 100)
        fit = cu.fit_pair_spectra(taus, Z, site=100)
        out["seconds"] = time.perf_counter() - t
        out["cpu"] = time.process_time() - c
        out["N"] = 200
        out["detail"] = (f"{len(taus)} delays, median nu = {np.nanmedian(fit['nu']):.3g}, "
                         f"median gamma = {np.nanmedian(fit['gamma']):.3g}")
    out["maxrss_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--big", action="store_true", help="include the 40 x 40 and 50 x 50 lattices")
    ap.add_argument("--case", help="run one case in this process and print JSON")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.threads)))
        return
    names = ["phase_diagram", "lattice30", "two_time200"] + (["lattice40", "lattice50"] if args.big else [])
    rows = []
    for name in names:
        th = str(args.threads)
        res = subprocess.run([sys.executable, __file__, "--case", name, "--threads", th],
                             capture_output=True, text=True,
                             env={**__import__("os").environ, "OMP_NUM_THREADS": th,
                                  "OPENBLAS_NUM_THREADS": th, "MKL_NUM_THREADS": th})
        if res.returncode != 0:
            print(res.stderr, file=sys.stderr)
            continue
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    print(f"BLAS threads: {args.threads}")
    print("| case | N | wall s | CPU s | target (s) | peak RSS (MB) | detail |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {CASES[r['name']]} | {r['N']} | {r['seconds']:.3g} | {r['cpu']:.3g} | "
              f"{TARGETS[r['name']]:g} | {r['maxrss_MB']:.0f} | {r['detail']} |")


if __name__ == "__main__":
    main()
