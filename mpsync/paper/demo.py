"""``mpsync demo``: Fig. S3 of the seed paper in miniature.

A dipolar chain at the magic angle theta_m = arccos(1/sqrt 3) (full dipolar f
and g, spacing 0.05 lambda) against the all-to-all ensemble with the same
f_eff = sum_{a != b} f_ab / (N - 1), f_ab = f_eff / N and g = 0. Both steady
states of the master equation are swept over the pump W (units of Gamma = 1)
and compared through the synchronization order parameter
Z_Q = sqrt(mean_{a != b} Re <s+_a s-_b>) (maximum 1/sqrt 8).

The paper's statement checked here: the capability to synchronize is set by
f_eff, so the two curves have the same shape, with the chain's Z_Q smaller
because of the elastic couplings g.

Solvers: the chain uses ``method="mpo"`` (the exact solver with ``quick``, or
if the MPO run fails) and the ensemble ``method="permutational"`` (the printout
says which ran).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

__all__ = ["run"]

#: Run the chain with the MPO solver in the full demo.
USE_MPO = True
#: N = 8 keeps the MPO chain (default bond-dimension ladder, each Z_Q with its error bar) within
#: the demo's minute: 44 s for the whole demo on 2 cores with another job running (N = 10: 131 s).
MPO_N = 8
MPO_OPTIONS = {"zq_tol": 1e-3}   # the default bond-dimension ladder, with its error bar


def _plan(quick: bool):
    """(chain n, chain method, chain options, ensemble method, W grid factors)."""
    if USE_MPO and not quick:
        chain = (MPO_N, "mpo", dict(MPO_OPTIONS))
    else:
        chain = (6 if quick else 8, "exact", {})
    ens_method = "permutational"
    npts = 7 if quick else 9
    return chain, ens_method, np.geomspace(0.1, 2.0, npts)


def run(out_dir=".", quick: bool = False, progress: bool = True) -> dict:
    """Run the demo: print a table of Z_Q vs W and save a PNG.

    Parameters
    ----------
    out_dir : str or Path
        Where ``demo_S3.png`` and ``demo_S3.csv`` are written.
    quick : bool
        Smaller chain and fewer pump values (a few seconds).
    progress : bool
        Progress bars of the two sweeps.

    Returns
    -------
    dict
        ``png``, ``csv`` (paths), ``W``, ``ZQ_chain``, ``ZQ_all_to_all`` (arrays),
        ``f_eff``, ``n``, ``methods`` (chain, ensemble), ``seconds``, ``checks``
        (list of (description, passed, detail)).
    """
    from ..model import DipoleSystem
    from ..observables import ZQ_MAX
    from ..sweeps import sweep

    t0 = time.perf_counter()
    out_dir = Path(out_dir if out_dir is not None else ".")
    out_dir.mkdir(parents=True, exist_ok=True)
    (n, chain_method, chain_opts), ens_method, factors = _plan(quick)
    spacing = 0.05
    f_eff = DipoleSystem.chain(n, spacing, "magic", W=1.0).f_eff
    W = [float(x) for x in np.round(factors * f_eff, 6)]
    fell_back = []
    if chain_method == "mpo":
        fell_back.append(f"chain: MPO (TDVP) with {chain_opts}; N = {n} keeps the demo within two minutes")
    print(f"mpsync demo: Fig. S3 in miniature, N = {n}, chain at the magic angle, spacing "
          f"{spacing} lambda, f_eff = {f_eff:.4f} Gamma")
    print(f"  chain: method={chain_method!r}; all-to-all (same f_eff, g = 0): method={ens_method!r}")
    for msg in fell_back:
        print(f"  note: {msg}")
    workers = 1 if quick else None
    chain_base = dict(model="chain", n=n, spacing=spacing, theta="magic", W=1.0)
    try:
        ds_c = sweep(chain_base, {"W": W}, method=chain_method, solver_options=chain_opts,
                     progress=progress, workers=workers)
    except Exception as exc:  # noqa: BLE001 - the demo must run; say what happened
        if chain_method == "exact":
            raise
        print(f"  note: the {chain_method} solver failed ({type(exc).__name__}: {exc}); "
              "falling back to the exact solver")
        chain_method = "exact"
        ds_c = sweep(chain_base, {"W": W}, method="exact", progress=progress, workers=workers)
    ds_a = sweep(dict(model="all_to_all", n=n, f_eff=f_eff, W=1.0), {"W": W}, method=ens_method,
                 progress=progress, workers=workers)
    zc, za = ds_c.ZQ.values, ds_a.ZQ.values
    err = ds_c.ZQ_err.values if "ZQ_err" in ds_c else np.full(len(W), np.nan)
    print(f"\n{'W':>9} {'W/f_eff':>8} {'Z_Q chain':>10} {'+-':>8} {'Z_Q all2all':>12} {'ratio':>7}")
    for w, zc_, e_, za_ in zip(W, zc, err, za):
        ratio = zc_ / za_ if za_ > 0 else float("nan")
        print(f"{w:9.4g} {w / f_eff:8.3f} {zc_:10.5f} {e_:8.1e} {za_:12.5f} {ratio:7.3f}")

    ic, ia = int(np.argmax(zc)), int(np.argmax(za))
    checks = [
        ("chain and all-to-all peak at the same W within one grid step",
         abs(ic - ia) <= 1, f"argmax W chain {W[ic]:.3g}, all-to-all {W[ia]:.3g}"),
        ("the chain's Z_Q is at most the all-to-all Z_Q (elastic g desynchronizes)",
         bool(np.max(zc) <= np.max(za) + 1e-9), f"max {np.max(zc):.4f} vs {np.max(za):.4f}"),
        ("Z_Q <= Z_Q^max = 1/sqrt(8)", bool(max(np.max(zc), np.max(za)) <= ZQ_MAX + 1e-12),
         f"max Z_Q {max(np.max(zc), np.max(za)):.4f} <= {ZQ_MAX:.4f}"),
    ]
    print()
    for desc, ok, detail in checks:
        print(f"  [{'ok' if ok else 'FAIL'}] {desc}: {detail}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 3.2), dpi=120)
    if "ZQ_err" in ds_c:      # the MPO ladder's error bars (smaller than the markers here)
        ax.errorbar(W, zc / ZQ_MAX, yerr=ds_c.ZQ_err.values / ZQ_MAX, fmt="o", capsize=2,
                    label=f"chain, $\\theta_m$ ({chain_method})")
    else:
        ax.plot(W, zc / ZQ_MAX, "o", label=f"chain, $\\theta_m$ ({chain_method})")
    ax.plot(W, za / ZQ_MAX, "--", label=f"all-to-all, same $f_{{eff}}$ ({ens_method})")
    ax.set_xscale("log")
    ax.set_xlabel(r"$W/\Gamma$")
    ax.set_ylabel(r"$Z_Q / Z_Q^{max}$")
    ax.set_title(f"N = {n}, $f_{{eff}}$ = {f_eff:.2f}$\\Gamma$", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    png = out_dir / "demo_S3.png"
    fig.savefig(png)
    plt.close(fig)
    csv = out_dir / "demo_S3.csv"
    np.savetxt(csv, np.column_stack([W, zc, za]), delimiter=",", header="W,ZQ_chain,ZQ_all_to_all",
               comments="")
    seconds = time.perf_counter() - t0
    print(f"\nsaved {png} and {csv} ({seconds:.1f} s)")
    return {"png": str(png), "csv": str(csv), "W": np.asarray(W), "ZQ_chain": zc, "ZQ_all_to_all": za,
            "f_eff": f_eff, "n": n, "methods": (chain_method, ens_method), "seconds": seconds,
            "checks": checks}
