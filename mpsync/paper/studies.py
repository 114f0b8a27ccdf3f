"""Studies of the paper built on the solvers: the data behind Figs. 2(c), 2(d), 3(b) and S2.

These are not solvers: each runs one or more of them (:mod:`mpsync.solvers`) over
a set of parameters and returns the numbers a figure plots. The figures themselves
are drawn by :mod:`mpsync.paper.figures`.

- :func:`qfi_vs_time`, :func:`conditional_qfi`: conditional QFI of quantum
  trajectories (Figs. 2(c), 2(d)), the latter next to the QFI of the unconditional
  state (exact solver when it fits).
- :func:`fig3b_histogram_data`: fitted frequencies of the cumulant two-time
  correlations of a power-law chain (Fig. 3(b)).
- :func:`fig_s2_data`: mutual information and discord of a pair vs N from the
  permutation-symmetric cumulant equations (Fig. S2).
"""

from __future__ import annotations

import numpy as np

from .. import observables as obs
from ..errors import NotApplicableError, TooLargeError
from ..model import DipoleSystem
from ..observables import entanglement_witness_bounds, qfi as _qfi_dense
from ..solvers import cumulant, exact, trajectories, two_time
from ..solvers.meanfield import optimal_pump

__all__ = ["qfi_vs_time", "conditional_qfi", "fig3b_histogram_data", "fig_s2_data"]


# ====================================================================== Figs. 2(c), 2(d): trajectories
def qfi_vs_time(system, times, ntraj: int = 20, initial="down", unravelling: str = "homodyne",
                dt: float | None = None, seed=None, executor=None, workers: int | None = None,
                progress: bool = False, jump_basis: str = "eigen", extrapolate: bool = False) -> dict:
    """Conditional QFI F_Q(psi_c(t)) of each trajectory against time (Fig. 2(c)).

    The conditional state depends on what is detected: photon counting (``"jumps"``)
    and one-quadrature detection (``"homodyne"``, the paper's) give entangled
    conditional states (F > 2N/3); two-quadrature detection (``"heterodyne"``) keeps
    F at 2N/3, the value of every pure product state: with complex noise the
    back-action of a collective channel factorises into single-dipole updates
    (d xi d xi = 0), so the noise never correlates dipoles; only the no-click part
    -(1/2) sum_{a != b} f_ab s+_a s-_b of H_eff does (measured in
    validation/README.md, Fig. 2(c,d)). ``jump_basis`` changes conditional results of
    jumps and homodyne only; ``extrapolate`` (diffusive unravellings) removes the
    O(dt) bias; both as in :func:`mpsync.solvers.trajectories.steady_state`.

    Returns
    -------
    dict
        ``times`` (T,), ``trajectories`` (ntraj, T), ``mean`` (T,), ``error`` (T,)
        (standard error over trajectories), ``threshold`` 2N/3 and ``maximum``
        (N^2 + 2N)/3 of the direction-averaged QFI.
    """
    ts = trajectories.evolve(system, times, initial=initial, ntraj=ntraj, dt=dt, seed=seed, unravelling=unravelling,
                executor=executor, workers=workers, progress=progress, jump_basis=jump_basis,
                extrapolate=extrapolate)
    lo, hi = entanglement_witness_bounds(system.n)
    return dict(times=ts.times, trajectories=ts.extras["qfi_trajectories"], mean=ts.extras["qfi"],
                error=ts.errors["qfi"], threshold=lo, maximum=hi, diagnostics=ts.diagnostics)


def _unconditional_qfi(system, how, ss):
    if how in ("auto", "exact"):
        try:
            rho = exact.density_matrix(system)
            return float(_qfi_dense(rho, system.n)), "exact"
        except (NotApplicableError, TooLargeError):
            if how == "exact":
                raise
    rho = ss.extras["rho"]
    return float(_qfi_dense(0.5 * (rho + rho.conj().T), system.n, on_unphysical="nan")), "trajectories"


def conditional_qfi(system, W_values, ntraj: int = 20, t_burn: float = 10.0, t_avg: float = 20.0,
                    sample_dt: float = 0.2, dt: float | None = None, seed=None,
                    unravelling: str = "homodyne", unconditional: str | None = "auto",
                    executor=None, workers: int | None = None, progress: bool = False,
                    extrapolate: bool = True, jump_basis: str = "eigen") -> dict:
    """Steady conditional QFI against the pump W (Fig. 2(d)), with the unconditional one.

    For each W: the time-and-trajectory average of F_Q(psi_c) (conditional) and the
    QFI of the averaged state rho (spectral formula, :func:`mpsync.observables.qfi`).
    rho comes from the exact solver (``unconditional="exact"``), from averaging
    |psi><psi| over the trajectories and samples (``"trajectories"``), or the exact
    one when available (``"auto"``); ``None`` skips it. Both need N <= ~10.
    ``extrapolate`` (default True) removes the O(dt) Euler-Maruyama bias of the
    conditional QFI, which is otherwise comparable to its excess over 2N/3 (see
    :func:`mpsync.solvers.trajectories.steady_state`). ``unravelling`` and ``jump_basis`` as in
    :func:`qfi_vs_time` (default homodyne, the paper's detection scheme).

    Returns
    -------
    dict
        ``W``, ``conditional``, ``conditional_error``, ``unconditional``,
        ``unconditional_source``, ``threshold`` (2N/3), ``maximum`` ((N^2 + 2N)/3).
    """
    W_values = np.atleast_1d(np.asarray(W_values, dtype=float))
    cond, err, unc, src = [], [], [], []
    keep = unconditional is not None and unconditional != "exact"
    for W in W_values:
        s = system.replace(W=float(W))
        ss = trajectories.steady_state(s, ntraj=ntraj, t_burn=t_burn, t_avg=t_avg, sample_dt=sample_dt, dt=dt,
                          seed=seed, unravelling=unravelling, executor=executor, workers=workers,
                          progress=progress, keep_density_matrix=keep, extrapolate=extrapolate,
                          jump_basis=jump_basis)
        cond.append(ss.extras["qfi_conditional"])
        err.append(ss.errors["qfi_conditional"])
        if unconditional is None:
            unc.append(np.nan)
            src.append(None)
        else:
            u, how = _unconditional_qfi(s, unconditional, ss)
            unc.append(u)
            src.append(how)
    lo, hi = entanglement_witness_bounds(system.n)
    return dict(W=W_values, conditional=np.array(cond), conditional_error=np.array(err),
                unconditional=np.array(unc), unconditional_source=src, threshold=lo, maximum=hi)


