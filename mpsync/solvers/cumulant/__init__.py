r"""Second-order cumulant expansion: ``method="cumulant"``.

Solves the Heisenberg equations of the master equation of docs/physics.md#master-equation
(Gamma = 1 units, times in 1/Gamma) for the one- and two-point moments, with
every three-site moment factorised by supplement Eq. 7,

.. math::

    \langle A_a B_b C_c\rangle \approx \langle A_aB_b\rangle\langle C_c\rangle
      + \langle A_a\rangle\langle B_bC_c\rangle + \langle A_aC_c\rangle\langle B_b\rangle
      - 2\langle A_a\rangle\langle B_b\rangle\langle C_c\rangle .

Variables: <sz_a>, C_ab = <s+_a s-_b> and <sz_a sz_b> (the U(1)-symmetric set,
3 N^2 / 2 real numbers); from an initial state with coherences also <s-_a>,
<sz_a s-_b> and <s-_a s-_b>. The equations are N x N matrix expressions
(:mod:`mpsync.solvers.moment_equations`): memory O(N^2), time O(N^3) per
evaluation (matrix products with f and g), no N^3 tensors.

Steady state
    A Newton iteration on the U(1) set (:mod:`mpsync.solvers.cumulant.newton_steady`).
    <sz_a sz_b> is eliminated exactly (its equation is linear in it with the
    constant rate -2Q), leaving <sz> and C in one N x N matrix. At fixed <sz>
    the pair equations are linear in C, ``A C + C A^H + R = 0`` with
    ``A = i delta - Q/2 + diag(sz) K^*`` (Q = Gamma + W, K = (f + i g)/2): a
    Lyapunov equation. Each Newton step is solved by GMRES preconditioned with
    that Lyapunov operator, inverted in the eigenbasis of A (exactly, through
    one symmetric eigensolve of |S|^{1/2} K |S|^{1/2}, when g = 0, delta is
    uniform and <sz> has one sign; otherwise with <sz> replaced by its mean in
    the eigenbasis of K^*). The Jacobian-vector products are exact (the
    equations are quadratic) and cost one matrix product; while the Newton
    forcing term is loose they and the preconditioner run in single precision.
    The iteration starts from the ground state as pseudo-transient continuation
    (each step solves (1/dt - J) dx = F, an implicit Euler step, with dt
    growing as res_old / res_new until the steps are Newton steps), which
    follows the dynamics onto the attracting root. While the collective pair
    mode grows (rightmost Re a > 0) dt is capped at ``ptc_cap / Re a``: a longer
    implicit step would project that mode out and land on the unstable
    uncorrelated root of a synchronising ensemble (docs/physics.md#pitfall-cumulant-roots). A root
    outside the physical range (|sz| <= 1, |C_ab| <= 1/2, |zz| <= 1) or on an
    unstable branch (:func:`rightmost_pair_rate` > 0.05 Q) is rejected, kicked
    along its growing pair mode and continued. The final residual max|d/dt|
    is ``diagnostics["residual"]``. Identical all-to-all dipoles reduce
    exactly to three equations (:func:`symmetric_moments`, any N).

Accuracy (measured in ``tests/test_cumulant.py``)
    * Where it agrees: g = 0 and W above threshold. N = 5, random positive f vs
      the exact solver: <sz> and C_ab within 1.6e-3 (C_ab ~ 0.05), Z_Q^2 within
      3 %. All-to-all N = 70, f_eff = 15 vs the permutational (exact) solver:
      Z_Q^2 within 0.5 % for W < Gamma (where the state is uncorrelated-like and
      subradiant pair correlations are tiny), and an overestimate of 10-18 % for
      2 <= W <= 14 with <sz> lower by <= 0.03 -- a bias that does not shrink
      with N at fixed f_eff. The large-N, large-f_eff limit C -> x(1 - x)/2,
      x = W / f_eff, is reproduced (within 2 % at f_eff = 400).
    * The paper reports good agreement except at W << Gamma, where subradiance
      dominates; for the two-time functions (Fig. S1) the regression closure
      below also factorises same-site products, which at N = 3-5 leaves
      8-13 % deviations in Z_ab(tau) and a decay rate ~ 25 % too small.
    * Where it degrades: coherent exchange g. The error grows with |g|
      (N = 5, W = 2: max |dC| 1.6e-3 at g = 0, 3.9e-3 at |g| ~ 1, 1.3e-2 at
      |g| ~ 4), as the supplement warns ("provided the elastic couplings are
      sufficiently small"). Use ``method="mpo"`` or ``"exact"`` there.

Two-time correlations
    :func:`two_time` (reached as ``mpsync.two_time(..., method="cumulant")``) applies the quantum regression theorem with
    the closure <sz_a(t+tau) s+_j(t+tau) s-_b(t)> ~ <sz_a> <s+_j(t+tau) s-_b(t)>
    (supplement): G(tau) = exp(M tau) C with M = i delta - Q/2 + diag(sz) K^*, so
    Z_ab(tau) = G_aa + G_ab + G_ba + G_bb. :func:`fit_pair_spectra` fits
    A cos(nu tau) exp(-gamma tau) per pair; :func:`mpsync.paper.studies.fig3b_histogram_data` gives
    the data of Fig. 3(b).
"""

