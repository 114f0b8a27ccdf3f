"""What each layer costs: one one-site effective-generator application of the MPO solver
written as plain autoray tensordots in a fixed order (mpsync.solvers.mpo.tdvp) vs the same
contraction through quimb's tensor-network layer (Tensor objects, index bookkeeping, a
cotengra path) and through ``cotengra.einsum`` (path search cached per shape).

Usage: ``python benchmarks/bench_mpo_layers.py [--threads 1]``. Prints a markdown table
of microseconds per application for a few (chi, D) and the ratio quimb / autoray.
"""

from __future__ import annotations

import argparse
import os
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=50)
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np
    import quimb.tensor as qtn

    from mpsync.solvers.mpo.tdvp import _op1

    rng = np.random.default_rng(0)

    def c(*s):
        return rng.normal(size=s) + 1j * rng.normal(size=s)

    import cotengra as ctg

    print("| chi | D | autoray us | quimb us | cotengra.einsum us | quimb / autoray | cotengra / autoray |")
    print("|---|---|---|---|---|---|---|")
    for chi, D in ((8, 6), (16, 26), (32, 56), (64, 56), (128, 6)):
        LE, RE, M, C = c(chi, D, chi), c(chi, D, chi), c(D, D, 4, 4), c(chi, 4, chi)
        op = _op1(LE, M, RE)
        op(C)
        t = time.perf_counter()
        for _ in range(args.repeat):
            ref = op(C)
        t_ar = (time.perf_counter() - t) / args.repeat
        tn = (qtn.Tensor(LE, inds=("x", "w", "y")) | qtn.Tensor(M, inds=("w", "v", "s", "t"))
              | qtn.Tensor(RE, inds=("X", "v", "Y")))

        def quimb_apply(C):
            net = tn | qtn.Tensor(C, inds=("y", "t", "Y"))
            return net.contract(output_inds=("x", "s", "X"), optimize="auto").data

        got = quimb_apply(C)
        assert np.allclose(got, ref)
        t = time.perf_counter()
        for _ in range(args.repeat):
            quimb_apply(C)
        t_q = (time.perf_counter() - t) / args.repeat
        eq = "xwy,wvst,XvY,ytY->xsX"
        assert np.allclose(ctg.einsum(eq, LE, M, RE, C), ref)
        t = time.perf_counter()
        for _ in range(args.repeat):
            ctg.einsum(eq, LE, M, RE, C)
        t_c = (time.perf_counter() - t) / args.repeat
        print(f"| {chi} | {D} | {t_ar * 1e6:.0f} | {t_q * 1e6:.0f} | {t_c * 1e6:.0f} | "
              f"{t_q / t_ar:.2f} | {t_c / t_ar:.2f} |")


if __name__ == "__main__":
    main()
