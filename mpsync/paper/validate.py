"""Cross-solver agreement: every pair of solvers on shared cases where their domains overlap.

``mpsync validate [--quick]`` runs :func:`run_validation`, which solves each
shared case with both solvers of a pair and compares the steady-state moments
(docs/physics.md#observables; Gamma = 1, lengths in lambda):

- ``max |d sz|``: max over sites of |<sz_a>_1 - <sz_a>_2|;
- ``max |d C|``: max over all a, b of |C_ab,1 - C_ab,2|, C_ab = <s+_a s-_b>;
- ``|d ZQ|``: |Z_Q,1 - Z_Q,2|.

Deterministic pairs pass when all three are below the pair's absolute
tolerance. Stochastic pairs (trajectories) pass when every deviation is below
``k`` combined standard errors, ``|d| <= k sqrt(se^2 + floor^2)``; the table then
reports the largest ratio |d| / sqrt(se^2 + floor^2). Approximate methods
(cumulant, mean field vs quantum) get tolerances that reflect their known
accuracy, stated in the table. Every case has a
positive semidefinite f (all-to-all: f_eff <= N), i.e. a valid Lindblad equation.

The pairs and why their tolerances are what they are:

==========================  =================================  ======================
pair                        cases                              tolerance
==========================  =================================  ======================
exact / permutational       all-to-all N = 4, 6                1e-8 (both exact)
exact / mpo                 dipolar chain N = 6, 8 (theta_m)   2e-3 (TDVP truncation)
permutational / mpo         all-to-all N = 10, 12              2e-3
exact / trajectories        chain N = 4, all-to-all N = 4      5 standard errors
exact / cumulant            all-to-all N = 6, W >= Gamma       0.05 (2nd-order cumulant)
permutational / cumulant    all-to-all N = 70, f_eff = 15      0.05
meanfield ODE / analytic    all-to-all N = 20 (Eq. 5)          1e-5 in Z and sz
==========================  =================================  ======================
"""

from __future__ import annotations

import datetime
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["run_validation", "pairs", "Pair", "compare"]


@dataclass
class Pair:
    """Two solvers, the cases they share and the tolerance of their agreement."""

    a: str
    b: str
    cases: list                       # list of (label, system factory) ; factory() -> DipoleSystem
    tol: float                        # absolute, or number of standard errors when stochastic
    note: str = ""
    options_a: dict = field(default_factory=dict)
    options_b: dict = field(default_factory=dict)
    stochastic: bool = False
    floor: float = 1e-3               # added in quadrature to standard errors
    quick_cases: int = 1              # how many cases the quick run keeps


def _all_to_all(n, f_eff, W):
    from ..model import DipoleSystem

    return lambda: DipoleSystem.all_to_all(n, f_eff, W)


def _chain(n, spacing, W, theta="magic"):
    from ..model import DipoleSystem

    return lambda: DipoleSystem.chain(n, spacing, theta, W)


def _pairs():
    return [
        Pair("exact", "permutational",
             [("all-to-all N=4 f_eff=4 W=2", _all_to_all(4, 4.0, 2.0)),
              ("all-to-all N=6 f_eff=6 W=0.5", _all_to_all(6, 6.0, 0.5)),
              ("all-to-all N=6 f_eff=6 W=12", _all_to_all(6, 6.0, 12.0))],
             tol=1e-8, note="both exact"),
        Pair("exact", "mpo",
             [("chain N=6 a=0.1 theta_m W=2", _chain(6, 0.1, 2.0)),
              ("chain N=8 a=0.1 theta_m W=2", _chain(8, 0.1, 2.0))],
             tol=2e-3, note="the default bond-dimension ladder, zq_tol 1e-3"),
        Pair("permutational", "mpo",
             [("all-to-all N=10 f_eff=8 W=4", _all_to_all(10, 8.0, 4.0)),
              ("all-to-all N=12 f_eff=8 W=4", _all_to_all(12, 8.0, 4.0))],
             tol=2e-3, note="beyond the exact sizes; default ladder"),
        Pair("exact", "trajectories",
             [("chain N=4 a=0.1 theta_m W=2", _chain(4, 0.1, 2.0)),
              ("all-to-all N=4 f_eff=4 W=2", _all_to_all(4, 4.0, 2.0))],
             tol=5.0, stochastic=True, floor=2e-3,
             options_b=dict(ntraj=48, t_burn=15.0, t_avg=30.0, seed=7, workers=1),
             note="jump unravelling; tol in standard errors"),
        Pair("exact", "cumulant",
             [("all-to-all N=6 f_eff=6 W=3", _all_to_all(6, 6.0, 3.0)),
              ("chain N=6 a=0.2 theta_m W=1.5 (small g)", _chain(6, 0.2, 1.5))],
             tol=0.05, note="2nd-order cumulant is approximate (W >~ Gamma, small g)"),
        Pair("permutational", "cumulant",
             [("all-to-all N=70 f_eff=15 W=7.5", _all_to_all(70, 15.0, 7.5)),
              ("all-to-all N=30 f_eff=10 W=5", _all_to_all(30, 10.0, 5.0))],
             tol=0.05, note="2nd-order cumulant is approximate"),
        Pair("meanfield", "meanfield-analytic",
             [("all-to-all N=20 f_eff=10 W=5", _all_to_all(20, 10.0, 5.0)),
              ("all-to-all N=20 f_eff=10 W=1.5 (below threshold)", _all_to_all(20, 10.0, 1.5))],
             tol=1e-5, note="ODE limit cycle vs supplement Eq. 5: Z and sz"),
    ]