from __future__ import annotations

import time

import numpy as np
from scipy import integrate

from ...errors import (ConvergenceError, InvalidOptionError, InvalidSystemError, check_memory,
                       warn_if_not_lindblad)
from ...result import Moments, SteadyState, TimeSeries
from ...states import check_times, has_coherences, product_state
from . import newton_steady as _steady
from ..moment_equations import Couplings, rhs_full, rhs_u1

__all__ = ["steady_state", "evolve", "two_time", "default_taus", "two_time_correlations", "pair_correlation",
           "fit_pair_spectra", "symmetric_moments",
           "rightmost_pair_rate", "rhs", "estimate_memory"]

METHOD = "cumulant"


# ---------------------------------------------------------------------------- memory
def estimate_memory(n: int, krylov: int | None = 15, complex_: bool = True) -> float:
    """Peak bytes of the steady-state solve: O(N^2) (about krylov + 20 N x N arrays).

    With ``krylov=None``: :func:`evolve` (the integrator's ~13 stages of
    2 N^2 complex numbers).
    """
    if krylov is None:
        return float(n) ** 2 * 16 * 36
    per = 16 if complex_ else 8
    return float(n) ** 2 * per * (24 + krylov)


def _check_system(system):
    if system.n < 2:
        raise InvalidSystemError("the cumulant expansion needs N >= 2 dipoles; use method='exact' for one")
    warn_if_not_lindblad(system, "method='cumulant'")


def rhs(system_or_couplings, sz, C, zz, m=None, Y=None, P=None):
    """Time derivatives of the cumulant variables (public for tests and checks).

    Parameters
    ----------
    system_or_couplings : DipoleSystem
    sz, C, zz : arrays
        <sz_a>, <s+_a s-_b> (diagonal (1 + sz)/2) and <sz_a sz_b>.
    m, Y, P : arrays, optional
        <s-_a>, <sz_a s-_b>, <s-_a s-_b> (zero diagonals). When given, the
        U(1)-breaking equations are used.

    Returns
    -------
    dict with keys ``sz``, ``correlations``, ``zz`` (and ``sm``, ``zsm``, ``smsm``).

    Examples
    --------
    The sanity equation of docs/physics.md#moment-equations follows from ``d["sm"]``.
    """
    cp = system_or_couplings if isinstance(system_or_couplings, Couplings) else Couplings(system_or_couplings)
    sz = np.asarray(sz, float)
    C = np.array(C, dtype=complex)
    zz = np.asarray(zz, float)
    if m is None:
        dsz, dC, dzz = rhs_u1(cp, sz, C, zz)
        return {"sz": dsz, "correlations": dC, "zz": dzz}
    n = cp.n
    m = np.asarray(m, complex)
    Y = np.zeros((n, n), complex) if Y is None else np.array(Y, complex)
    P = np.zeros((n, n), complex) if P is None else np.array(P, complex)
    np.fill_diagonal(Y, 0.0)
    np.fill_diagonal(P, 0.0)
    out = rhs_full(cp, sz, m, C, zz, Y, P)
    return dict(zip(("sz", "sm", "correlations", "zz", "zsm", "smsm"), out))


