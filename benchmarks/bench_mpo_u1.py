"""What U(1) block sparsity would save in the MPO solver's hot contractions.

The Liouvillian conserves ``n_ket - n_bra`` (pump, decay, exchange: ``docs/physics.md``),
so the vectorised steady state lies in its charge-0 sector: with the site charge
``q(s = 2 i + j) = i - j`` every MPS bond and every MPO bond can be labelled by a
charge, and every tensor is block-sparse. This benchmark measures what that buys
before anything is built on it:

1. It takes a real steady state (magic-angle chain, spacing 0.1, W = 2, N = 20, one
   dense rung at ``--chi``) and the real Liouvillian MPO, fixes the gauge of every
   bond so that each basis vector has a definite charge (``mpsync.solvers.mpo.u1.
   charge_gauge``: the right charge operator diagonalised in the right-canonical
   basis; the MPO is treated the same way as an MPS of the 16-dimensional operator
   space), and reports the sector sizes and how far the tensors are from exact block
   sparsity (what the dense truncation leaks).
2. It times the contractions that dominate a TDVP sweep (one- and two-site effective
   generator applied to a block, environment update), dense (numpy, the code the
   solver runs) against U(1) block-sparse (``symmray.U1Array``, through the same
   autoray calls), at the state's bond dimension and at a doubled one (sector sizes
   scaled by 2, random blocks).

Run: ``python benchmarks/bench_mpo_u1.py [--n 20] [--chi 64] [--repeat 5]``
(needs ``pip install symmray``; the solver itself does not). BLAS threads are pinned
to 1 before numpy loads. Results go to RESULTS.md by hand, with date, machine and commit.
"""
import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from autoray import do  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from mpsync.model import DipoleSystem  # noqa: E402
from mpsync.solvers import steady_state  # noqa: E402
from mpsync.solvers.mpo import from_quimb  # noqa: E402
from mpsync.solvers.mpo.prepare import build_mpo  # noqa: E402
from mpsync.solvers.mpo import u1  # noqa: E402
from mpsync.solvers.mpo.tdvp import (_apply1, _apply2, _update_left, _update_right,  # noqa: E402
                                     right_canonicalize)
from mpsync.solvers.mpo.u1 import Q_OP, Q_SITE  # noqa: E402

MAGIC = float(np.arccos(1 / np.sqrt(3)))


def _mps_gauge(mps):
    """Dense MPS tensors in the solver's charge gauge and their bond charges."""
    A, charges, leak = u1.charge_gauge(right_canonicalize([np.asarray(x) for x in mps]), Q_SITE)
    return A, charges, leak


def _mpo_gauge(mpo):
    """The MPO ``[(wl, wr, s, t)]`` in a charge gauge, via the MPS of its operator space."""
    as_mps = [np.transpose(M, (0, 2, 3, 1)).reshape(M.shape[0], 16, M.shape[1]) for M in mpo]
    B, charges, leak = u1.charge_gauge(u1.right_canonical_svd(as_mps), Q_OP)
    out = [np.transpose(b.reshape(b.shape[0], 4, 4, b.shape[2]), (0, 3, 1, 2)) for b in B]
    return out, charges, leak


def _off_block_weight(x, maps, duals):
    """Relative Frobenius weight of ``x`` outside the charge-conserving blocks."""
    grids = np.meshgrid(*[np.asarray(m) for m in maps], indexing="ij")
    total = sum(-g if d else g for g, d in zip(grids, duals))
    return float(np.linalg.norm(x[total != 0]) / max(np.linalg.norm(x), 1e-300))


def _u1(x, maps, duals):
    import symmray as sr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sr.U1Array.from_dense(x, index_maps=[list(map(int, m)) for m in maps], duals=duals,
                                     charge=0, invalid_sectors="ignore", tol=0.0)


def _time(fn, repeat):
    fn()
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _sizes(charges):
    qs, counts = np.unique(charges, return_counts=True)
    return ", ".join(f"{q:+d}:{c}" for q, c in zip(qs, counts))


def _scaled(charges, k):
    """Bond charges with every sector k times larger."""
    return np.repeat(np.asarray(charges), k)


def _random_case(qa, qw, qb, qv, rng):
    """Random block-sparse operands at given bond charges (for the doubled-chi timing)."""
    def rnd(shape):
        return rng.normal(size=shape) + 1j * rng.normal(size=shape)

    A = rnd((len(qa), 4, len(qb)))
    B = rnd((len(qb), 4, len(qa)))
    M = rnd((len(qw), len(qv), 4, 4))
    LE = rnd((len(qa), len(qw), len(qa)))
    RE = rnd((len(qa), len(qv), len(qa)))
    # zero the forbidden entries so the dense and block versions are the same operator
    A *= _mask([qa, Q_SITE, qb], DUALS["A"])
    B *= _mask([qb, Q_SITE, qa], DUALS["A"])
    M *= _mask([qw, qv, Q_SITE, Q_SITE], DUALS["M"])
    LE *= _mask([qa, qw, qa], DUALS["LE"])
    RE *= _mask([qa, qv, qa], DUALS["RE"])
    return A, B, M, LE, RE


def _mask(maps, duals):
    grids = np.meshgrid(*[np.asarray(m) for m in maps], indexing="ij")
    return (sum(-g if d else g for g, d in zip(grids, duals)) == 0).astype(float)


DUALS = {"A": (False, False, True), "M": (False, True, False, True),
         # environments: (bra bond, MPO bond, ket bond); contracted legs have opposite duals
         "LE": (False, True, True), "RE": (True, False, False)}


