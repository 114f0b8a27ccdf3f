"""Measurement (not a solver): a DMRG-like local null-vector sweep against the TDVP ladder.

Usage::

    python benchmarks/bench_null_sweep.py                       # chain N = 10, a = 0.05, theta 0.35, W = 2
    python benchmarks/bench_null_sweep.py --n 10 --spacing 0.05 --theta 0.35 --W 2 --chi 16 --sweeps 12

Issue 19 asks to measure routes to the steady state that do not integrate in time before
keeping any. This script takes the TDVP state of one rung (``max_bond=--chi0``), expands its
bonds to ``--chi`` by one exact Euler step (as the ladder does between rungs) and, from that
same start, sweeps the one-site effective Liouvillian ``L1_eff(i)`` (the operator of
:meth:`mpsync.solvers.mpo.tdvp.TDVP.step1`) site by site, left to right and back, replacing
each site tensor by the solution of a local problem, then moving the orthogonality centre
by QR (no backward step: the update is not a time step):

* ``eigs``: the eigenvector of ``L1_eff`` with the largest real part (ARPACK, ``which="LR"``),
  the local form of ``L |rho>> = 0`` (Mascarenhas, Flayac, Savona, PRA 92, 022116 (2015));
* ``exp:tau``: ``exp(tau L1_eff) x`` for a long local time ``tau`` (Krylov), which projects
  on the same eigenvector without ARPACK;
* ``inv:tau``: one implicit-Euler solve ``(1 - tau L1_eff) y = x`` (restarted GMRES),
  inverse iteration with shift ``1 / tau``.

Each sweep prints Z_Q, its error against the exact solver, the two-site certificate eta_2
(:meth:`~mpsync.solvers.mpo.tdvp.TDVP.projected_residual`), the matvecs and the seconds, to set
beside the TDVP ladder on the same chain (``bench_mpo.py --exact`` with the same arguments).
BLAS threads are pinned to ``--threads`` before numpy loads. Results: benchmarks/RESULTS.md,
"A local null-vector sweep instead of time steps".
"""

from __future__ import annotations

import argparse
import os
import time
import warnings


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--spacing", type=float, default=0.05)
    p.add_argument("--theta", type=float, default=0.35)
    p.add_argument("--W", type=float, default=2.0)
    p.add_argument("--chi0", type=int, default=8, help="bond dimension of the TDVP start")
    p.add_argument("--chi", type=int, default=16, help="bond dimension of the sweeps")
    p.add_argument("--modes", default="eigs,exp:10,inv:10,inv:100")
    p.add_argument("--sweeps", type=int, default=12)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np
    import scipy.sparse.linalg as sla
    from threadpoolctl import threadpool_limits

    from mpsync import DipoleSystem, steady_state
    from mpsync.solvers.krylov import expm_krylov
    from mpsync.solvers.mpo.prepare import build_mpo
    from mpsync.solvers.mpo.relax import zq_of
    from mpsync.solvers.mpo.tdvp import TDVP, _op1, _update_left, _update_right, expand_basis

    threadpool_limits(args.threads)

    def local_solve(op, x, mode, tau):
        """The new site tensor from the local problem ``mode`` (see the module docstring)."""
        shape, m = x.shape, x.size
        if mode == "eigs":
            A = sla.LinearOperator((m, m), matvec=lambda v: np.ravel(op(v.reshape(shape))), dtype=complex)
            try:
                _, v = sla.eigs(A, k=1, which="LR", v0=np.ravel(x), ncv=min(m - 2, 24), tol=1e-8,
                                maxiter=200)
            except sla.ArpackNoConvergence:
                raise RuntimeError("ARPACK found no eigenvector of largest real part in 200 restarts") from None
            return v[:, 0].reshape(shape)
        if mode == "exp":
            return expm_krylov(op, x, tau, tol=1e-8, m_max=30)
        A = sla.LinearOperator((m, m), dtype=complex,
                               matvec=lambda v: np.ravel(v.reshape(shape) - tau * op(v.reshape(shape))))
        y, _ = sla.gmres(A, np.ravel(x), x0=np.ravel(x), rtol=1e-6, restart=30, maxiter=20)
        return y.reshape(shape)

    def sweep(eng, mode, tau):
        """One left-to-right and one right-to-left pass of local solves."""
        A, M, LE, RE, n = eng.mps, eng.mpo, eng.LE, eng.RE, eng.n
        for i in range(n - 1):
            C = local_solve(eng._counted(_op1(LE[i], M[i], RE[i])), A[i], mode, tau)
            Dl, d, Dr = C.shape
            Q, R = np.linalg.qr(C.reshape(Dl * d, Dr))
            A[i] = Q.reshape(Dl, d, Q.shape[1])
            LE[i + 1] = _update_left(LE[i], A[i], M[i])
            A[i + 1] = np.tensordot(R / np.linalg.norm(R), A[i + 1], axes=([1], [0]))
        for i in range(n - 1, 0, -1):
            C = local_solve(eng._counted(_op1(LE[i], M[i], RE[i])), A[i], mode, tau)
            Dl, d, Dr = C.shape
            Q, R = np.linalg.qr(C.reshape(Dl, d * Dr).T)
            A[i] = Q.T.reshape(Q.shape[1], d, Dr)
            RE[i - 1] = _update_right(RE[i], A[i], M[i])
            A[i - 1] = np.tensordot(A[i - 1], (R / np.linalg.norm(R)).T, axes=([2], [0]))
        C = local_solve(eng._counted(_op1(LE[0], M[0], RE[0])), A[0], mode, tau)
        A[0] = C / np.linalg.norm(C)

    system = DipoleSystem.chain(args.n, args.spacing, args.theta, W=args.W)
    exact = float(steady_state(system, method="exact").ZQ)
    print(f"chain N = {args.n}, spacing {args.spacing}, theta {args.theta}, W = {args.W}; "
          f"exact Z_Q = {exact:.6f}; threads {args.threads}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # the single rung says it has no error bar
        t0 = time.perf_counter()
        start = steady_state(system, method="mpo", max_bond=args.chi0, progress=False)
    print(f"TDVP rung chi = {args.chi0}: Z_Q {start.ZQ:.6f} ({start.ZQ - exact:+.1e}), "
          f"{start.diagnostics['matvecs']} matvecs, {time.perf_counter() - t0:.1f} s")
    mpo, _ = build_mpo(system)
    mps0 = expand_basis(mpo, [np.asarray(A) for A in start.extras["mps"]], 1e-2, args.chi)
    print("| local problem | sweep | Z_Q | error | eta_2 | matvecs | seconds |\n|---|---|---|---|---|---|---|")
    for spec in args.modes.split(","):
        mode, _, tau = spec.partition(":")
        eng = TDVP(mpo, mps0, max_bond=args.chi)
        t0 = time.perf_counter()
        for k in range(args.sweeps):
            try:
                sweep(eng, mode, float(tau or 10.0))
            except RuntimeError as exc:
                print(f"| {spec} | {k} | - | - | - | {eng.matvecs} | {time.perf_counter() - t0:.1f} ({exc}) |")
                break
            zq = zq_of(eng.mps, args.n)[1]
            print(f"| {spec} | {k} | {zq:.6f} | {zq - exact:+.1e} | {eng.projected_residual():.2e} | "
                  f"{eng.matvecs} | {time.perf_counter() - t0:.1f} |", flush=True)


if __name__ == "__main__":
    main()