# ---------------------------------------------------------------------------- initial states
def _initial_variables(states):
    """Moments of a product state: C_ab = <s+_a><s-_b>, zz = sz sz, etc."""
    sz = np.array([np.real(r[1, 1] - r[0, 0]) for r in states])
    m = np.array([r[1, 0] for r in states], dtype=complex)   # <s-> = Tr(rho |0><1|) = rho_10
    p = Moments.of_product_state(sz, m)
    return p.sz, p.sm, p.correlations, p.zz, p.zsm, p.smsm


# ---------------------------------------------------------------------------- evolve
def evolve(system, times, initial="down", rtol: float = 1e-8, atol: float = 1e-10,
           integrator: str = "DOP853", u1: bool | None = None, progress: bool = False):
    """Time evolution of the cumulant moments.

    Parameters
    ----------
    system : DipoleSystem
    times : array_like
        Output times (1/Gamma), increasing, >= 0; integration starts at 0.
    initial : "down", "up", "x" or list of 2 x 2 density matrices
        A product state. With coherences the U(1)-breaking variables are
        evolved too.
    rtol, atol : float
        Tolerances of :func:`scipy.integrate.solve_ivp`.
    integrator : str
        ``solve_ivp`` method (``"DOP853"``, ``"RK45"``, ``"LSODA"``, ...).
    u1 : bool, optional
        Force the U(1)-symmetric equations (default: when the initial state
        has no coherences).
    progress : bool
        tqdm bar over the integration time.

    Returns
    -------
    TimeSeries
    """
    t0 = time.perf_counter()
    _check_system(system)
    times = check_times(times)
    n = system.n
    states = product_state(initial, n)
    if u1 is None:
        u1 = not has_coherences(states)
    check_memory(estimate_memory(n, krylov=None) * (1 if u1 else 2), f"N={n} cumulant evolution")
    cp = Couplings(system)
    sz0, m0, C0, zz0, Y0, P0 = _initial_variables(states)
    bar = _bar(progress, float(times[-1]))
    nfev = [0]
    if u1:
        def unpack(y):
            sz = y[:n].real
            C = y[n:n + n * n].reshape(n, n)
            zz = y[n + n * n:].reshape(n, n).real
            return sz, C, zz

        def fun(t, y):
            nfev[0] += 1
            _tick(bar, t)
            sz, C, zz = unpack(y)
            C = C.copy()
            C[np.diag_indices(n)] = 0.5 * (1 + sz)
            dsz, dC, dzz = rhs_u1(cp, sz, C, zz)
            return np.concatenate([dsz.astype(complex), dC.ravel(), dzz.ravel().astype(complex)])

        y0 = np.concatenate([sz0.astype(complex), C0.ravel(), zz0.ravel().astype(complex)])
    else:
        sizes = [n, n, n * n, n * n, n * n, n * n]
        cuts = np.cumsum(sizes)[:-1]

        def unpack(y):
            sz, m, C, zz, Y, P = np.split(y, cuts)
            return (sz.real, m, C.reshape(n, n), zz.real.reshape(n, n), Y.reshape(n, n), P.reshape(n, n))

        def fun(t, y):
            nfev[0] += 1
            _tick(bar, t)
            sz, m, C, zz, Y, P = unpack(y)
            C = C.copy()
            C[np.diag_indices(n)] = 0.5 * (1 + sz)
            out = rhs_full(cp, sz, m, C, zz, Y, P)
            return np.concatenate([np.asarray(o, complex).ravel() for o in out])

        y0 = np.concatenate([a.astype(complex).ravel() for a in (sz0, m0, C0, zz0, Y0, P0)])
    sol = integrate.solve_ivp(fun, (0.0, float(times[-1])), y0, method=integrator, t_eval=times,
                              rtol=rtol, atol=atol)
    if bar is not None:
        bar.close()
    if not sol.success:
        raise ConvergenceError(f"cumulant time integration failed: {sol.message}")
    snaps = []
    for k in range(len(times)):
        if u1:
            sz, C, zz = unpack(sol.y[:, k])
            C = C.copy()
            C[np.diag_indices(n)] = 0.5 * (1 + sz)
            zz = zz.copy()
            np.fill_diagonal(zz, 1.0)
            snaps.append(Moments(sz, C, zz))
        else:
            sz, m, C, zz, Y, P = unpack(sol.y[:, k])
            C = C.copy()
            C[np.diag_indices(n)] = 0.5 * (1 + sz)
            zz = zz.copy()
            np.fill_diagonal(zz, 1.0)
            snaps.append(Moments(sz, C, zz, sm=m, zsm=Y, smsm=P))
    diag = {"seconds": time.perf_counter() - t0, "nfev": nfev[0], "u1": bool(u1),
            "integrator": integrator, "rtol": rtol, "atol": atol}
    return TimeSeries.from_snapshots(system, times, snaps, METHOD, diagnostics=diag)


