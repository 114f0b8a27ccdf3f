"""Benchmark: exact steady state (balanced U(1) sector) vs QuTiP 5 ``steadystate``.

Dipolar chain at the magic angle, spacing 0.1 lambda, W = 2 (Gamma = 1), N = 5..10,
BLAS pinned to one thread with threadpoolctl. QuTiP's ``steadystate`` (default
direct method) runs on the same Liouvillian (checked entry by entry against
``mpsync.solvers.exact.liouvillian``) for N <= 7; N = 8 takes over 20 minutes.

Usage::

    python benchmarks/bench_exact.py              # N = 5..10, QuTiP at 5, 6, 7
    python benchmarks/bench_exact.py --nmax 8 --qutip-nmax 6
    python benchmarks/bench_exact.py --n 13 --memory             # issue 21: time and peak RSS
    python benchmarks/bench_exact.py --n 9 10 11 12 --memory     # estimate vs measured peak
    python benchmarks/bench_exact.py --n 14 --memory --cap-gib 19 --spacing 0.1 --W 2
    python benchmarks/bench_exact.py --n 14 --memory --spacing 0.05 --theta 0.35 --save states/
    python benchmarks/bench_exact.py --n 13 14 --memory --f-eff 6 --W 3   # vs permutational
    python benchmarks/bench_exact.py --n 10 11 13 --evolve 1        # evolve to t = 1 (5 times)

With ``--memory`` every N runs in its own subprocess (its peak RSS, ``ru_maxrss``, is
that solve's alone) under an address-space limit of ``--cap-gib`` GiB (RLIMIT_AS), and the
table gives time, peak RSS, ``exact.estimate_memory`` and the GMRES figures.

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from mpsync import DipoleSystem  # noqa: E402
from mpsync.channels import SM, SZ  # noqa: E402
from mpsync.solvers import exact  # noqa: E402


def qutip_liouvillian(system):
    """QuTiP superoperator of the same master equation (jumps from f = V diag(l) V^T)."""
    import qutip

    n = system.n

    def op(single, a):
        ops = [qutip.qeye(2)] * n
        ops[a] = qutip.Qobj(single)
        return qutip.tensor(ops)

    sm = [op(SM, a) for a in range(n)]
    H = 0 * op(SZ, 0)
    for a in range(n):
        H += 0.5 * system.delta[a] * op(SZ, a)
        for b in range(n):
            if a != b:
                H += 0.5 * system.g[a, b] * sm[a].dag() * sm[b]
    lam, vec = np.linalg.eigh(system.f)
    c_ops = [np.sqrt(lk) * sum(vec[b, k] * sm[b] for b in range(n))
             for k, lk in enumerate(lam) if lk > 1e-13]
    c_ops += [np.sqrt(system.W) * sm[a].dag() for a in range(n)]
    return qutip.liouvillian(H, c_ops)


def best_of(fn, repeat):
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _system(n, spacing, W, theta, f_eff=None):
    """The benchmark's system: a chain, or with ``f_eff`` the all-to-all ensemble."""
    if f_eff is not None:
        return DipoleSystem.all_to_all(n, f_eff=f_eff, W=W)
    return DipoleSystem.chain(n, spacing, theta, W=W)


def _memory_worker(n, spacing, W, theta, restart, cap_gib, krylov="gmres", f_eff=None, save=None):
    """One steady state in this process (run as a subprocess); prints a JSON line.

    With ``f_eff`` (all-to-all) the permutational solver's steady state is computed after the
    exact one and the largest differences of C_ab and Z_Q are reported. With ``save`` the exact
    steady state is written to ``save`` (``SteadyState.save``) for later comparisons (the MPO).
    """
    _limit_address_space(cap_gib)
    threadpool_limits(1)
    s = _system(n, spacing, W, theta, f_eff)
    t = time.perf_counter()
    ss = exact.steady_state(s, restart=restart, krylov=krylov)
    secs = time.perf_counter() - t
    d = ss.diagnostics
    mirror = bool(d.get("mirror"))
    out = {"n": n, "seconds": secs, "peak_rss": _peak_rss(), "iterations": d.get("iterations"),
           "restart": d.get("restart"), "residual": d["residual"], "mirror": mirror,
           "krylov": d.get("krylov"), "matvecs": d.get("matvecs"),
           "estimate": exact.estimate_memory(n, restart=d.get("restart"), mirror=mirror,
                                             krylov=d.get("krylov", "gmres")),
           "C01": float(ss.correlations[0, 1].real), "sz0": float(ss.sz[0]), "ZQ": float(ss.ZQ)}
    if save:
        ss.save(save)
    if f_eff is not None:
        from mpsync.solvers import permutational

        ref = permutational.steady_state(s)
        out["perm_dC"] = float(np.abs(ss.correlations - ref.correlations).max())
        out["perm_dZQ"] = float(abs(ss.ZQ - ref.ZQ))
        out["perm_dsz"] = float(np.abs(ss.sz - ref.sz).max())
    print(json.dumps(out), flush=True)


