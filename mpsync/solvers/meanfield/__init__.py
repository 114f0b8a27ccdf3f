r"""Mean-field (product-state) solver: ``method="meanfield"``.

With rho = (x)_a rho_a the master equation (docs/physics.md#master-equation) reduces to 3N
nonlinear equations (supplement Eqs. 1-2, main Eq. 5), written here for the
complex coherence m_a = <s-_a> = S_perp e^{i phi} and <sz_a> so that nothing is
singular at S_perp = 0 (Gamma = 1 units, times in 1/Gamma)::

    d m_a/dt  = -(i delta_a + Q/2) m_a + sz_a sum_{b != a} K_ab m_b
    d sz_a/dt = -Q sz_a + D - 4 Re( conj(m_a) sum_{b != a} K_ab m_b )

with K = (f + i g)/2, Q = Gamma + W and D = W - Gamma (sz is the Pauli <sz>,
twice the supplement's S^z). The order parameter is Z = |(1/N) sum_a <s+_a>|
(0 <= Z <= 1/2).

Self-consistent steady state (supplement Eqs. 3-6), X_a ~ f_eff Z, Y_a ~ g_eff Z:
every dipole oscillates at the collective frequency, m_a ~ e^{-i omega t}, and
with Delta_a = delta_a - omega::

    1 = (1/N) sum_a D (f_eff + i g_eff)(Q - 2 i Delta_a)
        / ( Q [4 Delta_a^2 + Q^2 + 2 (f_eff^2 + g_eff^2) Z^2] )

whose real and imaginary parts are Eqs. 3 and 4 (the supplement writes the
frequency with the opposite sign, omega_bar = -omega). Identical detunings give
Eq. 5, Z = sqrt(f_eff D - Q^2) / (sqrt 2 f_eff), a Lorentzian spread of
half-width Delta gives Eq. 6, and synchronisation disappears at
Delta_c = (f_eff D - Q^2) / (2 Q) (the supplement prints the opposite sign).

Public functions: :func:`steady_state`, :func:`evolve`,
:func:`analytic_steady_state`, :func:`critical_spread`, :func:`phase_diagram`,
:func:`optimal_pump`, :func:`order_parameter`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize

from ...errors import InvalidSystemError, warn_if_not_lindblad
from ...result import Moments, SteadyState, TimeSeries
from ...states import check_times, product_state
from ..moment_equations import Couplings, rhs_meanfield

__all__ = ["steady_state", "evolve", "analytic_steady_state", "critical_spread", "phase_diagram",
           "optimal_pump", "order_parameter", "random_phase_state", "MeanFieldSolution"]

METHOD = "meanfield"


# ---------------------------------------------------------------------------- moments
def _moments(sz, m) -> Moments:
    """Mean-field states are product states."""
    return Moments.of_product_state(sz, m)


def order_parameter(sm) -> np.ndarray:
    """Z = |(1/N) sum_a <s+_a>| over the last axis."""
    return np.abs(np.mean(np.conj(np.asarray(sm)), axis=-1))


def random_phase_state(n: int, seed=None, sz: float = 0.0) -> list:
    """Pure product state with random azimuthal phases, polar angle fixed by ``sz``.

    Parameters
    ----------
    n : int
    seed : int or numpy Generator
    sz : float
        <sz> of every dipole, -1 < sz < 1 (0: on the equator).

    Returns
    -------
    list of 2 x 2 density matrices (basis 0 = down, 1 = up).
    """
    rng = np.random.default_rng(seed)
    phi = rng.uniform(0, 2 * np.pi, n)
    pu = 0.5 * (1 + sz)
    out = []
    for p in phi:
        psi = np.array([np.sqrt(1 - pu), np.sqrt(pu) * np.exp(-1j * p)])
        out.append(np.outer(psi, psi.conj()))
    return out


def _initial(initial, n, seed):
    if isinstance(initial, str) and initial.strip().lower() in ("random", "random_phases"):
        states = random_phase_state(n, seed)
    else:
        states = product_state(initial, n)
    sz = np.array([np.real(r[1, 1] - r[0, 0]) for r in states])
    m = np.array([r[1, 0] for r in states], dtype=complex)
    return sz, m


def _check(system):
    if system.n < 1:
        raise InvalidSystemError("need at least one dipole")
    warn_if_not_lindblad(system, "method='meanfield'")


# ---------------------------------------------------------------------------- dynamics
def evolve(system, times, initial="random", seed=None, rtol: float = 1e-8, atol: float = 1e-10,
           integrator: str = "DOP853", progress: bool = False):
    """Mean-field dynamics from a product state.

    Parameters
    ----------
    system : DipoleSystem
    times : array_like
        Output times (1/Gamma), increasing, >= 0.
    initial : "random", "down", "up", "x" or list of 2 x 2 density matrices
        ``"random"``: Bloch vectors on the equator with random phases from
        ``seed`` (the insets of Fig. 2(a)). A state without coherences stays
        without them in mean field (Z = 0 is a fixed point).
    seed : int, optional
        Seed of the random phases.
    rtol, atol, integrator
        Passed to :func:`scipy.integrate.solve_ivp`.

    Returns
    -------
    TimeSeries
        With ``sm`` (so ``Z`` is the order parameter), product-state C and zz.

    Examples
    --------
    >>> import mpsync, numpy as np
    >>> s = mpsync.DipoleSystem.all_to_all(100, f_eff=20.0, W=10.0)
    >>> ts = mpsync.evolve(s, np.linspace(0, 50, 6), initial="random", method="meanfield", seed=1)
    >>> round(float(ts.Z[-1]), 2)   # Eq. 5 gives 0.2716
    0.27
    """
    t0 = time.perf_counter()
    _check(system)
    times = check_times(times)
    n = system.n
    cp = Couplings(system)
    sz0, m0 = _initial(initial, n, seed)
    y0 = np.concatenate([sz0.astype(complex), m0])

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=float(times[-1]), desc=f"meanfield N={n}", unit="1/Gamma")

    def fun(t, y):
        if bar is not None and t > bar.n:
            bar.update(t - bar.n)
        dsz, dm = rhs_meanfield(cp, y[:n].real, y[n:])
        return np.concatenate([dsz.astype(complex), dm])

    try:
        sol = integrate.solve_ivp(fun, (0.0, float(times[-1])), y0, method=integrator, t_eval=times,
                                  rtol=rtol, atol=atol)
    finally:
        if bar is not None:
            bar.close()
    if not sol.success:
        raise RuntimeError(f"mean-field integration failed: {sol.message}")
    snaps = [_moments(sol.y[:n, k].real, sol.y[n:, k]) for k in range(len(times))]
    diag = {"seconds": time.perf_counter() - t0, "nfev": int(sol.nfev), "seed": seed}
    return TimeSeries.from_snapshots(system, times, snaps, METHOD, diagnostics=diag)


def _residual(cp, sz, m):
    """max |d/dt| in the frame rotating with the collective frequency."""
    dsz, dm = rhs_meanfield(cp, sz, m)
    w = float(np.sum(np.abs(m) ** 2))
    omega = -float(np.imag(np.vdot(m, dm))) / w if w > 1e-300 else 0.0
    r = max(np.max(np.abs(dsz)), np.max(np.abs(dm + 1j * omega * m)))
    return float(r), omega


def steady_state(system, seed=0, initial="random", tol: float = 1e-9, t_chunk: float | None = None,
                 t_max: float = 1e5, rtol: float = 1e-10, atol: float = 1e-12, progress: bool = False):
    """Mean-field steady state (limit cycle) reached from random initial phases.

    Integrates the 3N equations in chunks until the residual in the frame
    rotating with the collective frequency omega (m_a ~ e^{-i omega t}) drops
    below ``tol``.

    Parameters
    ----------
    system : DipoleSystem
    seed : int
        Seed of the random initial phases.
    initial : str or list
        See :func:`evolve`.
    tol : float
        Target of max |d sz/dt|, |d m/dt + i omega m| (units of Gamma).
    t_chunk, t_max : float
        Integration chunk (default 50 / (Gamma + W)) and the longest time; a run that
        reaches ``t_max`` above ``tol`` returns with ``diagnostics["converged"]`` False.
    progress : bool
        One line per chunk (time, residual) on stderr.

    Returns
    -------
    SteadyState
        ``moments.sm`` carries <s-_a>, so ``.Z`` is the order parameter;
        ``diagnostics``: ``seconds``, ``residual``, ``omega``, ``t_final``, ``seed``.
    """
    t0 = time.perf_counter()
    _check(system)
    n = system.n
    cp = Couplings(system)
    sz, m = _initial(initial, n, seed)
    t_chunk = 50.0 / cp.Q if t_chunk is None else float(t_chunk)

    def fun(t, y):
        dsz, dm = rhs_meanfield(cp, y[:n].real, y[n:])
        return np.concatenate([dsz.astype(complex), dm])

    t = 0.0
    y = np.concatenate([sz.astype(complex), m])
    res, omega = _residual(cp, sz, m)
    while res > tol and t < t_max:
        sol = integrate.solve_ivp(fun, (0.0, t_chunk), y, method="DOP853", rtol=rtol, atol=atol)
        y = sol.y[:, -1]
        t += t_chunk
        res, omega = _residual(cp, y[:n].real, y[n:])
        if progress:
            import sys

            print(f"meanfield N={n}: t = {t:.4g}, residual {res:.3g} (tol {tol:g}), "
                  f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    sz, m = y[:n].real, y[n:]
    if np.max(np.abs(m)) < 1e-7:
        omega = float("nan")
    diag = {"seconds": time.perf_counter() - t0, "residual": res, "omega": omega, "t_final": t,
            "seed": seed, "Z": float(order_parameter(m)), "converged": bool(res <= tol)}
    if res > tol:
        diag["stop_reason"] = f"t_max = {t_max:g} reached with residual {res:.3g} > tol = {tol:g}"
    return SteadyState(system, _moments(sz, m), METHOD, diag)


# ---------------------------------------------------------------------------- analytic
@dataclass
class MeanFieldSolution:
    """Self-consistent mean-field steady state (supplement Eqs. 3-6).

    Attributes
    ----------
    Z : float or array
        Order parameter, 0 <= Z <= 1/2.
    omega : float or array
        Collective frequency of <s-_a> ~ e^{-i omega t} (nan when Z = 0).
    sz : float or array
        <sz> (per detuning for a sample).
    """

    Z: np.ndarray
    omega: np.ndarray
    sz: np.ndarray


def critical_spread(f_eff, W, gamma: float = 1.0):
    """Lorentzian half-width Delta_c = (f_eff D - Q^2) / (2 Q) at which Z vanishes.

    Negative values mean no synchronisation even without spread. (The supplement
    prints (Q^2 - f_eff D)/(2Q); Eq. 6 vanishes at the value returned here.)
    """
    f = np.asarray(f_eff, float)
    W = np.asarray(W, float)
    Q, D = gamma + W, W - gamma
    return (f * D - Q * Q) / (2 * Q)


def _z_lorentzian(f, g, W, gamma, spread):
    Q, D = gamma + W, W - gamma
    fd = f * D
    if np.any(np.asarray(g) != 0):
        raise NotImplementedError
    with np.errstate(invalid="ignore"):
        arg = fd - Q * Q + 2 * spread ** 2 - 2 * spread * np.sqrt(np.maximum(spread ** 2 + fd, 0.0))
        Z2 = np.where(critical_spread(f, W, gamma) > spread, arg / (2 * f * f), 0.0)
    return np.sqrt(np.maximum(Z2, 0.0))


def analytic_steady_state(f_eff, W, gamma: float = 1.0, g_eff: float = 0.0, delta_spread: float = 0.0,
                          kind="identical", delta0: float = 0.0) -> MeanFieldSolution:
    """Self-consistent mean-field steady state, supplement Eqs. 3-6.

    Parameters
    ----------
    f_eff, W : float or array
        Effective collective decay and pump (broadcast against each other for
        ``kind="identical"`` and ``"lorentzian"``).
    gamma : float
        Single-atom decay rate.
    g_eff : float
        Effective coherent coupling.
    delta_spread : float
        Half-width Delta of the Lorentzian (``kind="lorentzian"``).
    kind : "identical", "lorentzian" or array of detunings
        ``"identical"``: Eq. 5; ``"lorentzian"``: Eq. 6 (g_eff = 0; with g_eff a
        quantile sample of the Lorentzian is solved instead); an array: solve
        Eqs. 3-4 for Z and the collective frequency with that sample.
    delta0 : float
        Common detuning (``"identical"``) or centre of the Lorentzian.

    Returns
    -------
    MeanFieldSolution

    Examples
    --------
    >>> sol = analytic_steady_state(f_eff=100.0, W=50.0)
    >>> round(float(sol.Z), 3)    # Eq. 5; -> sqrt(1/8) = 0.354 as f_eff grows
    0.339
    """
    f = np.asarray(f_eff, float)
    W = np.asarray(W, float)
    Q, D = gamma + W, W - gamma
    if isinstance(kind, str):
        key = kind.lower()
        if key == "identical":
            with np.errstate(invalid="ignore", divide="ignore"):
                Z2 = (f * D - Q * Q) / (2 * f * f)
                Z = np.sqrt(np.where(Z2 > 0, Z2, 0.0))
                shift = g_eff * Q / (2 * f)          # Delta = delta - omega
                omega = np.where(Z > 0, delta0 - shift, np.nan)
                sz = np.where(Z > 0, Q / f, D / Q)
            return MeanFieldSolution(Z, omega, sz)
        if key == "lorentzian":
            if g_eff == 0:
                Z = _z_lorentzian(f, 0.0, W, gamma, float(delta_spread))
                omega = np.where(Z > 0, delta0, np.nan)
                return MeanFieldSolution(Z, omega, np.full(np.shape(Z), np.nan))
            # quantile sample of the Lorentzian (deterministic)
            p = (np.arange(20001) + 0.5) / 20001
            sample = delta0 + float(delta_spread) * np.tan(np.pi * (p - 0.5))
            return analytic_steady_state(f_eff, W, gamma, g_eff, kind=sample)
        raise InvalidSystemError(f"kind must be 'identical', 'lorentzian' or an array of detunings, got {kind!r}")
    return _solve_sample(float(f), float(W), gamma, float(g_eff), np.asarray(kind, float))


def _solve_sample(f, W, gamma, g, delta):
    """Solve Eqs. 3-4 for (Z, omega) with a given sample of detunings."""
    Q, D = gamma + W, W - gamma
    k2 = f * f + g * g

    def eq(x):
        u, om = x  # u = Z^2
        dl = delta - om
        den = Q * (4 * dl * dl + Q * Q + 2 * k2 * u)
        val = np.mean(D * (f + 1j * g) * (Q - 2j * dl) / den) - 1.0
        return [val.real, val.imag]

    best = None
    u_id = max((f * D - Q * Q) / (2 * f * f), 0.0) if f != 0 else 0.0
    om0 = float(np.mean(delta)) - (g * Q / (2 * f) if f != 0 else 0.0)
    for u0 in (u_id, 0.5 * u_id, 0.1 * u_id, 1e-3):
        if u0 <= 0:
            continue
        sol = optimize.root(eq, [u0, om0], method="hybr", options={"xtol": 1e-13})
        if sol.success and sol.x[0] > 0 and np.max(np.abs(eq(sol.x))) < 1e-9:
            if best is None or sol.x[0] > best[0]:
                best = sol.x
    if best is None:
        return MeanFieldSolution(np.float64(0.0), np.float64(np.nan), np.full(delta.shape, D / Q))
    u, om = best
    dl = delta - om
    sz = D * (Q * Q + 4 * dl * dl) / (Q * (4 * dl * dl + Q * Q + 2 * k2 * u))
    return MeanFieldSolution(np.float64(np.sqrt(u)), np.float64(om), sz)


def phase_diagram(W_grid, f_eff_grid, gamma: float = 1.0, delta_spread: float = 0.0):
    """Mean-field order parameter Z over a (f_eff, W) grid (Fig. 2(a)), vectorised.

    Parameters
    ----------
    W_grid, f_eff_grid : 1D arrays
    gamma : float
    delta_spread : float
        Lorentzian half-width (0: identical detunings, Eq. 5; else Eq. 6).

    Returns
    -------
    (len(f_eff_grid), len(W_grid)) array: ``Z[i, j]`` at f_eff_grid[i], W_grid[j].

    Examples
    --------
    >>> Z = phase_diagram(np.linspace(0, 40, 100), np.linspace(1, 40, 100))
    >>> Z.shape, bool(Z.max() < np.sqrt(1 / 8))
    ((100, 100), True)
    """
    W = np.asarray(W_grid, float)[None, :]
    f = np.asarray(f_eff_grid, float)[:, None]
    if delta_spread:
        return _z_lorentzian(f, 0.0, W, gamma, float(delta_spread))
    return analytic_steady_state(f, W, gamma).Z


def optimal_pump(f_eff, gamma: float = 1.0, delta_spread: float = 0.0):
    """W maximising the mean-field Z (~ f_eff/2 - Delta/sqrt 2 for f_eff >> Gamma).

    Returns (W_opt, Z_max).
    """
    f = float(f_eff)

    def negz(W):
        if delta_spread:
            return -float(_z_lorentzian(f, 0.0, W, gamma, float(delta_spread)))
        return -float(analytic_steady_state(f, W, gamma).Z)

    res = optimize.minimize_scalar(negz, bounds=(gamma, max(f, 2 * gamma)), method="bounded",
                                   options={"xatol": 1e-10})
    return float(res.x), float(-res.fun)