def _bar(progress, total):
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc="cumulant", unit="1/Gamma")


def _tick(bar, t):
    if bar is not None:
        bar.n = min(float(t), bar.total)
        bar.refresh()


# ---------------------------------------------------------------------------- steady state
def steady_state(system, tol: float = 1e-8, maxiter: int = 40, krylov: int = 15,
                 max_restarts: int = 4, floor: float = 0.05, check_stability: bool = True,
                 stability_threshold: float = 0.05, symmetric="auto", ptc_dt="auto",
                 ptc_cap: float = 0.45, x0=None, progress: bool = False):
    r"""Steady state of the second-order cumulant equations.

    Solves d<sz>/dt = dC/dt = d<sz sz>/dt = 0 (the U(1) set; Gamma = 1 units) by
    Newton-GMRES with pseudo-transient continuation on the equations with
    <sz sz> eliminated exactly (:mod:`mpsync.solvers.cumulant.newton_steady`), from
    the ground state.

    Parameters
    ----------
    system : DipoleSystem
        Any f, g, delta, W (f need not be positive semidefinite).
    tol : float
        Target residual max |d/dt| of the moment equations (units of Gamma).
    maxiter : int
        Newton (pseudo-time) steps per attempt.
    krylov : int
        GMRES restart length (memory: ``krylov`` vectors of N^2 numbers).
    max_restarts : int
        How often an unphysical or unstable root may be rejected (each time
        the state is kicked along the unstable pair mode and continued).
    floor : float
        Regularisation of the Lyapunov preconditioner (fraction of Q).
    check_stability : bool
        Reject roots on an unstable branch: the rightmost eigenvalue a of
        A = i delta - Q/2 + diag(sz) K^* must satisfy Re a <= threshold * Q
        (:func:`rightmost_pair_rate`).
    stability_threshold : float
        The threshold above (physical roots: Re a / Q <~ 0; unstable ones ~ 0.1-1).
    symmetric : "auto", bool
        For identical all-to-all dipoles (``system.is_permutation_symmetric``)
        solve the three reduced equations of :func:`symmetric_moments` instead
        of the N x N ones (``"auto"``: whenever the system is symmetric).
    ptc_dt : "auto", float or None
        First pseudo-time step (1/Gamma); ``"auto"``: 2.5 / (Gamma + W) from the
        ground state, plain Newton when ``x0`` is given; ``None``: plain damped
        Newton (may converge to the unstable root and then rely on the
        restarts).
    ptc_cap : float
        While the collective pair mode grows (rightmost Re a > 0.01 Q) the pseudo-time
        step is capped at ``ptc_cap / Re a``, so the continuation follows the
        growth of the mode instead of converging to the unstable uncorrelated root.
    x0 : SteadyState, optional
        A previous solution to start from (e.g. in a sweep over W).
    progress : bool
        Report each Newton step (residual, GMRES iterations, pseudo-time step,
        rightmost pair rate) and the stability check through ``tqdm.write``.

    Returns
    -------
    SteadyState
        ``diagnostics``: ``seconds``, ``residual`` (max |d/dt| of <sz> and C; the
        <sz sz> equation holds exactly), ``newton_log``, ``nfev``,
        ``krylov_iterations``, ``restarts``, ``pair_rate``.

    Examples
    --------
    >>> import mpsync
    >>> s = mpsync.DipoleSystem.all_to_all(50, f_eff=10.0, W=5.0)
    >>> ss = mpsync.steady_state(s, method="cumulant")
    >>> bool(0.2 < ss.ZQ < 0.36)
    True
    """
    t0 = time.perf_counter()
    _check_system(system)
    for name, value, ok in (("tol", tol, tol > 0), ("maxiter", maxiter, maxiter >= 1),
                            ("krylov", krylov, krylov >= 1), ("floor", floor, floor >= 0),
                            ("ptc_cap", ptc_cap, ptc_cap > 0), ("max_restarts", max_restarts, max_restarts >= 0),
                            ("ptc_dt", ptc_dt, ptc_dt in ("auto", None) or (np.isscalar(ptc_dt) and ptc_dt > 0))):
        if not ok:
            raise InvalidOptionError(f"cumulant steady_state: {name} = {value!r} is out of range")
    n = system.n
    if symmetric is True or (symmetric == "auto" and system.is_permutation_symmetric and x0 is None):
        if not system.is_permutation_symmetric:
            raise InvalidSystemError("symmetric=True needs identical all-to-all dipoles "
                                     "(uniform f, g and delta); use symmetric=False")
        check_memory(40.0 * n * n, f"N={n} cumulant moments")
        fp = float(system.f[0, 1])
        s_, c_, z_, res = symmetric_moments(n, fp, system.W, system.gamma)
        if progress:
            import sys

            print(f"cumulant N={n}: identical all-to-all dipoles, 3 symmetric equations solved "
                  f"(residual {res:.3g}, {time.perf_counter() - t0:.2f} s)", file=sys.stderr)
        C = np.full((n, n), c_)
        np.fill_diagonal(C, 0.5 * (1 + s_))
        zz = np.full((n, n), z_)
        np.fill_diagonal(zz, 1.0)
        diag = {"seconds": time.perf_counter() - t0, "residual": res, "symmetric": True,
                "n_variables": 3}
        return SteadyState(system, Moments(np.full(n, s_), C, zz), METHOD, diag)
    cp = Couplings(system)
    check_memory(estimate_memory(n, krylov, not cp.real), f"N={n} cumulant steady state",
                 "method='meanfield'")
    report = None
    if progress:
        import sys

        from tqdm.auto import tqdm

        def report(line):
            tqdm.write(line, file=sys.stderr)
    red = _steady.ReducedU1(cp)
    pre = _steady.LyapunovPreconditioner(red, floor=floor)
    if x0 is not None:
        m = x0.moments
        X = red.pack(m.sz, m.correlations)
    else:
        X = red.pack(-np.ones(n), np.zeros((n, n)))
    dt = (2.5 / cp.Q if x0 is None else None) if ptc_dt == "auto" else ptc_dt
    nfev = nkrylov = restarts = 0
    rate = float("nan")
    log: list = []
    while True:
        X, res, nf, nk = _steady.newton_ptc(red, X, pre, tol, maxiter, krylov, dt, ptc_cap, log, report)
        nfev += nf
        nkrylov += nk
        sz, C = red.split(X)
        zz = red.zz(X)
        ok = res <= max(tol * 1e3, 1e-8) and _steady.is_physical(sz, C, zz)
        vec = None
        if ok and check_stability:
            rate, vec = _steady.rightmost_mode(cp, sz, vectors=True)
            ok = rate <= stability_threshold * cp.Q
            if report:
                report(f"stability: max Re a / Q = {rate / cp.Q:.3g} -> {'accept' if ok else 'reject'}, "
                       f"{time.perf_counter() - t0:.1f} s")
        if ok or restarts >= max_restarts:
            break
        restarts += 1
        if vec is None:          # not converged or unphysical: start over from the ground state
            X = red.pack(-np.ones(n), np.zeros((n, n)))
        else:                    # an unstable root: push along the growing pair mode
            X = _steady.kick(red, X, vec)
        dt = 0.5 * (2.5 / cp.Q if ptc_dt in ("auto", None) else float(ptc_dt)) / restarts
        ptc_cap = 0.5 * ptc_cap
    if not ok:
        raise ConvergenceError(
            f"the cumulant steady-state iteration found no stable physical root (residual {res:.3g} "
            f"after {restarts} restarts); try evolve(..., method='cumulant') to long times")
    diag = {"seconds": time.perf_counter() - t0, "residual": float(res), "newton_log": log,
            "nfev": nfev, "krylov_iterations": nkrylov, "restarts": restarts,
            "n_variables": red.size, "symmetric": False, "pair_rate": rate,
            "real_arithmetic": cp.real}
    return SteadyState(system, Moments(sz, C, zz), METHOD, diag)


