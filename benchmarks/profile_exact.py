"""Profile one exact steady-state solve: where the time goes (issue 21).

Runs ``exact.steady_state`` on the magic-angle chain (spacing 0.1 lambda, W = 2) under
cProfile with BLAS pinned to one thread, and prints the solve's diagnostics and the
functions with the largest own time.

Usage::

    python benchmarks/profile_exact.py 13          # N = 13 (about 6 min on one core)
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from threadpoolctl import threadpool_limits

import mpsync
from mpsync.solvers import exact


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int)
    ap.add_argument("--top", type=int, default=18)
    args = ap.parse_args()
    s = mpsync.DipoleSystem.chain(args.n, 0.1, "magic", W=2.0)
    with threadpool_limits(1):
        prof = cProfile.Profile()
        t0 = time.time()
        prof.enable()
        ss = exact.steady_state(s)
        prof.disable()
    keys = ("krylov", "mirror", "matvecs", "iterations", "residual", "restart")
    print(f"N = {args.n}: {time.time() - t0:.1f} s under cProfile",
          {k: ss.diagnostics.get(k) for k in keys})
    pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
