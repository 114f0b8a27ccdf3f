"""Robustness of the MPO ladder (issue 19): certified rungs against the exact permutational solver.

Usage::

    python benchmarks/bench_mpo_certified.py                      # the 12 all-to-all cases
    python benchmarks/bench_mpo_certified.py --cases 30:12:5      # one case N:f_eff:W
    python benchmarks/bench_mpo_certified.py --time-budget 240

Each case runs ``steady_state(method="mpo")`` with default options (``time_budget`` as
given, default the solver's own 600 s) and compares with ``method="permutational"``
(exact for all-to-all couplings). Per case it prints whether the error bar covers the
true error, and whether any certified rung ended further from exact than its
predecessor's error bar allowed (``monotone``: ``|Z_k - exact| <= |Z_{k-1} - exact| +
bar_{k-1}`` for every certified rung k from the third on, bar_{k-1} being the error
bar the ladder would have reported at rung k - 1). Per rung: bond, Z_Q, true error,
certificate ``||P_2 L rho|| / ||rho||``, certified or why not, seconds. BLAS threads
are pinned through the environment before numpy loads and checked with threadpoolctl.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings

CASES = [(20, 2.0, 0.4), (20, 5.0, 5.0), (20, 10.0, 20.0), (30, 3.0, 6.0), (30, 12.0, 5.0),
         (30, 15.0, 3.0), (40, 4.0, 4.0), (40, 10.0, 2.0), (40, 20.0, 40.0), (60, 6.0, 1.2),
         (60, 15.0, 15.0), (60, 30.0, 30.0)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=None, help="N:f_eff:W (default: the 12 cases)")
    p.add_argument("--time-budget", type=float, default=None, help="seconds per case (default: solver's)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="also write the per-case records here")
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np  # noqa: F401  (after the environment is set)
    from threadpoolctl import threadpool_info, threadpool_limits

    threadpool_limits(args.threads)
    pools = sorted({(i["internal_api"], i["num_threads"]) for i in threadpool_info()})
    from mpsync import DipoleSystem, steady_state
    from mpsync.solvers.mpo.ladder import zq_error

    cases = CASES if args.cases is None else [tuple(float(x) for x in c.split(":")) for c in args.cases]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"# {time.strftime('%Y-%m-%d')}, commit {commit}, BLAS pools {pools}", flush=True)
    print("| N | f_eff | W | exact Z_Q | MPO Z_Q +- bar | true error | covered | monotone | "
          "rungs (chi: true error / certificate) | left out | converged | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    out = []
    for n, f_eff, W in cases:
        n = int(n)
        system = DipoleSystem.all_to_all(n, f_eff=f_eff, W=W)
        exact = float(steady_state(system, method="permutational").ZQ)
        opts = {} if args.time_budget is None else {"time_budget": args.time_budget}
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            ss = steady_state(system, method="mpo", **opts)
        sec = time.perf_counter() - t0
        d = ss.diagnostics
        bar = ss.errors.get("ZQ", float("nan"))
        true = abs(float(ss.ZQ) - exact)
        cert = [r for r in d["ladder"] if r.get("certified", True)]
        monotone = True
        for k in range(2, len(cert)):
            prev_bar = zq_error(cert[:k])
            if abs(cert[k]["ZQ"] - exact) > abs(cert[k - 1]["ZQ"] - exact) + prev_bar:
                monotone = False
        rungs = ", ".join(f"{r['max_bond']}: {abs(r['ZQ'] - exact):.1e} / {r['certificate']:.1e}"
                          + ("" if r.get("certified", True) else " (x)") for r in d["ladder"])
        left = d.get("uncertified_rungs", [])
        print(f"| {n} | {f_eff:g} | {W:g} | {exact:.6f} | {float(ss.ZQ):.6f} +- {bar:.1e} | "
              f"{true:.1e} | {'yes' if true <= bar else 'NO'} | {'yes' if monotone else 'NO'} | "
              f"{rungs} | {left or '-'} | {d['converged']} ({d['stop_reason']}) | {sec:.0f} |",
              flush=True)
        out.append({"n": n, "f_eff": f_eff, "W": W, "exact": exact, "ZQ": float(ss.ZQ), "bar": bar,
                    "seconds": sec, "converged": d["converged"], "stop": d["stop_reason"],
                    "ladder": d["ladder"]})
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(out, fh, indent=1, default=float)
    return out


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