def rightmost_pair_rate(system_or_couplings, sz) -> float:
    """Largest Re a of A = i delta - Q/2 + diag(sz) K^* (units of Gamma).

    The pair equations at fixed <sz> grow like exp((a_i + a_j^*) t): a root of
    the cumulant equations with max Re a clearly above 0 sits on an unstable
    branch (e.g. the uncorrelated root of a synchronising ensemble, which a root
    solve started too early converges to). Physical roots have max Re a <~ 0
    (marginal collective mode, exactly 0 in mean field).
    """
    cp = system_or_couplings if isinstance(system_or_couplings, Couplings) else Couplings(system_or_couplings)
    return _steady.rightmost_mode(cp, sz)


# ---------------------------------------------------------------------------- two-time functions
def _regression_matrix(cp: Couplings, sz):
    """M of the quantum regression equations: dG/dtau = M G, G_jb = <s+_j(tau) s-_b>."""
    return np.diag(1j * cp.delta - 0.5 * cp.Q) + np.asarray(sz, float)[:, None] * cp.Kc


def default_taus(state, n_tau: int = 400) -> np.ndarray:
    """Delays that resolve the slowest regression mode: ``n_tau`` points up to
    5 / (its decay rate, at least 0.02 Q), units of 1/Gamma."""
    cp = Couplings(state.system)
    mu = np.linalg.eigvals(_regression_matrix(cp, state.sz))
    return _default_taus(mu, cp.Q, n_tau)


