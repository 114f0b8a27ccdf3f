r"""Exact permutation-symmetric solver (``method="permutational"``) for all-to-all ensembles.

Solves the master equation of docs/physics.md#master-equation (Gamma = 1 units by default, times
in 1/Gamma) exactly when it is invariant under permutations of the dipoles:
f_ab = f (a != b), g_ab = g (a != b) and uniform delta. Then

.. math::

    \sum_{ab} f_{ab}\,\mathcal{D}_{ab} = f\,\mathcal{D}[J^-] + (\Gamma - f) \sum_a \mathcal{D}[s^-_a],
    \qquad H = \delta J_z + \tfrac{g}{2}\,(J^+ J^- - J_z - N/2),

so the model is a collective emission of rate f = f_eff/N (all-to-all), an
individual emission Gamma - f and an individual pump W. The state stays in the
permutation-symmetric Liouville space (Xu, Tieri and Holland, PRA 87 062101),
written here in the Dicke basis: rho = (+)_j rho_j (x) 1_{d_j}, with the block
weights R_j = d_j rho_j as unknowns (:mod:`mpsync.solvers.permutational.dicke_sectors`). The U(1)
symmetry splits it into sectors s = m - m':

- steady state: the balanced sector s = 0, where H drops out and R_j is diagonal
  (the populations p(j, m)): (N/2 + 1)^2 unknowns for even N, a sparse rate
  equation solved by one sparse LU (SuperLU, minimum-degree ordering on A + A^T)
  with one unknown fixed instead of a dense trace row (which would fill the LU);
- <J+(tau) J-(0)>: the sector s = -1 holding J- rho;
- the pair function Z_ab(tau): s-_c rho is symmetric only in the other N - 1
  dipoles, so it evolves in (N - 1 symmetric) x (site c), sector s = -1
  (:mod:`mpsync.solvers.permutational.site_space`).

Moments follow from collective expectation values: <Jz>, <J+J-> and <Jz^2> give
sz, C = <s+_a s-_b> = (<J+J-> - N (1 + sz)/2) / (N (N - 1)) and
<sz_a sz_b> = (4 <Jz^2> - N) / (N (N - 1)).

Examples
--------
>>> import mpsync
>>> from mpsync import DipoleSystem
>>> res = mpsync.steady_state(DipoleSystem.all_to_all(70, f_eff=15, W=7.5), method="permutational")
>>> round(float(res.ZQ), 4)  # doctest: +SKIP
0.3...
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy.sparse import linalg as spla

from ...errors import InvalidSystemError, NotApplicableError, TooLargeError, check_memory
from ...observables import fit_decay
from ...result import Moments, SteadyState, TimeSeries
from ...states import check_times, has_coherences, product_state
from .dicke_sectors import Sector, j_values, log_degeneracy, sector_liouvillian
from .site_space import SiteSpace, spin_matrices

__all__ = ["steady_state", "evolve", "two_time", "dicke_two_time", "DickeTwoTime", "unconditional_qfi",
           "rates", "optimal_pump", "collective_moments"]

METHOD = "permutational"


def _alternatives(system, entry="steady_state"):
    """The methods that accept ``system`` instead (from :mod:`.applicability`)."""
    from ..applicability import alternatives

    return alternatives(system, exclude=("permutational",), entry=entry) or "another method"

#: peak bytes per balanced-sector unknown (LU fill ~110 entries per unknown; 0.75 GB measured at N = 1000)
_LU_BYTES_PER_UNKNOWN = 3000
#: coherent product initial states need one (2j+1)^3 rotation per block
_MAX_N_COHERENT = 400
#: the pair function builds sum_j' 4 (2j'+1)^2 block entries
_MAX_N_PAIR = 300


# ---------------------------------------------------------------------- model
def rates(system):
    """Collective and individual rates of a permutation-symmetric system.

    Returns
    -------
    dict
        ``collective_emission`` f (off-diagonal f_ab), ``emission`` Gamma - f,
        ``pumping`` W, ``delta``, ``g`` (off-diagonal g_ab).

    Raises
    ------
    NotApplicableError
        The system is not permutation symmetric.
    InvalidSystemError
        f is not positive semidefinite (e.g. all-to-all with f_eff/N > Gamma).
    """
    if not system.is_permutation_symmetric:
        raise NotApplicableError(
            f"method='permutational' needs a permutation-symmetric system (equal off-diagonal f, "
            f"equal off-diagonal g, uniform delta); {system.label} is not. Use {_alternatives(system)}")
    system.check_lindblad("method='permutational'")
    n = system.n
    f = float(system.f[0, 1]) if n > 1 else 0.0
    g = float(system.g[0, 1]) if n > 1 else 0.0
    return {"collective_emission": f, "emission": system.gamma - f, "pumping": system.W,
            "delta": float(system.delta[0]), "g": g}


def _liouvillian(system, sector):
    r = rates(system)
    return sector_liouvillian(sector, r["collective_emission"], r["emission"], r["pumping"],
                              r["delta"], r["g"])


def collective_moments(n, j, m, populations) -> Moments:
    """Moments of a balanced permutation-symmetric state from its Dicke populations R_j(m)."""
    p = np.asarray(populations, float)
    jz = p @ m
    jpjm = p @ ((j + m) * (j - m + 1))
    jz2 = p @ (m * m)
    sz = 2 * jz / n
    if n > 1:
        c = (jpjm - n * (1 + sz) / 2) / (n * (n - 1))
        zzo = (4 * jz2 - n) / (n * (n - 1))
    else:
        c = zzo = 0.0
    corr = np.full((n, n), c, dtype=complex)
    np.fill_diagonal(corr, (1 + sz) / 2)
    zz = np.full((n, n), zzo)
    np.fill_diagonal(zz, 1.0)
    return Moments(np.full(n, sz), corr, zz)


# ---------------------------------------------------------------------- steady state
def _solve_balanced(L, pivot):
    """Null vector of the column-stochastic generator L with x[pivot] = 1, by sparse LU."""
    size = L.shape[0]
    if size == 1:
        return np.ones(1), 0
    keep = np.r_[0:pivot, pivot + 1:size]
    Lc = L.tocsc()
    A = Lc[keep][:, keep].tocsc()
    b = -Lc[keep][:, [pivot]].toarray().ravel()
    lu = spla.splu(A, permc_spec="MMD_AT_PLUS_A")
    x = np.insert(lu.solve(b), pivot, 1.0)
    return x, int(lu.L.nnz + lu.U.nnz)


def steady_state(system, progress: bool = False) -> SteadyState:
    """Exact steady state of a permutation-symmetric system.

    Solves L R = 0, sum R = 1 in the balanced Dicke sector (the populations of
    |j, m>, (N/2 + 1)^2 unknowns for even N) with a sparse LU.

    Parameters
    ----------
    system : DipoleSystem
        Permutation symmetric (all-to-all f and g, uniform delta); f must be
        positive semidefinite (f_eff/N <= Gamma for all-to-all).
    progress : bool
        One line on stderr when the solve (a single factorisation) is done.

    Returns
    -------
    SteadyState
        Uniform ``sz``, ``correlations`` and ``zz``; ``extras`` holds the Dicke
        populations (``populations``, ``j``, ``m``) used by :func:`unconditional_qfi`;
        ``diagnostics``: ``seconds``, ``residual`` (max |L R|), ``basis_size``,
        ``lu_nnz``.

    Examples
    --------
    >>> from mpsync import DipoleSystem
    >>> res = steady_state(DipoleSystem.all_to_all(70, f_eff=15, W=7.5))
    >>> res.diagnostics["basis_size"]
    1296
    """
    t0 = time.perf_counter()
    r = rates(system)
    n = system.n
    sector = Sector.build(n, 0)
    check_memory(sector.size * _LU_BYTES_PER_UNKNOWN, f"N={n} in the permutational solver")
    L = sector_liouvillian(sector, r["collective_emission"], r["emission"], r["pumping"])
    info = {}
    if r["pumping"] == 0:
        # no pump: everything decays to the ground state |N/2, -N/2>
        x = np.zeros(sector.size)
        x[sector.index(np.array([n / 2]), np.array([-n / 2]))[0]] = 1.0
        info["solver"] = "ground state (W = 0)"
        if r["emission"] <= 1e-12 * system.gamma and n > 1:
            info["warning"] = "no individual emission and W = 0: dark states make the steady state non-unique"
    else:
        # fix one unknown to 1: start in the middle of the spectrum and move to the largest
        # population if that one turned out negligible (or the others overflowed)
        # (a pivot whose population underflows makes the reduced matrix exactly singular: then
        # restart from the collective ground state, which dominates below threshold)
        pivot = sector.size // 2
        ground = int(sector.index(np.array([n / 2]), np.array([-n / 2]))[0])
        for _ in range(3):
            try:
                with np.errstate(over="ignore", invalid="ignore"):
                    x, nnz = _solve_balanced(L, pivot)
            except RuntimeError:
                if pivot == ground:
                    raise InvalidSystemError("the balanced-sector Liouvillian is singular "
                                             "(non-unique steady state)") from None
                pivot = ground
                continue
            ax = np.abs(x)
            big = int(np.argmax(np.where(np.isnan(ax), -1.0, ax)))
            if np.all(np.isfinite(x)) and ax[pivot] > 1e-30 * ax[big]:
                break
            pivot = big
        if not np.all(np.isfinite(x)):
            raise InvalidSystemError("the balanced-sector Liouvillian is singular (non-unique steady state)")
        info.update(solver="sparse LU", lu_nnz=nnz)
        x = x / x.sum()
    residual = float(np.max(np.abs(L @ x)))
    if progress:
        import sys

        print(f"permutational N={n}: {info['solver']} of {sector.size} Dicke populations, residual "
              f"{residual:.3g}, {time.perf_counter() - t0:.2f} s", file=sys.stderr)
    info["min_population"] = float(x.min())
    x = np.clip(x, 0.0, None)  # round-off negatives (~1e-17) of populations
    x /= x.sum()
    moments = collective_moments(n, sector.j, sector.m, x)
    diagnostics = {"seconds": time.perf_counter() - t0, "residual": residual,
                   "basis_size": sector.size, **info}
    return SteadyState(system, moments, METHOD, diagnostics,
                       extras={"populations": x, "j": sector.j, "m": sector.m})


@lru_cache(maxsize=512)
def _ensemble_zq(n: int, f_eff: float, W: float, gamma: float) -> float:
    from ...model import DipoleSystem

    return float(steady_state(DipoleSystem.all_to_all(n, f_eff=f_eff, W=W, gamma=gamma)).ZQ)


def optimal_pump(n: int, f_eff: float, gamma: float = 1.0, grid=None, refine: bool = True):
    """The pump W at which the all-to-all ensemble of N dipoles has its largest Z_Q.

    The ensemble (f_ab = f_eff / N for a != b, g = 0, delta = 0) is solved
    exactly here; it is the reference of any array with the same f_eff, which
    peaks near the same W (Fig. S3). Z_Q(W) vanishes below the pump threshold,
    so a grid finds the peak first and a bounded Brent search on log W between
    its grid neighbours refines it. The finite-N optimum is not the mean-field
    one (:func:`mpsync.solvers.meanfield.optimal_pump`, ~ f_eff / 2): at N = 12,
    W_opt / f_eff is 0.67 for f_eff = 11.4 and 2.5 for f_eff = 1.5.

    Parameters
    ----------
    n : int
        Number of dipoles.
    f_eff : float
        Collective decay f_eff (units of Gamma).
    gamma : float
        Single-atom decay rate.
    grid : array, optional
        Pump rates to scan (default: 41 points geometric in
        [min(0.1 f_eff, 0.5 Gamma), max(4 f_eff, 20 Gamma)]).
    refine : bool
        Refine between the grid neighbours of the best grid point.

    Returns
    -------
    (W_opt, ZQ_max) : (float, float)

    Examples
    --------
    >>> w, zq = optimal_pump(12, 8.0)
    >>> round(w / 8.0, 2), round(zq, 3)
    (0.74, 0.277)
    """
    from scipy.optimize import minimize_scalar

    n, f_eff, gamma = int(n), float(f_eff), float(gamma)
    if grid is None:
        grid = np.geomspace(min(0.1 * f_eff, 0.5 * gamma), max(4.0 * f_eff, 20.0 * gamma), 41)
    grid = np.asarray(grid, dtype=float)
    zq = np.array([_ensemble_zq(n, f_eff, float(w), gamma) for w in grid])
    i = int(np.argmax(zq))
    if not refine:
        return float(grid[i]), float(zq[i])
    lo, hi = np.log(grid[max(i - 1, 0)]), np.log(grid[min(i + 1, len(grid) - 1)])
    res = minimize_scalar(lambda lw: -_ensemble_zq(n, f_eff, float(np.exp(lw)), gamma), bounds=(lo, hi),
                          method="bounded", options={"xatol": 1e-3})
    if -res.fun >= zq[i]:
        return float(np.exp(res.x)), float(-res.fun)
    return float(grid[i]), float(zq[i])


def _populations(obj):
    if isinstance(obj, SteadyState):
        if "populations" not in obj.extras:
            raise InvalidSystemError("this SteadyState does not come from method='permutational'; "
                                     "pass the system instead")
        return obj
    return steady_state(obj)


# ---------------------------------------------------------------------- QFI
def unconditional_qfi(result_or_system, per_axis: bool = False):
    r"""Quantum Fisher information of the steady state, averaged over Jx, Jy, Jz.

    The steady state is rho = (+)_j rho_j (x) 1_{d_j} with rho_j diagonal in m
    (balanced sector), and J_alpha acts inside each block copy. The spectral
    formula F = 2 sum_kl (p_k - p_l)^2/(p_k + p_l) |<k|J|l>|^2 is homogeneous of
    degree one in the eigenvalues, so the d_j copies add up to the same formula
    applied to the block weights R_j(m) = d_j p_j(m):

    .. math:: F[J_x] = F[J_y] = \sum_j \sum_m \frac{(R_j(m) - R_j(m+1))^2}{R_j(m) + R_j(m+1)}
              (j - m)(j + m + 1), \qquad F[J_z] = 0,

    and F = (F[Jx] + F[Jy] + F[Jz]) / 3 (Fig. 2(d), dashed line). Entanglement is
    witnessed for F > 2N/3.

    Parameters
    ----------
    result_or_system : SteadyState (from this solver) or DipoleSystem
    per_axis : bool
        Also return (F[Jx], F[Jy], F[Jz]).

    Returns
    -------
    float, or (float, (Fx, Fy, Fz)) with ``per_axis``

    Examples
    --------
    >>> from mpsync import DipoleSystem
    >>> F = unconditional_qfi(DipoleSystem.all_to_all(70, f_eff=15, W=7.5))
    >>> F < 2 * 70 / 3   # the unconditional state witnesses no entanglement
    True
    """
    res = _populations(result_or_system)
    R, j, m = (res.extras[k] for k in ("populations", "j", "m"))
    n = res.n
    sector = Sector.build(n, 0)
    nxt = sector.index(j, m + 1)
    ok = nxt >= 0
    a, b = R[ok], R[nxt[ok]]
    den = a + b
    w = np.where(den > 1e-300, (a - b) ** 2 / np.where(den > 1e-300, den, 1.0), 0.0)
    fx = float(np.sum(w * (j[ok] - m[ok]) * (j[ok] + m[ok] + 1)))
    F = (2 * fx) / 3.0
    return (F, (fx, fx, 0.0)) if per_axis else F


# ---------------------------------------------------------------------- dynamics
def _propagate(L, x0, times, progress=False, desc=""):
    """x(t) = exp(L t) x0 at each of the increasing ``times`` (>= 0)."""
    times = np.asarray(times, float)
    out = np.empty((times.size, x0.size), dtype=np.result_type(x0, L.dtype))
    x, t_prev = x0, 0.0
    it = range(times.size)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc=desc)
    L = L.tocsr()
    steps = np.diff(times)
    if times.size > 2 and not progress and steps[0] > 0 and np.allclose(steps, steps[0], rtol=1e-12, atol=0):
        # uniform grid: one call reuses the norm estimates and Taylor degree
        out[:] = spla.expm_multiply(L, x0, start=times[0], stop=times[-1], num=times.size, endpoint=True)
        return out
    for k in it:
        dt = times[k] - t_prev
        if dt > 0:
            x = spla.expm_multiply(L * dt, x)
        out[k] = x
        t_prev = times[k]
    return out


def _dicke_two_time(res, taus, kind, progress):
    """(values, parts) of :func:`dicke_two_time` for a steady state of this solver."""
    system = res.system
    r = rates(system)
    n = system.n
    R, j, m = (res.extras[k] for k in ("populations", "j", "m"))
    parts = {}
    if kind == "J":
        sec = Sector.build(n, -1)  # elements (j, m, m + 1)
        src = Sector.build(n, 0).index(sec.j, sec.m + 1)
        amp = np.sqrt((sec.j + sec.m + 1) * (sec.j - sec.m))
        x0 = np.where(src >= 0, amp * R[np.where(src >= 0, src, 0)], 0.0).astype(complex)
        L = _liouvillian(system, sec)
        xs = _propagate(L, x0, taus, progress, "<J+(tau)J-> ")
        values = xs @ amp
    elif kind == "pair":
        if n < 2:
            raise InvalidSystemError("the pair function needs N >= 2")
        if n > _MAX_N_PAIR:
            raise TooLargeError(f"the pair functions are implemented up to N = {_MAX_N_PAIR} "
                                f"(N = {n} requested); use method='cumulant', or pairs=[] for "
                                "<J+(tau) J-(0)> alone")
        space = SiteSpace(n, -1)
        x0 = space.from_dicke_populations(R, j, m, lower_site=True)
        L = space.liouvillian(r["collective_emission"], r["emission"], r["pumping"], r["delta"], r["g"])
        xs = _propagate(L, x0, taus, progress, "Z_ab(tau) ")
        same = np.empty(taus.size, complex)
        rest = np.empty(taus.size, complex)
        for k, x in enumerate(xs):
            same[k], rest[k] = space.readout(x)
        cross = rest / (n - 1)
        parts = {"same": same, "cross": cross}
        values = 2 * same + 2 * cross
    else:
        raise InvalidSystemError(f"kind must be 'J' or 'pair', got {kind!r}")
    return values, parts


#: arguments of an entry point that are not solver options (:func:`mpsync.solvers.declared_options`
#: leaves them out): the former ``two_time(result, taus, kind=..., fit=...)`` call
LEGACY_ARGUMENTS = {"two_time": ("kind", "fit")}


def two_time(system, taus, pairs=None, steady: SteadyState | None = None, *, progress: bool = False,
             kind: str | None = None, fit: bool = True):
    """Steady-state two-time functions of identical all-to-all dipoles (quantum regression).

    <J+(tau) J-(0)> = Tr[J+ exp(L tau)(J- rho_ss)] with J- rho_ss in the sector
    m - m' = -1 of the Dicke space, and for every pair (by permutation symmetry all
    pairs are equal) G_aa(tau) = <s+_a(tau) s-_a(0)>, G_ab(tau) = <s+_a(tau) s-_b(0)>
    from evolving s-_a rho_ss in the (N - 1 symmetric) x (site a) space, sector -1;
    Z_ab = 2 G_aa + 2 G_ab (docs/physics.md#two-time). Exact (round-off).

    Parameters
    ----------
    system : DipoleSystem
        Permutation symmetric (identical all-to-all dipoles).
    taus : array_like
        Strictly increasing delays >= 0 (1/Gamma).
    pairs : None, int or list of (a, b)
        See :func:`mpsync.solvers.correlations.resolve_pairs`; the pair functions need
        N <= 300 (an empty list gives <J+(tau) J-(0)> alone, at any N).
    steady : SteadyState, optional
        This solver's steady state of ``system``.
    progress : bool
        tqdm bars over the delays.
    kind, fit
        The former call ``two_time(result_or_system, taus, kind="J" | "pair", fit=True)``
        (a string in place of ``pairs`` counts as ``kind``): deprecated, kept for one
        release; it warns and returns what :func:`dicke_two_time` returns.

    Returns
    -------
    TwoTimeResult

    Examples
    --------
    >>> import numpy as np
    >>> from mpsync import DipoleSystem
    >>> r = two_time(DipoleSystem.all_to_all(70, 15, 7.5), np.linspace(0, 2, 41), pairs=[(0, 1)])
    >>> round(1 / r.fits["gamma"][0], 2)   # Gamma / gamma of Fig. S1  # doctest: +SKIP
    0.33
    """
    from ..correlations import assemble, check_taus, resolve_pairs, steady_of

    if isinstance(pairs, str):  # the former positional kind
        kind, pairs = pairs, None
    if kind is not None or isinstance(system, SteadyState):
        import warnings

        warnings.warn("permutational.two_time(result, taus, kind=...) is deprecated and goes in the "
                      "next release; use mpsync.two_time(system, taus, method='permutational') (one "
                      "TwoTimeResult with Z, J, fits and the spectrum)", DeprecationWarning, stacklevel=2)
        return dicke_two_time(system, taus, "J" if kind is None else kind, fit, progress)
    t0 = time.perf_counter()
    taus = check_taus(taus)
    n = system.n
    pairs = resolve_pairs(pairs, n)
    res = steady_of(steady, system, "permutational", steady_state, needs=("populations",))
    J, _ = _dicke_two_time(res, taus, "J", progress)
    parts = {}
    if len(pairs):
        if n == 1:
            parts = {"same": J, "cross": J}
        else:
            _, parts = _dicke_two_time(res, taus, "pair", progress)
    G = lambda a, b: parts["same"] if a == b else parts["cross"]  # noqa: E731
    # identical dipoles: <s+_a(tau) J-(0)> is the same for every a, J / N
    return assemble(system, "permutational", taus, pairs, G, J,
                    diagnostics={"seconds": time.perf_counter() - t0, "N": n},
                    J_sites=np.broadcast_to(J / n, (n, J.size)))


@dataclass
class DickeTwoTime:
    """What :func:`dicke_two_time` returns (the former ``permutational.TwoTimeResult``).

    Attributes
    ----------
    kind : str
    taus : ndarray
    values : ndarray (complex)
        ``kind="J"``: <J+(tau) J-(0)>; ``kind="pair"``: Z_ab(tau).
    rate, amplitude : float
        The fit A exp(-gamma tau) to |values| (:func:`mpsync.observables.fit_decay`).
    parts : dict
        ``kind="pair"``: ``same`` <s+_a(tau) s-_a> and ``cross`` <s+_a(tau) s-_b>.
    """

    kind: str
    taus: np.ndarray
    values: np.ndarray
    rate: float = float("nan")
    amplitude: float = float("nan")
    parts: dict = field(default_factory=dict)
    seconds: float = 0.0


def dicke_two_time(result_or_system, taus, kind: str = "J", fit: bool = True, progress: bool = False):
    """The former ``permutational.two_time(result, taus, kind=...)``, kept for one release.

    Deprecated: use :func:`mpsync.two_time` (``method="permutational"``), which returns
    both functions, fits and the spectrum in one :class:`~mpsync.result.TwoTimeResult`.
    ``kind="J"`` gives <J+(tau) J-(0)>, ``kind="pair"`` Z_ab(tau); ``fit`` fits
    A exp(-gamma tau) to |values|.
    """
    t0 = time.perf_counter()
    res = _populations(result_or_system)
    taus = check_times(taus, "taus")
    values, parts = _dicke_two_time(res, taus, kind, progress)
    out = DickeTwoTime(kind, taus, values, parts=parts)
    if fit and taus.size >= 3:
        out.amplitude, out.rate = fit_decay(taus, values)
    out.seconds = time.perf_counter() - t0
    return out


def _initial_sectors(n, rho1, sectors):
    """Block weights of rho1^{(x)N} in Dicke sectors s (dict s -> vector)."""
    lam, U = np.linalg.eigh(rho1)
    lam = np.clip(lam.real, 0.0, None)
    coherent = abs(rho1[0, 1]) > 0
    if not coherent:
        U = np.eye(2)
        lam = np.real(np.diag(rho1))
    with np.errstate(divide="ignore"):
        l0, l1 = np.log(lam[0]), np.log(lam[1])
    out = {}
    secs = {s: Sector.build(n, s) for s in sectors}
    for s in sectors:
        out[s] = np.zeros(secs[s].size, complex)
    for jv in j_values(n):
        mm = np.arange(-jv, jv + 0.5)
        # log of d_j lam0^(N/2 - m) lam1^(N/2 + m); 0 * log 0 = 0
        with np.errstate(invalid="ignore"):
            e0 = np.where(n / 2 - mm > 0, (n / 2 - mm) * l0, 0.0)
            e1 = np.where(n / 2 + mm > 0, (n / 2 + mm) * l1, 0.0)
        w = np.exp(log_degeneracy(n, jv) + e0 + e1)
        if coherent:
            D = _block_rotation(U, jv)
            block = (D * w) @ D.conj().T
        else:
            block = np.diag(w)
        for s in sectors:
            sec = secs[s]
            # elements (j, m, m - s): rows u = m + j, cols u - s
            idx = sec.index(np.full(mm.size, jv), mm)
            ok = idx >= 0
            u = np.arange(mm.size)[ok]
            out[s][idx[ok]] = block[u, u - s]
    return out, secs


def _block_rotation(U, j):
    """The spin-j representation of the single-site unitary U.

    With U = exp(-i sum_a c_a 2 S_a) (S_a the spin-1/2 matrices in the basis
    0 = down = m -1/2, the j = 1/2 Dicke basis), U^{(x)N} = exp(-i 2 c.J), whose
    block on every copy of spin j is exp(-i 2 c.J^{(j)}).
    """
    from scipy.linalg import expm, logm

    U = U / np.sqrt(np.linalg.det(U))
    K = 1j * logm(U)

    def xyz(jv):
        jp, jm, jz = spin_matrices(jv)
        return (jp + jm) / 2, (jp - jm) / 2j, jz

    c = [np.real(np.trace(K @ (2 * S))) / 2 for S in xyz(0.5)]
    G = sum(ca * 2 * Ja for ca, Ja in zip(c, xyz(j)))
    return expm(-1j * G)


def evolve(system, times, initial="down", progress: bool = False) -> TimeSeries:
    """Exact time evolution from a uniform product state rho1^{(x)N}.

    Integrates dR/dt = L R with :func:`scipy.sparse.linalg.expm_multiply` in the
    balanced Dicke sector (sz, C, zz); when rho1 has a coherence between down and
    up, also in the sectors m - m' = 1 and 2, which give <s-_a>, <sz_a s-_b> and
    <s-_a s-_b>. Times in 1/Gamma.

    Parameters
    ----------
    times : array_like
        Increasing output times >= 0.
    initial : "down", "up", "x", a 2 x 2 density matrix, or a list of N identical ones
    progress : bool
        tqdm bar over output times.
    """
    t0 = time.perf_counter()
    rates(system)
    n = system.n
    times = check_times(times)
    if isinstance(initial, np.ndarray) and initial.shape == (2, 2):
        initial = [initial] * n
    states = product_state(initial, n)
    rho1 = states[0]
    if any(np.max(np.abs(s - rho1)) > 1e-12 for s in states):
        raise NotApplicableError("method='permutational' needs the same initial state on every dipole; "
                                 f"use {_alternatives(system, 'evolve')}")
    coherent = has_coherences([rho1])
    if coherent and n > _MAX_N_COHERENT:
        raise TooLargeError(f"coherent initial states are implemented up to N = {_MAX_N_COHERENT} in "
                            "method='permutational'; start from 'down' or 'up' or use method='cumulant'")
    sectors = (0, 1, 2) if coherent else (0,)
    x0s, secs = _initial_sectors(n, rho1, sectors)
    traj = {}
    for s in sectors:
        L = _liouvillian(system, secs[s])
        traj[s] = _propagate(L, x0s[s], times, progress and s == 0, f"permutational N={n} s={s}")
    sec0 = secs[0]
    snaps = []
    for k in range(times.size):
        mom = collective_moments(n, sec0.j, sec0.m, np.real(traj[0][k]))
        if coherent:
            s1, s2 = secs[1], secs[2]
            x1, x2 = traj[1][k], traj[2][k]
            # <J-> = sum sqrt((j+m)(j-m+1)) R(m, m-1); <Jz J-> carries an extra (m - 1)
            a1 = np.sqrt((s1.j + s1.m) * (s1.j - s1.m + 1))
            jm = np.sum(a1 * x1)
            jzjm = np.sum((s1.m - 1) * a1 * x1)
            a2 = np.sqrt((s2.j + s2.m) * (s2.j - s2.m + 1) * (s2.j + s2.m - 1) * (s2.j - s2.m + 2))
            jmjm = np.sum(a2 * x2)
            off = ~np.eye(n, dtype=bool)
            mom.sm = np.full(n, jm / n, dtype=complex)
            # sum_{a != b} sz_a s-_b = 2 Jz J- + J-
            zsm = np.zeros((n, n), complex)
            smsm = np.zeros((n, n), complex)
            if n > 1:
                zsm[off] = (2 * jzjm + jm) / (n * (n - 1))
                smsm[off] = jmjm / (n * (n - 1))
            mom.zsm, mom.smsm = zsm, smsm
        snaps.append(mom)
    return TimeSeries.from_snapshots(system, times, snaps, METHOD,
                                     diagnostics={"seconds": time.perf_counter() - t0,
                                                  "basis_size": sec0.size, "sectors": list(sectors)})