def _compare(label, LE, A, B, M1, M2, RE, maps, repeat):
    """Time the hot contractions dense vs block-sparse; returns table rows and the
    relative difference of one two-site application (the block form must be the same
    operator)."""
    qa, qb, qc, qw, qv, qu = maps
    sA = _u1(A, [qa, Q_SITE, qb], DUALS["A"])
    sB = _u1(B, [qb, Q_SITE, qc], DUALS["A"])
    sM1 = _u1(M1, [qw, qv, Q_SITE, Q_SITE], DUALS["M"])
    sM2 = _u1(M2, [qv, qu, Q_SITE, Q_SITE], DUALS["M"])
    sLE = _u1(LE, [qa, qw, qa], DUALS["LE"])
    sRE = _u1(RE, [qc, qu, qc], DUALS["RE"])
    REb, sREb = _update_right(RE, B, M2), _update_right(sRE, sB, sM2)   # right env at bond qb
    theta = np.tensordot(A, B, axes=([2], [0]))
    s_theta = do("tensordot", sA, sB, axes=([2], [0]))
    ref = _apply2(LE, M1, M2, RE, theta)
    got = _apply2(sLE, sM1, sM2, sRE, s_theta).to_dense(
        index_maps=[list(map(int, m)) for m in (qa, Q_SITE, Q_SITE, qc)])
    err = float(np.linalg.norm(ref - got) / max(np.linalg.norm(ref), 1e-300))
    rows = []
    for name, dense, block in [
        ("apply1", lambda: _apply1(LE, M1, REb, A), lambda: _apply1(sLE, sM1, sREb, sA)),
        ("apply2", lambda: _apply2(LE, M1, M2, RE, theta), lambda: _apply2(sLE, sM1, sM2, sRE, s_theta)),
        ("update_left", lambda: _update_left(LE, A, M1), lambda: _update_left(sLE, sA, sM1)),
        ("update_right", lambda: _update_right(RE, B, M2), lambda: _update_right(sRE, sB, sM2)),
    ]:
        td, tb = _time(dense, repeat), _time(block, repeat)
        rows.append((label, name, td, tb, td / tb))
    return rows, err


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--chi", type=int, default=64, help="bond dimension of the state (one rung)")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    import symmray

    with threadpool_limits(1):
        system = DipoleSystem.chain(args.n, 0.1, MAGIC, W=2.0)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = steady_state(system, method="mpo", max_bond=args.chi, progress=False, symmetry="none")
        print(f"state: N = {args.n}, max_bond {args.chi}, Z_Q = {float(res.ZQ):.5f} "
              f"({time.perf_counter() - t0:.0f} s)")
        mps, mps_q, leak_s = _mps_gauge(from_quimb(res.state))
        mpo, _ = build_mpo(system, mpo_cutoff=1e-6)
        mpo = [np.asarray(M) for M in mpo]
        mpo, mpo_q, leak_o = _mpo_gauge(mpo)
        off_s = max(_off_block_weight(A, [mps_q[a], Q_SITE, mps_q[a + 1]], (False, False, True))
                    for a, A in enumerate(mps))
        off_o = max(_off_block_weight(M, [mpo_q[a], mpo_q[a + 1], Q_SITE, Q_SITE], (False, True, False, True))
                    for a, M in enumerate(mpo))
        c = args.n // 2
        print(f"MPS bond {c}: dim {len(mps_q[c])}, sectors {_sizes(mps_q[c])}; "
              f"largest Q_L distance from an integer {leak_s:.1e}; weight off the blocks {off_s:.1e}")
        print(f"MPO bond {c}: dim {len(mpo_q[c])}, sectors {_sizes(mpo_q[c])}; "
              f"largest distance from an integer {leak_o:.1e}; weight off the blocks {off_o:.1e}")
        # environments of the centre, built dense from the gauge-fixed tensors
        LE = np.ones((1, 1, 1), complex)
        for a in range(c - 1):
            LE = _update_left(LE, mps[a], mpo[a])
        RE = np.ones((1, 1, 1), complex)
        for a in range(args.n - 1, c, -1):
            RE = _update_right(RE, mps[a], mpo[a])
        maps = (mps_q[c - 1], mps_q[c], mps_q[c + 1], mpo_q[c - 1], mpo_q[c], mpo_q[c + 1])
        rows, err = _compare(f"chi={len(mps_q[c])}", LE, mps[c - 1], mps[c], mpo[c - 1], mpo[c], RE, maps,
                             args.repeat)
        print(f"block form vs dense, two-site generator on the real state: relative difference {err:.1e}")
        rng = np.random.default_rng(0)
        qa2, qb2, qw2 = _scaled(mps_q[c], 2), _scaled(mps_q[c], 2), mpo_q[c]
        A, B, M, LE2, RE2 = _random_case(qa2, qw2, qb2, qw2, rng)
        rows2, _ = _compare(f"chi={len(qa2)} (sectors x2)", LE2, A, B, M, M, RE2,
                            (qa2, qb2, qa2, qw2, qw2, qw2), args.repeat)
        rows += rows2
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"\n{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, 1 BLAS thread, "
          f"commit {commit}, symmray {symmray.__version__}")
    print("| bond | contraction | dense (ms) | U(1) blocks (ms) | speedup |")
    print("|---|---|---|---|---|")
    for label, name, td, tb, r in rows:
        print(f"| {label} | {name} | {1e3 * td:.2f} | {1e3 * tb:.2f} | {r:.2f}x |")


if __name__ == "__main__":
    main()