def _default_taus(mu, Q, n_tau=400):
    slow = np.max(mu.real)
    rate = max(-slow, 0.02 * Q)
    return np.linspace(0.0, 5.0 / rate, n_tau)


class _Regression:
    """G(tau) = exp(M tau) C of the cumulant's regression equations, sliced on demand.

    In the eigenbasis of M (O(N^3) once): the diagonal G_aa, a column G_.b, a row
    G_b., and 1^T G 1 = <J+(tau) J-(0)> each cost O(N T); a nearly defective M
    (condition of its eigenvectors >= 1e10) propagates C itself on an even grid.
    """

    def __init__(self, state, taus=None, n_tau: int = 400):
        cp = Couplings(state.system)
        self.n = n = cp.n
        check_memory(8 * 16.0 * n * n, f"N={n} two-time correlations")
        M = _regression_matrix(cp, state.sz)
        C = np.asarray(state.correlations, complex)
        mu, V = np.linalg.eig(M)
        if taus is None:
            taus = _default_taus(mu, cp.Q, n_tau)
        self.taus = taus = np.asarray(taus, float)
        self.eigen = np.linalg.cond(V) < 1e10
        if self.eigen:
            self.V, self.B = V, np.linalg.solve(V, C)
            self.E = np.exp(mu[:, None] * taus[None, :])             # (N, T)
            self.diag = (V * self.B.T) @ self.E                      # G_aa(tau)
        else:
            from scipy.sparse.linalg import expm_multiply
            if not np.allclose(np.linspace(taus[0], taus[-1], len(taus)), taus):
                raise InvalidSystemError("for a defective regression matrix taus must be evenly spaced")
            self.Gs = expm_multiply(M, C, start=taus[0], stop=taus[-1], num=len(taus), endpoint=True)
            self.diag = np.einsum("taa->at", self.Gs)

    def column(self, b):
        """(N, T): G_ab(tau) for every a."""
        if self.eigen:
            return self.V @ (self.B[:, b, None] * self.E)
        return self.Gs[:, :, b].T

    def row(self, b):
        """(N, T): G_ba(tau) for every a."""
        if self.eigen:
            return (self.B * self.V[b][:, None]).T @ self.E
        return self.Gs[:, b, :].T

    def collective(self):
        """(T,): <J+(tau) J-(0)> = sum_ab G_ab(tau)."""
        if self.eigen:
            return self.V.sum(axis=0) @ (self.B.sum(axis=1)[:, None] * self.E)
        return self.Gs.sum(axis=(1, 2))