def _limit_address_space(cap_gib):
    """Cap this process's address space at ``cap_gib`` GiB (none when falsy)."""
    import resource

    if cap_gib:
        cap = int(cap_gib * 1024 ** 3)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def _peak_rss():
    """This process's peak RSS in bytes (VmHWM where there is one: ru_maxrss may count pre-exec pages)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:")]
    return min(peak, int(hwm[0].split()[1]) * 1024) if hwm else peak


def _evolve_worker(n, spacing, W, theta, t_end, cap_gib, f_eff=None):
    """One ``exact.evolve`` from all down to ``t_end`` (5 output times) in this process; a JSON line."""
    _limit_address_space(cap_gib)
    threadpool_limits(1)
    s = _system(n, spacing, W, theta, f_eff)
    t = time.perf_counter()
    ts = exact.evolve(s, np.linspace(0.0, t_end, 5))
    secs = time.perf_counter() - t
    d = ts.diagnostics
    print(json.dumps({"n": n, "seconds": secs, "peak_rss": _peak_rss(), "estimate": exact.evolve_memory(s),
                      "operator": d["operator"], "mirror": bool(d.get("mirror")),
                      "matvecs": d.get("matvecs"), "dimension": d["dimension"],
                      "ZQ": float(ts.ZQ[-1]), "sz0": float(ts.sz[-1][0])}), flush=True)


def _header(spacing, W, theta, f_eff, extra=""):
    """The table's first line: commit, date, BLAS threads and the system."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    what = (f"all-to-all f_eff = {f_eff}" if f_eff is not None
            else f"chain theta {theta}, spacing {spacing}")
    print(f"commit {commit} (+ working tree), {time.strftime('%Y-%m-%d')}, BLAS threads 1, {what}, "
          f"W = {W}{extra}\n")