def pairs():
    """The pairs run by :func:`run_validation` (fresh list)."""
    return _pairs()


def compare(r1, r2) -> dict:
    """Deviations between two SteadyStates: max |d sz|, max |d C|, |d ZQ|."""
    return {"sz": float(np.max(np.abs(r1.sz - r2.sz))),
            "C": float(np.max(np.abs(r1.correlations - r2.correlations))),
            "ZQ": float(abs(float(r1.ZQ) - float(r2.ZQ)))}


def _stochastic_ratio(det, sto, floor) -> dict:
    """|d| / sqrt(se^2 + floor^2), maxed over entries, for sz, C and ZQ2."""
    se = sto.errors
    out = {}
    d = np.abs(det.sz - sto.sz)
    out["sz"] = float(np.max(d / np.sqrt(np.asarray(se.get("sz", 0.0)) ** 2 + floor ** 2)))
    dc = det.correlations - sto.correlations
    sec = np.asarray(se.get("correlations", 0.0))
    ser, sei = (np.real(sec), np.imag(sec)) if np.iscomplexobj(sec) else (sec, sec)
    rr = np.abs(dc.real) / np.sqrt(ser ** 2 + floor ** 2)
    ri = np.abs(dc.imag) / np.sqrt(sei ** 2 + floor ** 2)
    out["C"] = float(max(np.max(rr), np.max(ri)))
    dz = abs(float(det.ZQ2) - float(sto.ZQ2))
    out["ZQ"] = float(dz / np.sqrt(float(se.get("ZQ2", 0.0)) ** 2 + floor ** 2))
    return out


def _solve(method, system, options):
    """Steady state with ``method``; ``meanfield-analytic`` is supplement Eq. 5."""
    import mpsync

    if method == "meanfield-analytic":
        from ..result import Moments, SteadyState
        from ..solvers import meanfield

        t0 = time.perf_counter()
        # Eq. 5 with the coupling one dipole feels, sum_{b != a} f_ab = (N - 1) f_eff / N for the
        # all-to-all ensemble (the supplement's N f = f_eff counts N - 1 ~ N partners).
        off = system.f - np.diag(np.diag(system.f))
        f_row = float(np.mean(off.sum(axis=1)))
        g_row = float(np.mean(system.g.sum(axis=1)))
        sol = meanfield.analytic_steady_state(f_row, system.W, system.gamma, g_eff=g_row)
        n = system.n
        Z, sz = float(sol.Z), float(np.mean(sol.sz))
        # Product state with <s-_a> = Z (common phase): C_ab = Z^2 (a != b).
        C = np.full((n, n), Z * Z, dtype=complex)
        np.fill_diagonal(C, (1 + sz) / 2)
        zz = np.full((n, n), sz * sz)
        np.fill_diagonal(zz, 1.0)
        m = Moments(np.full(n, sz), C, zz, sm=np.full(n, Z, dtype=complex))
        return SteadyState(system, m, "meanfield-analytic", {"seconds": time.perf_counter() - t0})
    return mpsync.steady_state(system, method=method, **options)