def two_time(system, taus, pairs=None, steady: SteadyState | None = None):
    """Steady-state two-time functions with the cumulant's regression closure.

    dG/dtau = M G, G(0) = C, M = i delta - Q/2 + diag(sz) K^* (module docstring), with
    G_ab(tau) = <s+_a(tau) s-_b(0)>, Z_ab = G_aa + G_ab + G_ba + G_bb and
    <J+(tau) J-(0)> = sum_ab G_ab (docs/physics.md#two-time). O(N^3) once, then
    O(N T) per site in the pairs, so N in the thousands. Approximate: where the
    cumulant closure fails (strong exchange, small N; module docstring) so do these.

    Parameters
    ----------
    system : DipoleSystem
    taus : array_like
        Strictly increasing delays >= 0 (1/Gamma).
    pairs : None, int or list of (a, b)
        See :func:`mpsync.solvers.correlations.resolve_pairs`.
    steady : SteadyState, optional
        This solver's steady state of ``system``.

    Returns
    -------
    TwoTimeResult
        No ``errors``: the closure's error is not estimated (compare with
        ``method="exact"`` or ``"mpo"``).

    Examples
    --------
    >>> import numpy as np, mpsync
    >>> r = two_time(mpsync.DipoleSystem.all_to_all(20, 8.0, 4.0), np.linspace(0, 3, 61))
    >>> r.Z.shape
    (19, 61)
    """
    from ..correlations import assemble, check_taus, pair_sites, resolve_pairs, steady_of

    t0 = time.perf_counter()
    taus = check_taus(taus)
    pairs = resolve_pairs(pairs, system.n)
    if system.n < 2:
        raise InvalidSystemError("method='cumulant' needs N >= 2 dipoles; use method='exact'")
    state = steady_of(steady, system, METHOD, steady_state)
    reg = _Regression(state, taus)
    cols, rows = {}, {}
    for b in pair_sites(pairs):
        cols[b], rows[b] = reg.column(b), reg.row(b)

    def G(a, b):
        if a == b:
            return reg.diag[a]
        return cols[b][a] if b in cols else rows[a][b]

    return assemble(system, METHOD, taus, pairs, G, reg.collective(),
                    diagnostics={"seconds": time.perf_counter() - t0, "N": system.n,
                                 "closure": "<sz_a s+_j(tau) s-_b> ~ <sz_a> <s+_j(tau) s-_b>"})


def two_time_correlations(state, site: int, taus=None, n_tau: int = 400):
    """Pair functions Z_ab(tau) of one dipole b against every other, in the steady state.

    Kept for one release beside :func:`mpsync.two_time` (``method="cumulant"``, which
    returns the same Z_ab with fits and the spectrum in a
    :class:`~mpsync.result.TwoTimeResult`); this thin form returns arrays and picks
    default delays.

    Z_ab(tau) = <(s+_a(tau) + s+_b(tau)) (s-_a + s-_b)> (docs/physics.md#two-time), from the
    quantum regression theorem with the cumulant closure
    <sz_a(tau) s+_j(tau) s-_b> ~ <sz_a> <s+_j(tau) s-_b> (supplement)::

        dG/dtau = M G,  G(0) = C,  M = i delta - Q/2 + diag(sz) K^*,

    G_jb(tau) = <s+_j(tau) s-_b(0)>, K = (f + i g)/2 (zero diagonal). Solved in the
    eigenbasis of M (O(N^3) once, O(N^2 T) for the three slices needed).

    Parameters
    ----------
    state : SteadyState or DipoleSystem
        A cumulant steady state (a system is solved first).
    site : int
        The chosen dipole b.
    taus : array, optional
        Delays (1/Gamma); default 400 points up to 5 / (slowest decay rate of M).
    n_tau : int
        Number of default delays.

    Returns
    -------
    taus : (T,) array
    Z : (N, T) complex array
        Row a is Z_ab(tau); row b holds 4 <s+_b(tau) s-_b>.

    Examples
    --------
    >>> import mpsync
    >>> s = mpsync.DipoleSystem.all_to_all(20, 8.0, 4.0)
    >>> taus, Z = two_time_correlations(s, site=0)
    >>> Z.shape[0]
    20
    """
    if not isinstance(state, SteadyState):
        state = steady_state(state)
    n = state.system.n
    b = int(site)
    if not 0 <= b < n:
        raise InvalidSystemError(f"site must be between 0 and {n - 1}, got {site}")
    reg = _Regression(state, taus, n_tau)
    diag = reg.diag
    Z = diag + reg.column(b) + reg.row(b) + diag[b][None, :]
    return reg.taus, Z