# ====================================================================== Fig. 3(b): cumulant
def fig3b_histogram_data(alpha_list, n: int = 200, seed=0, W=None, f0: float = 0.25,
                         spread: float = 1.0, bins=40, taus=None, progress: bool = False):
    """Data of Fig. 3(b): histograms of the fitted nu of Z_ab(tau), central dipole (cumulant).

    A chain of ``n`` dipoles with power-law f_ab = f0 |a - b|^-alpha, g = 0,
    detunings uniform in [-spread/2, spread/2] (the same seeded sample for every
    alpha), pump W (default: the mean-field optimum for the chain's f_eff,
    :func:`mpsync.solvers.meanfield.optimal_pump`, at least 2 Gamma so that the
    dipoles are inverted even where alpha is too large to synchronise). For the central dipole
    b = n // 2, Z_ab(tau) is computed against every other dipole and fitted to
    A cos(nu tau) exp(-gamma tau).

    Parameters
    ----------
    alpha_list : sequence of float
    n : int
    seed : int
        Seed of the detunings.
    W : float, optional
    f0, spread : float
    bins : int or array
        Histogram bins of nu (shared over alpha when an int: 0 to max nu).
    taus : array, optional
        Delays; default from the slowest mode of each system.
    progress : bool
        tqdm bar over alpha.

    Returns
    -------
    dict alpha -> {"nu", "gamma", "A" ((n-1,) arrays over the other dipoles),
    "counts", "edges" (histogram of nu), "W", "f_eff", "ZQ", "delta", "site"}.
    """
    rng = np.random.default_rng(seed)
    delta = rng.uniform(-0.5 * spread, 0.5 * spread, n)
    out = {}
    items = list(alpha_list)
    if progress:
        from tqdm.auto import tqdm
        items = tqdm(items, desc="fig3b alpha")
    b = n // 2
    for alpha in items:
        base = DipoleSystem.power_law(n, float(alpha), W=1.0, f0=f0, delta=delta)
        w = float(W) if W is not None else max(optimal_pump(base.f_eff)[0], 2.0 * base.gamma)
        s = base.replace(W=w)
        ss = cumulant.steady_state(s)
        tt = cumulant.default_taus(ss) if taus is None else taus
        fit = two_time(ss, tt, pairs=b).fits          # the pairs (a, b), a != b
        out[float(alpha)] = {"nu": fit["nu"], "gamma": fit["gamma"], "A": fit["A"],
                             "nu_err": fit["nu_err"], "W": w, "f_eff": s.f_eff, "ZQ": float(ss.ZQ),
                             "delta": delta, "site": b, "taus": tt}
    all_nu = np.concatenate([v["nu"] for v in out.values()]) if out else np.zeros(0)
    if np.ndim(bins) == 0:
        top = float(np.nanmax(all_nu)) if all_nu.size and np.isfinite(all_nu).any() else 1.0
        edges = np.linspace(0.0, max(top, 1e-9) * 1.0001, int(bins) + 1)
    else:
        edges = np.asarray(bins, float)
    for v in out.values():
        counts, _ = np.histogram(v["nu"][np.isfinite(v["nu"])], edges)
        v["counts"], v["edges"] = counts, edges
    return out


# ====================================================================== Fig. S2: symmetric cumulant
def fig_s2_data(n_list, f_eff: float = 15.0, W=None, gamma: float = 1.0):
    """Mutual information and discord of a pair vs N (Fig. S2), all-to-all, W = f_eff/2.

    Uses :func:`mpsync.solvers.cumulant.symmetric_moments` (O(1) per N, so N can be millions) and the
    pair density matrix of :func:`mpsync.observables.pair_density_matrix`.

    Returns
    -------
    dict with arrays ``N``, ``mutual_information``, ``discord`` (bits), ``ZQ2``, ``sz``.
    """
    W = 0.5 * f_eff if W is None else float(W)
    out = {k: [] for k in ("N", "mutual_information", "discord", "ZQ2", "sz")}
    for n in n_list:
        n = int(n)
        s, c, z, _ = cumulant.symmetric_moments(n, f_eff / n, W, gamma)
        rho = obs.pair_density_matrix(s, s, c, z)
        out["N"].append(n)
        out["mutual_information"].append(obs.mutual_information(rho, on_unphysical="nan"))
        out["discord"].append(obs.quantum_discord(rho, on_unphysical="nan"))
        out["ZQ2"].append(c)
        out["sz"].append(s)
    return {k: np.array(v) for k, v in out.items()}