def _run_worker(cmd, n):
    """Run one worker subprocess (BLAS pinned); its JSON line as a dict, or None after a failed row."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    run = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = [ln for ln in run.stdout.splitlines() if ln.startswith("{")]
    if run.returncode or not line:
        print(f"| {n} | failed (rc {run.returncode}): {run.stderr.strip().splitlines()[-1:]} |", flush=True)
        return None
    return json.loads(line[-1])


def evolve_table(ns, spacing, W, theta, t_end, cap_gib, f_eff=None):
    """Time and peak RSS of ``exact.evolve`` (operator="auto"), each N in a fresh subprocess."""
    _header(spacing, W, theta, f_eff,
            f", evolve from all down to t = {t_end} (5 output times), address-space cap {cap_gib} GiB")
    print("| N | operator | vector length | seconds | peak RSS (GB) | estimate (GB) | estimate / peak "
          "| matvecs | Z_Q(t) | <sz_0>(t) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in ns:
        cmd = [sys.executable, __file__, "--evolve-worker", str(n), "--spacing", str(spacing), "--W", str(W),
               "--theta", str(theta), "--cap-gib", str(cap_gib), "--evolve", str(t_end)]
        if f_eff is not None:
            cmd += ["--f-eff", str(f_eff)]
        r = _run_worker(cmd, n)
        if r is None:
            continue
        op = r["operator"] + (" (mirror)" if r["mirror"] else "")
        print(f"| {n} | {op} | {r['dimension']} | {r['seconds']:.1f} | {r['peak_rss'] / 1e9:.2f} "
              f"| {r['estimate'] / 1e9:.2f} | {r['estimate'] / r['peak_rss']:.2f} | {r['matvecs']} "
              f"| {r['ZQ']:.10f} | {r['sz0']:.10f} |", flush=True)


def memory_table(ns, spacing, W, theta, restart, cap_gib, krylov="gmres", f_eff=None, save=None):
    """Time, peak RSS and the estimate, each N in a fresh subprocess (benchmarks/RESULTS.md, issue 21).

    ``save`` is a directory: each N's exact steady state is written there as ``exact_n{N}.npz``.
    """
    _header(spacing, W, theta, f_eff, f", address-space cap {cap_gib} GiB")
    perm = " | max dC vs permutational | dZ_Q vs permutational" if f_eff is not None else ""
    print("| N | krylov | seconds | peak RSS (GB) | estimate (GB) | estimate / peak | iterations (restart) "
          f"| matvecs | residual | C_01 | Z_Q{perm} |")
    print("|---|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if perm else ""))
    for n in ns:
        cmd = [sys.executable, __file__, "--worker", str(n), "--spacing", str(spacing), "--W", str(W),
               "--theta", str(theta), "--cap-gib", str(cap_gib), "--krylov", krylov]
        if restart:
            cmd += ["--restart", str(restart)]
        if f_eff is not None:
            cmd += ["--f-eff", str(f_eff)]
        if save:
            os.makedirs(save, exist_ok=True)
            cmd += ["--save", os.path.join(save, f"exact_n{n}.npz")]
        r = _run_worker(cmd, n)
        if r is None:
            continue
        rs = f" ({r['restart']})" if r["restart"] else ""
        print(f"| {n} | {r['krylov']} | {r['seconds']:.1f} | {r['peak_rss'] / 1e9:.2f} | {r['estimate'] / 1e9:.2f} "
              f"| {r['estimate'] / r['peak_rss']:.2f} | {r['iterations']}{rs} | {r['matvecs']} "
              f"| {r['residual']:.1e} | {r['C01']:.12f} | {r['ZQ']:.10f} |"
              + (f" {r['perm_dC']:.1e} | {r['perm_dZQ']:.1e} |" if "perm_dC" in r else ""), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", help="with --memory: the N to run")
    ap.add_argument("--memory", action="store_true",
                    help="time and peak RSS of each N in its own subprocess, against the estimate")
    ap.add_argument("--cap-gib", type=float, default=19.0, help="address-space limit of each subprocess")
    ap.add_argument("--spacing", type=float, default=0.1)
    ap.add_argument("--W", type=float, default=2.0)
    ap.add_argument("--theta", default="magic")
    ap.add_argument("--restart", type=int, default=None, help="GMRES restart (default: the solver's)")
    ap.add_argument("--krylov", default="gmres", choices=["gmres", "bicgstab"])
    ap.add_argument("--f-eff", type=float, default=None,
                    help="with --memory: the all-to-all ensemble with this f_eff instead of the chain, "
                         "checked against the permutational solver")
    ap.add_argument("--save", default=None,
                    help="with --memory: a directory; each N's exact steady state is saved there")
    ap.add_argument("--evolve", type=float, default=None, metavar="T",
                    help="time and peak RSS of exact.evolve to t = T for each --n instead of the steady state")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--evolve-worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--nmin", type=int, default=5)
    ap.add_argument("--nmax", type=int, default=10)
    ap.add_argument("--qutip-nmax", type=int, default=7)
    ap.add_argument("--direct-nmax", type=int, default=7,
                    help="also time solver='direct' (sparse LU) up to this N")
    args = ap.parse_args(argv)
    theta = args.theta if args.theta == "magic" else float(args.theta)
    if args.worker is not None:
        return _memory_worker(args.worker, args.spacing, args.W, theta, args.restart, args.cap_gib,
                              args.krylov, args.f_eff, args.save)
    if args.evolve_worker is not None:
        return _evolve_worker(args.evolve_worker, args.spacing, args.W, theta, args.evolve, args.cap_gib,
                              args.f_eff)
    if args.evolve is not None:
        return evolve_table(args.n or [10, 11], args.spacing, args.W, theta, args.evolve, args.cap_gib,
                            args.f_eff)
    if args.memory:
        return memory_table(args.n or [9, 10, 11, 12], args.spacing, args.W, theta, args.restart,
                            args.cap_gib, args.krylov, args.f_eff, args.save)
    threadpool_limits(1)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"commit {commit}, BLAS threads 1, dipolar chain magic angle, spacing 0.1, W = 2\n")
    print("| N | sector size | exact (s) | solver | GMRES its | residual | exact direct LU (s) "
          "| QuTiP steadystate (s) | QuTiP / exact | max abs diff of C_ab |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in range(args.nmin, args.nmax + 1):
        s = DipoleSystem.chain(n, 0.1, "magic", W=2.0)
        secs, ss = best_of(lambda: exact.steady_state(s), 3 if n <= 8 else 1)
        d = ss.diagnostics
        direct = "-"
        if n <= args.direct_nmax:
            t_dir, ss_dir = best_of(lambda: exact.steady_state(s, solver="direct"), 1)
            direct = f"{t_dir:.3g}"
        q_secs, ratio, diff = "-", "-", "-"
        if n <= args.qutip_nmax:
            import qutip

            Lq = qutip_liouvillian(s)
            # same Liouvillian: QuTiP stacks columns, our ket_bra order is row-major
            dim = 2 ** n
            idx = np.arange(dim * dim)
            perm = (idx % dim) * dim + idx // dim
            ours = exact.liouvillian(s, ordering="ket_bra")
            ref = Lq.to("csr").data.as_scipy().tocsr()[perm][:, perm]
            assert abs(ours - ref).max() < 1e-12
            tq, rho_q = best_of(lambda: qutip.steadystate(Lq), 3 if n <= 6 else 1)
            mq = exact.full_moments(rho_q.full())
            q_secs, ratio = f"{tq:.3g}", f"{tq / secs:.3g}"
            diff = f"{np.abs(mq.correlations - ss.correlations).max():.1e}"
        print(f"| {n} | {d['sector_size']} | {secs:.3g} | {d['solver']} | {d.get('iterations', '-')} "
              f"| {d['residual']:.1e} | {direct} | {q_secs} | {ratio} | {diff} |", flush=True)


if __name__ == "__main__":
    main()