def pair_correlation(state, a: int, b: int, taus=None):
    """Z_ab(tau) for one pair (see :func:`two_time_correlations`); returns (taus, Z)."""
    taus, Z = two_time_correlations(state, b, taus)
    return taus, Z[a]


def fit_pair_spectra(taus, Z, site: int | None = None):
    """Fit A cos(nu tau) exp(-gamma tau) to Re Z_ab(tau) for every row.

    Uses :func:`mpsync.observables.fit_damped_cosine`.

    Parameters
    ----------
    taus : (T,) array
    Z : (N, T) array
    site : int, optional
        Row to skip (the chosen dipole itself).

    Returns
    -------
    dict with ``A``, ``nu``, ``gamma`` ((N,) arrays, nan at ``site``) and ``others``.
    """
    from ...observables import fit_damped_cosine

    Z = np.atleast_2d(Z)
    n = Z.shape[0]
    A = np.full(n, np.nan)
    nu = np.full(n, np.nan)
    gam = np.full(n, np.nan)
    rows = [a for a in range(n) if a != site]
    import warnings

    from scipy.optimize import OptimizeWarning
    with warnings.catch_warnings():
        # a flat (unsynchronised, fully decayed) curve leaves the covariance undefined
        warnings.simplefilter("ignore", OptimizeWarning)
        for a in rows:
            A[a], nu[a], gam[a] = fit_damped_cosine(taus, Z[a])
    return {"A": A, "nu": nu, "gamma": gam, "others": np.array(rows)}


# ---------------------------------------------------------------------------- permutation symmetry
def _symmetric_rhs(y, n, fp, Q, D):
    """U(1) cumulant equations for identical all-to-all dipoles (pair rate fp = f_ab).

    With sz_a = s, C_ab = c, zz_ab = z for every a != b the N x N equations reduce to::

        ds = -Q s + D - 2 (N - 1) fp c
        dc = -Q c + fp (z - s^2)/2 + s fp [(N - 2) c + (1 + s)/2]
        dz = -2 Q z + 2 D s + 4 fp c - 4 s (N - 2) fp c

    (a uniform g only shifts the frequency and drops out).
    """
    s, c, z = y
    ds = -Q * s + D - 2.0 * (n - 1) * fp * c
    dc = -Q * c + 0.5 * fp * (z - s * s) + s * fp * ((n - 2) * c + 0.5 * (1 + s))
    dz = -2.0 * Q * z + 2.0 * D * s + 4.0 * fp * c - 4.0 * s * (n - 2) * fp * c
    return np.array([ds, dc, dz])


def symmetric_moments(n: int, f_pair: float, W: float, gamma: float = 1.0, tol: float = 1e-13):
    """Cumulant steady state (s, c, z) of N identical all-to-all dipoles in O(1).

    Integrates the three reduced equations (:func:`_symmetric_rhs`) from the
    ground state to convergence, so the physical branch is the one reached
    (docs/physics.md#pitfall-cumulant-roots), then polishes with a Newton step.

    Parameters
    ----------
    n : int
    f_pair : float
        f_ab for a != b (f_eff / N for :meth:`DipoleSystem.all_to_all`).
    W, gamma : float

    Returns
    -------
    (s, c, z, residual): <sz>, <s+_a s-_b> and <sz_a sz_b> for a != b.
    """
    from scipy import optimize

    Q, D = gamma + W, W - gamma
    fun = lambda t, y: _symmetric_rhs(y, n, f_pair, Q, D)  # noqa: E731
    y = np.array([-1.0, 0.0, 1.0])
    t_chunk = 20.0 / Q
    res = np.inf
    for _ in range(200):
        sol = integrate.solve_ivp(fun, (0.0, t_chunk), y, method="LSODA", rtol=1e-10, atol=1e-13)
        y = sol.y[:, -1]
        res = float(np.max(np.abs(fun(0.0, y))))
        if res < 1e-6:
            break
        t_chunk *= 1.5
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # "not making progress" at a converged y
        root = optimize.fsolve(lambda v: _symmetric_rhs(v, n, f_pair, Q, D), y, xtol=1e-13)
    if np.max(np.abs(root - y)) < 1e-3:
        y = root
    res = float(np.max(np.abs(_symmetric_rhs(y, n, f_pair, Q, D))))
    return float(y[0]), float(y[1]), float(y[2]), res
