"""Benchmark of method='trajectories' (issue 6), BLAS pinned to one thread.

Problem: dipolar chain at the magic angle, spacing 0.1 lambda, W = 2 (Gamma = 1),
from the ground state; steady state = average over trajectories and over
t_burn <= t <= t_burn + t_avg (samples every 0.2).

1. N = 12, quantum jumps: wall time of ``ntraj`` trajectories on ``workers`` local
   processes (target: 200 trajectories <= 10 min on 2 cores). With ``--ntraj-12``
   smaller than 200 the time is extrapolated linearly and marked so.
2. N = 16 (Fig. S3 size): a few jump trajectories, seconds per trajectory.
3. N = 8, same problem, the same number of jump trajectories over the same time
   span with QuTiP 5 ``mcsolve`` (serial map) and with mpsync (workers=1): ratio.
4. N = 8 quantum state diffusion (Euler-Maruyama, dt = 1e-3): seconds per trajectory.
5. Fig. 2(c,d) check (N = 8 all-to-all, f_eff = 7): conditional QFI vs W for the three
   unravellings (diffusive ones Talay-Tubaro extrapolated, dt = 2e-3) next to the unconditional
   one (exact density matrix) and 2N/3; F(t) of single trajectories.

Usage::

    python benchmarks/bench_trajectories.py [--ntraj-12 200] [--ntraj-16 2] [--ntraj-8 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from mpsync.model import DipoleSystem  # noqa: E402
from mpsync.paper import studies  # noqa: E402
from mpsync.solvers import trajectories as tr  # noqa: E402

T_BURN, T_AVG, SAMPLE_DT = 20.0, 40.0, 0.2


def chain(n):
    return DipoleSystem.chain(n, 0.1, "magic", W=2.0)


def run_mpsync(n, ntraj, workers, unravelling="jumps", dt=None, seed=1):
    t0 = time.perf_counter()
    ss = tr.steady_state(chain(n), ntraj=ntraj, t_burn=T_BURN, t_avg=T_AVG, sample_dt=SAMPLE_DT,
                         seed=seed, workers=workers, unravelling=unravelling, dt=dt)
    return time.perf_counter() - t0, ss


def run_mcsolve(n, ntraj, seed=1):
    import qutip as qt

    s = chain(n)
    sm = [qt.tensor([qt.destroy(2) if b == a else qt.qeye(2) for b in range(n)]) for a in range(n)]
    sp = [x.dag() for x in sm]
    H = sum(0.5 * s.g[a, b] * sp[a] * sm[b] for a in range(n) for b in range(n) if a != b)
    lam, V = np.linalg.eigh(s.f)
    c_ops = [np.sqrt(l) * sum(V[b, k] * sm[b] for b in range(n)) for k, l in enumerate(lam) if l > 1e-12 * lam.max()]
    c_ops += [np.sqrt(s.W) * x for x in sp]
    psi0 = qt.tensor([qt.basis(2, 0)] * n)  # destroy(2) annihilates basis(2, 0): the ground state
    tlist = np.arange(0.0, T_BURN + T_AVG + 1e-9, SAMPLE_DT)
    e_ops = [2 * sp[a] * sm[a] - 1 for a in range(n)]
    t0 = time.perf_counter()
    res = qt.mcsolve(H, psi0, tlist, c_ops, e_ops=e_ops, ntraj=ntraj, seeds=seed,
                     options={"map": "serial", "progress_bar": False})
    sec = time.perf_counter() - t0
    burn = tlist >= T_BURN
    sz = np.array([np.mean(np.real(e)[burn]) for e in res.expect])
    return sec, sz


def fig2(workers, n=8, f_eff=7.0, W_values=(1.0, 3.0, 5.0, 10.0)):
    """Fig. 2(c,d) check: all-to-all f = f_eff / N, delta = g = 0, three unravellings.

    The conditional QFI depends on the unravelling (what is measured); the
    unconditional one (exact density matrix) does not.
    """
    s = DipoleSystem.all_to_all(n, f_eff=f_eff, W=1.0)
    rows = []
    res = {}
    for unr in ("diffusion", "homodyne", "jumps"):
        t0 = time.perf_counter()
        res[unr] = studies.conditional_qfi(s, W_values, ntraj=8, t_burn=8.0, t_avg=12.0, dt=2e-3, seed=1,
                                           workers=workers, unravelling=unr,
                                           unconditional="exact" if unr == "diffusion" else None)
        res[unr]["sec"] = time.perf_counter() - t0
    d = res["diffusion"]
    for i, W in enumerate(d["W"]):
        cells = "; ".join(f"{u} {res[u]['conditional'][i]:.3f} +- {res[u]['conditional_error'][i]:.3f}"
                          for u in res)
        rows.append((f"Fig. 2(d) N={n} all-to-all f_eff={f_eff:g}, W={W:g} (8 traj, t=8+12)",
                     ", ".join(f"{res[u]['sec'] / len(W_values):.1f}" for u in res) + " s",
                     f"conditional F: {cells}; unconditional (exact) F = {d['unconditional'][i]:.3f}; "
                     f"2N/3 = {d['threshold']:.3f}"))
    for unr in ("diffusion", "jumps"):
        t0 = time.perf_counter()
        q = studies.qfi_vs_time(s.replace(W=5.0), np.linspace(0.0, 10.0, 41), ntraj=4, dt=2e-3, seed=2,
                                workers=workers, unravelling=unr)
        late = q["times"] >= 3.0
        rows.append((f"Fig. 2(c) N={n}, W=5: F(t) of 4 {unr} trajectories, t <= 10",
                     f"{time.perf_counter() - t0:.1f} s",
                     f"one trajectory: mean {q['trajectories'][0][late].mean():.3f}, max "
                     f"{q['trajectories'][0].max():.3f}; mean of 4 over t >= 3: {q['mean'][late].mean():.3f}"))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ntraj-12", type=int, default=200)
    ap.add_argument("--ntraj-16", type=int, default=2)
    ap.add_argument("--ntraj-8", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip", default="", help="comma list of parts to skip: 12,16,8,qsd,fig2")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    rows = []
    with threadpool_limits(1):
        if "12" not in skip:
            sec, ss = run_mpsync(12, args.ntraj_12, args.workers)
            extra = 200 / args.ntraj_12
            note = "" if args.ntraj_12 == 200 else f" (measured {args.ntraj_12}, x{extra:.3g} extrapolated)"
            rows.append((f"N=12 jumps, 200 traj, t={T_BURN:g}+{T_AVG:g}, {args.workers} workers",
                         f"{sec * extra:.1f} s{note}; CPU {ss.diagnostics['cpu_seconds_per_trajectory']:.2f} "
                         f"s/traj, i.e. {ss.diagnostics['cpu_seconds_per_trajectory'] * 200 / args.workers:.0f} s "
                         f"on {args.workers} idle cores",
                         f"ZQ2 = {ss.ZQ2:.4g} +- {ss.errors['ZQ2']:.2g}, <sz> = {np.mean(ss.sz):.4f}, "
                         f"{ss.diagnostics['mean_jumps']:.0f} jumps/traj"))
        if "16" not in skip:
            sec, ss = run_mpsync(16, args.ntraj_16, min(args.workers, args.ntraj_16))
            rows.append((f"N=16 jumps, {args.ntraj_16} traj, t={T_BURN:g}+{T_AVG:g}, "
                         f"{min(args.workers, args.ntraj_16)} workers",
                         f"{sec:.1f} s (CPU {ss.diagnostics['cpu_seconds_per_trajectory']:.1f} s/traj)",
                         f"ZQ2 = {ss.ZQ2:.4g}, <sz> = {np.mean(ss.sz):.4f}, "
                         f"{ss.diagnostics['mean_jumps']:.0f} jumps/traj"))
        if "8" not in skip:
            sec_m, ss = run_mpsync(8, args.ntraj_8, 1)
            sec_q, sz_q = run_mcsolve(8, args.ntraj_8)
            rows.append((f"N=8 jumps, {args.ntraj_8} traj, 1 process: mpsync", f"{sec_m:.2f} s",
                         f"<sz> = {np.mean(ss.sz):.4f} +- {np.mean(ss.errors['sz']):.2g}"))
            rows.append((f"N=8, {args.ntraj_8} traj, 1 process: QuTiP mcsolve", f"{sec_q:.2f} s",
                         f"<sz> = {np.mean(sz_q):.4f}; ratio QuTiP/mpsync = {sec_q / sec_m:.1f}x"))
        if "qsd" not in skip:
            sec, ss = run_mpsync(8, 2, 1, unravelling="diffusion", dt=1e-3)
            rows.append(("N=8 diffusion (QSD, Euler-Maruyama dt=1e-3), 2 traj, 1 process", f"{sec:.1f} s",
                         f"{sec / 2:.1f} s/traj; conditional QFI = {ss.extras['qfi_conditional']:.3f} "
                         f"(2N/3 = {16 / 3:.3f})"))
        if "fig2" not in skip:
            rows += fig2(args.workers)
    print(f"commit {commit}, BLAS threads 1, workers {args.workers}, {time.strftime('%Y-%m-%d')}\n")
    print("| case | wall time | result |")
    print("|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
