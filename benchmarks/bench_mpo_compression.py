"""Bond dimension of the compressed Liouvillian MPO of dipolar chains.

For chains of N = 20 ... 200 dipoles (spacing 0.1 lambda, magic angle and
theta = 0, W = 2), builds the MPO at relative cutoffs 1e-6, 1e-8 and 1e-10 and
prints a markdown table of the largest bond dimension, the largest represented
coefficient error max|K_eff - K| over the six channels, and the build time.
One BLAS thread (threadpoolctl).

Usage: python benchmarks/bench_mpo_compression.py [--n 20 50 70 100 200]
"""

import argparse
import os
import subprocess
import time

from threadpoolctl import threadpool_limits

from mpsync import DipoleSystem
from mpsync.solvers.mpo.liouvillian import liouvillian_mpo


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[20, 50, 70, 100, 200])
    parser.add_argument("--cutoff", type=float, nargs="+", default=[1e-6, 1e-8, 1e-10])
    parser.add_argument("--spacing", type=float, default=0.1)
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    print(f"commit {commit}, BLAS threads 1, spacing {args.spacing} lambda, W = 2\n")
    print("| theta | N | cutoff | max bond | bond at N/2 | max coeff. error | build s |")
    print("|---|---|---|---|---|---|---|")
    with threadpool_limits(1):
        for theta in ("magic", 0.0):
            for n in args.n:
                system = DipoleSystem.chain(n, args.spacing, theta, W=2.0)
                for cutoff in args.cutoff:
                    t0 = time.perf_counter()
                    mpo = liouvillian_mpo(system, cutoff=cutoff)
                    dt = time.perf_counter() - t0
                    # measured separately: the O(N^2 r^2) error check is not part of the build
                    err = max(liouvillian_mpo(system, cutoff=cutoff, measure_error=True)
                              .coefficient_error.values())
                    mid = mpo.bond_dims[(n - 1) // 2]
                    print(f"| {theta} | {n} | {cutoff:.0e} | {mpo.max_bond} | {mid} | {err:.1e} | {dt:.2f} |",
                          flush=True)


if __name__ == "__main__":
    main()