def _meanfield_compare(r1, r2) -> dict:
    # Compare phase-invariant quantities: Z = |<s+>| mean and sz, and C_ab = <s+_a><s-_b>.
    return {"sz": float(np.max(np.abs(r1.sz - r2.sz))),
            "C": float(np.max(np.abs(np.abs(r1.correlations) - np.abs(r2.correlations)))),
            "ZQ": float(abs(float(r1.Z) - float(r2.Z)))}


def run_pair(pair: Pair, quick: bool = False, progress: bool = False) -> list:
    """Rows of the table for one pair: dicts with case, deviations, status, seconds."""
    rows = []
    cases = pair.cases[:pair.quick_cases] if quick else pair.cases
    for label, factory in cases:
        row = {"pair": f"{pair.a} / {pair.b}", "case": label, "tol": pair.tol,
               "stochastic": pair.stochastic, "note": pair.note, "dev": None, "seconds": 0.0}
        t0 = time.perf_counter()
        try:
            system = factory()
            r1 = _solve(pair.a, system, pair.options_a)
            r2 = _solve(pair.b, system, pair.options_b)
        except Exception as exc:  # noqa: BLE001 - a solver error is a failure of the pair
            row["status"] = "FAIL"
            row["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
            row["seconds"] = time.perf_counter() - t0
            rows.append(row)
            continue
        row["seconds"] = time.perf_counter() - t0
        if pair.stochastic:
            dev = _stochastic_ratio(r1, r2, pair.floor)
        elif "meanfield" in pair.a:
            dev = _meanfield_compare(r1, r2)
        else:
            dev = compare(r1, r2)
        row["dev"] = dev
        ok = all(np.isfinite(v) and v <= pair.tol for v in dev.values())
        row["status"] = "pass" if ok else "FAIL"
        if progress:
            print(f"  {row['pair']:<28} {label:<45} {row['status']:<6} "
                  + " ".join(f"{k}={v:.2e}" for k, v in dev.items()) + f"  ({row['seconds']:.1f} s)")
        rows.append(row)
    return rows


def _commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def format_table(rows, quick: bool) -> str:
    """Markdown table of the rows."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Cross-solver agreement",
        "",
        f"Generated by `mpsync validate{' --quick' if quick else ''}` on {now}, commit {_commit()}.",
        "Units: Gamma = 1, lengths in lambda. Columns: max over sites of |d <sz_a>|, max over a, b of",
        "|d <s+_a s-_b>| and |d Z_Q| (for stochastic pairs: the largest |d| / sqrt(se^2 + floor^2), in",
        "standard errors; for mean field: |d Z| and |d |C_ab||). A pair passes when all three are at most",
        "its tolerance.",
        "",
        "| pair | case | max \\|d sz\\| | max \\|d C\\| | \\|d ZQ\\| | tolerance | result | seconds | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        dev = r["dev"]
        cells = ["-", "-", "-"] if dev is None else [f"{dev[k]:.2e}" for k in ("sz", "C", "ZQ")]
        tol = f"{r['tol']:g} se" if r["stochastic"] else f"{r['tol']:g}"
        status = r["status"] + (f": {r['error']}" if "error" in r else "")
        status = status.replace("|", "/")
        lines.append(f"| {r['pair']} | {r['case']} | {' | '.join(cells)} | {tol} | {status} | "
                     f"{r['seconds']:.1f} | {r['note']} |")
    n_pass = sum(r["status"] == "pass" for r in rows)
    n_fail = sum(r["status"].startswith("FAIL") for r in rows)
    lines += ["", f"Summary: {n_pass} passed, {n_fail} failed.", ""]
    return "\n".join(lines)


def run_validation(quick: bool = False, out="validation/agreement.md", progress: bool = True,
                   pairs=None) -> bool:
    """Run every pair of solvers on their shared cases and write the agreement table.

    Parameters
    ----------
    quick : bool
        The first case of each pair only.
    out : str or Path or None
        Markdown file for the table (``None``: do not write).
    progress : bool
        Print each row as it finishes.
    pairs : list of Pair, optional
        Defaults to every pair of the module docstring.

    Returns
    -------
    bool
        False when any pair failed.
    """
    from threadpoolctl import threadpool_limits

    rows = []
    with threadpool_limits(1):
        for pair in (pairs if pairs is not None else _pairs()):
            rows.extend(run_pair(pair, quick=quick, progress=progress))
    text = format_table(rows, quick)
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    if progress:
        print(text)
    return not any(r["status"].startswith("FAIL") for r in rows)
