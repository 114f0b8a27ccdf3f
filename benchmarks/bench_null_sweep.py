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

* ``ldl``: the variational minimum of ``||L rho||_2 / ||rho||_2`` (DMRG on ``L^dagger L``;
  TensorMixedStates.jl's ``steady_state``, Cui, Cirac, Banuls, PRL 114, 220601 (2015)):
  the eigenvector of the smallest eigenvalue of the local ``P L^dagger L P`` (its own
  two-layer environments; dense Hermitian ``eigh``, so no Krylov convergence question),
  whose fixed points are not those of the projected flow.

``--start truth`` starts every mode from the exact steady state SVD-truncated to ``--chi``
instead (the question then is whether the local problem keeps the truth or walks away
from it). Each sweep prints Z_Q, its error against the exact solver, the two-site certificate eta_2
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
    p.add_argument("--start", choices=["tdvp", "truth"], default="tdvp")
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np
    import scipy.sparse.linalg as sla
    from threadpoolctl import threadpool_limits

    from mpsync import DipoleSystem, steady_state
    from mpsync.solvers.krylov import expm_krylov
    from mpsync.solvers.mpo.liouvillian import residual_env_left
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

    def ein(eq, x, y):
        return np.einsum(eq, x, y, optimize=True)       # pairwise: BLAS through tensordot

    def ldl_env_right(env, a, w):
        """The mirror of :func:`residual_env_left` (pairwise contractions: numpy's greedy
        path for the five tensors at once is the naive one)."""
        t = ein("ysz,vwrz->ysvwr", a, env)
        t = ein("ysvwr,qrts->yvwqt", t, w)
        t = ein("yvwqt,pwtu->yvqpu", t, w.conj())
        return ein("yvqpu,xuv->xpqy", t, a.conj())

    def ldl_local(LL, w, RR, shape):
        """Dense local P L^dagger L P at one site (the state's norm is the centre's)."""
        t = ein("xpqy,pwtu->xqywtu", LL, w.conj())
        t = ein("xqywtu,qrts->xywurs", t, w)
        M = ein("xywurs,vwrz->xuvysz", t, RR)
        m = int(np.prod(shape))
        return M.reshape(m, m)

    def pass_both_ways(A, n, solve, grow_left, grow_right):
        """Replace each site tensor by ``solve(i)``, left to right and back, moving the
        centre by QR (no backward step); ``grow_left(i)`` / ``grow_right(i)`` update the
        environments once site i is left- / right-canonical."""
        for i in range(n - 1):
            C = solve(i)
            Dl, d, Dr = C.shape
            Q, R = np.linalg.qr(C.reshape(Dl * d, Dr))
            A[i] = Q.reshape(Dl, d, Q.shape[1])
            grow_left(i)
            A[i + 1] = np.tensordot(R / np.linalg.norm(R), A[i + 1], axes=([1], [0]))
        for i in range(n - 1, 0, -1):
            C = solve(i)
            Dl, d, Dr = C.shape
            Q, R = np.linalg.qr(C.reshape(Dl, d * Dr).T)
            A[i] = Q.T.reshape(Q.shape[1], d, Dr)
            grow_right(i)
            A[i - 1] = np.tensordot(A[i - 1], (R / np.linalg.norm(R)).T, axes=([2], [0]))
        A[0] = solve(0)

    def ldl_sweep(A, M, n):
        """One left-to-right and one right-to-left pass of local L^dagger L minimisations;
        ``A`` right-canonical with its centre at site 0 on entry and on exit (not unit
        norm: the caller's engine renormalises). Returns the last local ||L rho|| / ||rho||."""
        one = np.ones((1, 1, 1, 1), dtype=complex)
        RR = [None] * n
        RR[n - 1] = one
        for i in range(n - 1, 0, -1):
            RR[i - 1] = ldl_env_right(RR[i], A[i], M[i])
        LL = [None] * n
        LL[0] = one
        lam = [np.nan]

        def solve(i):
            H = ldl_local(LL[i], M[i], RR[i], A[i].shape)
            vals, vecs = np.linalg.eigh(0.5 * (H + H.conj().T))
            lam[0] = float(np.sqrt(max(vals[0], 0.0)))
            return vecs[:, 0].reshape(A[i].shape)

        def grow_left(i):
            LL[i + 1] = residual_env_left(LL[i], M[i], A[i])

        def grow_right(i):
            RR[i - 1] = ldl_env_right(RR[i], A[i], M[i])

        pass_both_ways(A, n, solve, grow_left, grow_right)
        return lam[0]

    def truncated_truth(rho, n, chi):
        """The exact rho as an MPS (site index 4 = (ket bit, bra bit), as
        :func:`mpsync.solvers.mpo.state.density_matrix` reads it), SVD-truncated to chi."""
        psi = rho.reshape((2,) * (2 * n))
        psi = np.transpose(psi, [k for a in range(n) for k in (a, n + a)]).reshape((4,) * n)
        out, rest, left = [], psi.reshape(1, -1), 1
        for a in range(n - 1):
            U, S, Vh = np.linalg.svd(rest.reshape(left * 4, -1), full_matrices=False)
            k = min(chi, S.size)
            out.append(U[:, :k].reshape(left, 4, k))
            rest, left = S[:k, None] * Vh[:k], k
        out.append(rest.reshape(left, 4, 1))
        return out

    def sweep(eng, mode, tau):
        """One left-to-right and one right-to-left pass of local solves."""
        A, M, LE, RE, n = eng.mps, eng.mpo, eng.LE, eng.RE, eng.n

        def solve(i):
            return local_solve(eng._counted(_op1(LE[i], M[i], RE[i])), A[i], mode, tau)

        def grow_left(i):
            LE[i + 1] = _update_left(LE[i], A[i], M[i])

        def grow_right(i):
            RE[i - 1] = _update_right(RE[i], A[i], M[i])

        pass_both_ways(A, n, solve, grow_left, grow_right)
        A[0] = A[0] / np.linalg.norm(A[0])

    system = DipoleSystem.chain(args.n, args.spacing, args.theta, W=args.W)
    exact = float(steady_state(system, method="exact").ZQ)
    print(f"chain N = {args.n}, spacing {args.spacing}, theta {args.theta}, W = {args.W}; "
          f"exact Z_Q = {exact:.6f}; threads {args.threads}")
    mpo, _ = build_mpo(system)
    if args.start == "truth":
        from mpsync.solvers.exact import density_matrix

        mps0 = truncated_truth(density_matrix(system), args.n, args.chi)
        zq = zq_of(mps0, args.n)[1]
        print(f"start: the exact state truncated to chi = {args.chi}: Z_Q {zq:.6f} ({zq - exact:+.1e})")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")       # the single rung says it has no error bar
            t0 = time.perf_counter()
            start = steady_state(system, method="mpo", max_bond=args.chi0, progress=False)
        print(f"TDVP rung chi = {args.chi0}: Z_Q {start.ZQ:.6f} ({start.ZQ - exact:+.1e}), "
              f"{start.diagnostics['matvecs']} matvecs, {time.perf_counter() - t0:.1f} s")
        mps0 = expand_basis(mpo, [np.asarray(A) for A in start.extras["mps"]], 1e-2, args.chi)
    print("| local problem | sweep | Z_Q | error | eta_2 | matvecs | seconds |\n|---|---|---|---|---|---|---|")
    for spec in args.modes.split(","):
        mode, _, tau = spec.partition(":")
        eng = TDVP(mpo, mps0, max_bond=args.chi)
        t0 = time.perf_counter()
        for k in range(args.sweeps):
            if mode == "ldl":                  # its own environments; eta_2 is TDVP's certificate
                lam = ldl_sweep(eng.mps, eng.mpo, args.n)
                eng._build_right_envs()
                zq = zq_of(eng.mps, args.n)[1]
                print(f"| {spec} | {k} | {zq:.6f} | {zq - exact:+.1e} | {eng.projected_residual():.2e} "
                      f"(||L rho||/||rho|| {lam:.2e}) | - | {time.perf_counter() - t0:.1f} |", flush=True)
                continue
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
