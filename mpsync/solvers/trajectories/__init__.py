r"""Quantum trajectories: jump (MCWF) and diffusive (QSD, homodyne) unravellings.

Unravels the master equation of docs/physics.md#master-equation (Gamma = 1 units, times in
1/Gamma) into pure states over the 2^N amplitudes of N dipoles, with

.. math::

    H_\mathrm{eff} = H - \tfrac{i}{2}\sum_{ab} f_{ab}\, s^+_a s^-_b - \tfrac{iW}{2}\sum_a s^-_a s^+_a,
    \qquad L_k = \sqrt{l_k}\sum_b V_{bk}\, s^-_b,\quad L^W_a = \sqrt W\, s^+_a,

f = V diag(l) V^T (round-off negatives clipped, l_k ~ 0 dropped). H_eff is a sparse
matrix in the excitation-sector order of :mod:`mpsync.solvers.trajectories.statevector` (never dense).

Jump basis (``jump_basis=``)
    Any A with f = A A^T gives jumps L_k = sum_b A_bk s-_b with the same master
    equation (sum_k L_k rho L_k^+ = sum_ab f_ab s-_b rho s+_a, and sum_k L_k^+ L_k =
    sum_ab f_ab s+_a s-_b): unconditional quantities do not depend on the choice,
    conditional ones (what a detector records) do, for jumps and homodyne. With a
    degenerate f (all-to-all with f_ab < Gamma: eigenvalue Gamma - f_ab, N - 1 times)
    even the eigenmodes are not unique. Two documented choices:
    ``"eigen"`` (default): A = V sqrt(l), the eigenmodes of f, orthogonal channels
    (within a degenerate eigenspace: whatever basis LAPACK returns).
    ``"local"``: local emission plus collective modes, f = l_min 1 + (f - l_min 1):
    sqrt(l_min) s-_a on every dipole (independent emission at the smallest rate of
    f) and the eigenmodes of the positive semidefinite remainder. For the all-to-all
    ensemble this is the textbook model of independent decay at rate Gamma - f_ab
    plus one superradiant channel sqrt(f_ab) sum_b s-_b, with no arbitrary choice
    left; for f_ab = Gamma (f_eff = N, rank one) both bases are the one collective
    mode.

Unravellings (``unravelling=``), named by the detection they model
    ``"jumps"`` (photon counting; Monte Carlo wave function, waiting-time method): the unnormalised
    state follows d psi/dt = -i H_eff psi until ||psi||^2 falls to a uniform random
    r; then a jump L_j is chosen with probability ||L_j psi||^2 / sum. Between jumps
    the propagator exp(-i H_eff h) is a Taylor series of the sector block (scalar
    part of the diagonal factored out exactly), summed to a relative tolerance
    ``tol`` (default 1e-12) with h ||H - mu||_1 <= 3; the series is also the dense
    output psi(theta h) = sum_m theta^m w_m, so the jump time solves the polynomial
    equation ||psi(theta h)||^2 = r (Brent) to round-off: no time-step error.
    A trajectory started in a basis state stays in one excitation sector.
    ``"heterodyne"`` (quantum state diffusion, Gisin-Percival, complex Wiener noise
    d xi_j, E[d xi d xi*] = dt; ``"diffusion"`` is accepted as its old name):
    d psi = [-i H_eff + sum_j (<L_j>^* L_j - |<L_j>|^2 / 2)] psi dt + sum_j (L_j - <L_j>) psi d xi_j.
    ``"homodyne"`` (one quadrature of each channel): real noise dW_j, x_j = <L_j + L_j^+>:
    d psi = [-i H_eff + sum_j (x_j L_j / 2 - x_j^2 / 8)] psi dt + sum_j (L_j - x_j / 2) psi dW_j.
    Both diffusive equations are integrated with the Euler-Maruyama scheme (strong
    order 1/2, weak order 1: averages carry an O(dt) bias) with a fixed step
    ``dt`` (default 1e-3), renormalising after each step; steps end exactly on
    the output times. ``extrapolate=True`` reruns each trajectory with steps 2 dt
    on the same Brownian path (increments summed pairwise) and reports
    2 A(dt) - A(2 dt): Talay-Tubaro extrapolation, weak order 2, 1.5x the cost.
    Measured (N = 8 all-to-all, f_eff = 7, W = 10): plain Euler-Maruyama biases the
    conditional QFI by ~+0.024 per 1e-3 of dt, as large as its excess over 2N/3.

Averages
    ``steady_state`` averages the moments over trajectories and over the samples
    t_burn, t_burn + sample_dt, ..., t_burn + t_avg; standard errors are over the
    per-trajectory time averages (independent samples). ``evolve`` averages over
    trajectories at each output time.

Reproducibility
    Trajectory i uses ``numpy.random.default_rng(spawn_seeds(seed, ntraj)[i])`` and
    nothing else, so the same seed gives bit-identical trajectories whatever the
    executor or the number of workers.

Conditional QFI
    For each trajectory, F_Q(psi_c) = (4/3)(Var J_x + Var J_y + Var J_z) from the
    moments of psi_c (:func:`mpsync.observables.qfi_from_moments`), see
    :func:`mpsync.paper.studies.qfi_vs_time` (Fig. 2(c)) and
    :func:`mpsync.paper.studies.conditional_qfi` (Fig. 2(d)), the
    latter next to the QFI of the unconditional state and the bound 2N/3.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np
from scipy.optimize import brentq

from ...errors import InvalidOptionError, InvalidSystemError, check_memory
from ...observables import ZQ2_from_correlations, qfi_from_moments
from ...parallel import default_workers, parallel_map, spawn_seeds
from ...result import Moments, SteadyState, TimeSeries
from ...states import check_times, has_coherences, product_state
from .statevector import StateSpace, check_size, moments_of_state

__all__ = ["steady_state", "evolve", "jump_operators", "UNRAVELLINGS", "JUMP_BASES"]

#: Photon counting, one-quadrature and two-quadrature detection; "diffusion" = "heterodyne".
UNRAVELLINGS = ("jumps", "homodyne", "heterodyne", "diffusion")
#: Decompositions f = A A^T of the collective decay into jump operators (module docstring).
JUMP_BASES = ("eigen", "local")
_THETA = 3.0        # h ||H_eff - mu||_1 per Taylor step
_MAX_TERMS = 80

_SPACES: dict = {}


def jump_operators(system, basis: str = "eigen") -> np.ndarray:
    """A (N, K) with f = A A^T: the collective jumps L_k = sum_b A[b, k] s-_b.

    ``basis="eigen"``: A = V sqrt(l), the eigenmodes of f (l_k ~ 0 dropped).
    ``basis="local"``: sqrt(l_min) times the identity (local emission at the smallest
    eigenvalue l_min of f, left out when l_min ~ 0) next to the eigenmodes of
    f - l_min 1. See the module docstring; f must be positive semidefinite.
    """
    if basis not in JUMP_BASES:
        raise InvalidOptionError(f"unknown jump_basis {basis!r}; choose one of {', '.join(JUMP_BASES)}")
    dec = system.lindblad_decomposition("method='trajectories'")
    scale = max(float(np.max(dec.rates)), system.gamma)

    def modes(rates, vectors):
        keep = rates > 1e-12 * scale
        return vectors[:, keep] * np.sqrt(rates[keep])[None, :]

    if basis == "eigen":
        return modes(dec.rates, dec.vectors)
    lmin = float(np.min(dec.rates))
    lam, vec = np.linalg.eigh(system.f - lmin * np.eye(system.n))
    rest = modes(np.clip(lam, 0.0, None), vec)
    if lmin <= 1e-12 * scale:
        return rest
    return np.hstack([np.sqrt(lmin) * np.eye(system.n), rest])


def _space_for(system, jump_basis: str = "eigen") -> StateSpace:
    h = hashlib.sha1()
    for arr in (system.f, system.g, system.delta):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(repr((system.W, system.gamma)).encode())
    key = h.hexdigest()
    if key not in _SPACES:
        _SPACES.clear()  # one system per process at a time keeps memory bounded
        _SPACES[key] = (StateSpace(system), {})
    space, bases = _SPACES[key]
    if jump_basis not in bases:
        bases[jump_basis] = jump_operators(system, jump_basis)
    space.A = bases[jump_basis]   # only the jump and diffusion steps read A; H_eff uses f itself
    return space


# ====================================================================== recording
class _Recorder:
    """Moments (and QFI, projectors) of one trajectory at its output times."""

    def __init__(self, space, ntimes, series, want_sm, rho):
        n = space.n
        self.space, self.series, self.want_sm = space, series, want_sm
        shape = (ntimes,) if series else ()
        self.sz = np.zeros(shape + (n,))
        self.C = np.zeros(shape + (n, n), dtype=complex)
        self.zz = np.zeros(shape + (n, n))
        self.sm = np.zeros(shape + (n,), dtype=complex) if want_sm else None
        self.qfi = np.zeros(ntimes)
        self.rho = np.zeros((space.dim, space.dim), dtype=complex) if rho else None
        self.count = 0

    def __call__(self, i, x, lo, klo, khi, buf):
        sz, C, zz, sm = moments_of_state(self.space, x, lo, klo, khi, buf, coherent=khi > klo)
        self.qfi[i] = qfi_from_moments(sz, C, zz, sm)
        tgt = i if self.series else ()
        if self.series:
            self.sz[tgt], self.C[tgt], self.zz[tgt] = sz, C, zz
        else:
            self.sz += sz
            self.C += C
            self.zz += zz
        if self.want_sm and sm is not None:
            if self.series:
                self.sm[tgt] = sm
            else:
                self.sm += sm
        if self.rho is not None:
            v = self.space.to_natural(x, lo)
            self.rho += np.outer(v, np.conj(v))
        self.count += 1

    def result(self, **info):
        k = 1.0 if self.series else 1.0 / max(self.count, 1)
        out = dict(sz=self.sz * k, C=self.C * k, zz=self.zz * k, qfi=self.qfi, **info)
        if self.sm is not None:
            out["sm"] = self.sm * k
        if self.rho is not None:
            out["rho"] = self.rho / max(self.count, 1)
        return out


# ====================================================================== initial states
def _initial(space, sites, rng):
    """Sector-ordered initial vector: each site's eigenvector drawn with its weight."""
    vec = np.ones(1, dtype=complex)
    for m in sites:
        p, v = np.linalg.eigh(m)
        p = np.clip(p.real, 0.0, None)
        if np.count_nonzero(p > 1e-14) > 1:
            i = int(rng.random() >= p[0] / p.sum())
        else:
            i = int(np.argmax(p))
        vec = np.kron(vec, v[:, i])
    x = space.to_sector_order(vec)
    x = x / np.linalg.norm(x)
    klo, khi = space.range_of(x, 0)
    lo, hi = space.span(klo, khi)
    return x[lo:hi].copy(), lo, klo, khi


# ====================================================================== jumps
def _taylor(blk, x, h, tol):
    """w_m = (-i h B)^m x / m! until ||w_m|| < tol ||x|| (past the hump of the series)."""
    terms = [x]
    w = x
    scale = np.linalg.norm(x)
    for m in range(1, _MAX_TERMS):
        w = (-1j * h / m) * (blk @ w)
        terms.append(w)
        if m > _THETA and np.linalg.norm(w) < tol * scale:
            return np.array(terms)
    raise RuntimeError("Taylor series of exp(-i H_eff h) did not converge; reduce the step")


def _jump_trajectory(space, seed, sites, times, rec, tol):
    rng = np.random.default_rng(seed)
    x, lo, klo, khi = _initial(space, sites, rng)
    buf = np.zeros(space.dim + 1, dtype=complex)
    t, r = 0.0, rng.random()
    njumps = nsteps = 0
    A, W = space.A, space.W
    for i, t_out in enumerate(times):
        while t < t_out:
            blk, mu, nrm = space.block(klo, khi)
            h = t_out - t
            if nrm * h > _THETA:
                h = _THETA / nrm
            terms = _taylor(blk, x, h, tol)
            nsteps += 1
            M = len(terms)
            G = np.conj(terms) @ terms.T
            # ||sum theta^m w_m||^2 = sum_s c_s theta^s, times the exact scalar decay
            coef = np.zeros(2 * M - 1)
            for m in range(M):
                coef[m:m + M] += G[m].real
            decay = 2.0 * mu.imag * h

            def norm2(th):
                return np.exp(decay * th) * np.polynomial.polynomial.polyval(th, coef)

            end = norm2(1.0)
            if end <= r:
                th = brentq(lambda s: norm2(s) - r, 0.0, 1.0, xtol=1e-15, rtol=1e-15)
                x = np.exp(-1j * mu * th * h) * (th ** np.arange(M)) @ terms
                t += th * h
                x /= np.linalg.norm(x)
                # ---- the jump: rates ||L_j psi||^2 from the lowered images
                d = len(x)
                buf[lo:lo + d] = x
                phi, lo2 = space.lowered(buf, klo, khi)
                Lx = A.T @ phi
                wc = np.sum(Lx.real ** 2 + Lx.imag ** 2, axis=1)
                p = x.real ** 2 + x.imag ** 2
                wp = W * (1.0 - p @ space.bits[lo:lo + d]) if W > 0 else np.zeros(0)
                cum = np.cumsum(np.concatenate([wc, wp]))
                j = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
                j = min(j, len(cum) - 1)
                old = lo
                if j < len(wc):
                    x, lo = Lx[j], lo2
                    klo, khi = max(klo - 1, 0), khi - 1
                else:
                    x, lo = space.raised_one(buf, j - len(wc), klo, khi)
                    klo, khi = klo + 1, min(khi + 1, space.n)
                buf[old:old + d] = 0.0
                x = x / np.linalg.norm(x)
                r = rng.random()
                njumps += 1
            else:
                x = np.exp(-1j * mu * h) * np.sum(terms, axis=0)
                t = t_out if h == t_out - t else t + h
                n2 = float(np.vdot(x, x).real)
                r /= n2
                x /= np.sqrt(n2)
        rec(i, x, lo, klo, khi, buf)
    return rec.result(njumps=njumps, nsteps=nsteps)


# ====================================================================== diffusion
def _diffusive_path(space, x0, lo, times, rec, kind, intervals):
    """Euler-Maruyama along one path; ``intervals[i]`` = (h, z) with z (steps, ncol) N(0, 1) draws."""
    D = space.dim
    x = np.zeros(D, dtype=complex)
    x[lo:lo + len(x0)] = x0
    buf = np.zeros(D + 1, dtype=complex)
    H, A, sW = space.H, space.A, np.sqrt(space.W)
    J = A.shape[1] + (space.n if space.W > 0 else 0)
    nsteps = 0
    for i, (h, zs) in enumerate(intervals):
        for z in zs:
            buf[:D] = x
            L = A.T @ buf[space.low]
            if space.W > 0:
                L = np.vstack([L, sW * buf[space.rai]])
            ell = L @ np.conj(x)                       # <L_j>
            drift = -1j * (H @ x)
            if kind == "heterodyne":
                dxi = (z[:J] + 1j * z[J:]) * np.sqrt(h / 2)
                drift += np.conj(ell) @ L - 0.5 * np.sum(np.abs(ell) ** 2) * x
                x = x + h * drift + dxi @ L - (dxi @ ell) * x
            else:
                xj = 2.0 * ell.real
                dW = z * np.sqrt(h)
                drift += 0.5 * (xj @ L) - 0.125 * np.sum(xj ** 2) * x
                x = x + h * drift + dW @ L - 0.5 * (dW @ xj) * x
            x /= np.linalg.norm(x)
            nsteps += 1
        rec(i, x, 0, 0, space.n, buf)
    return nsteps


def _diffusive_trajectory(space, seed, sites, times, make_rec, dt, kind, extrapolate):
    rng = np.random.default_rng(seed)
    x0, lo, klo, khi = _initial(space, sites, rng)
    J = space.A.shape[1] + (space.n if space.W > 0 else 0)
    ncol = 2 * J if kind == "heterodyne" else J
    intervals, t = [], 0.0
    for t_out in times:
        span = t_out - t
        nst = int(np.ceil(span / dt - 1e-9)) if span > 0 else 0
        if extrapolate:
            nst += nst % 2  # the coarse path takes pairs of fine steps
        intervals.append((span / nst if nst else 0.0, rng.standard_normal((nst, ncol))))
        t = t_out
    rec = make_rec()
    nsteps = _diffusive_path(space, x0, lo, times, rec, kind, intervals)
    fine = rec.result(njumps=0, nsteps=nsteps)
    if not extrapolate:
        return fine
    # Talay-Tubaro: the same Brownian path with steps 2h; 2 A(h) - A(2h) cancels the O(h) weak error
    coarse_iv = [(2 * h, (zs[0::2] + zs[1::2]) / np.sqrt(2.0)) for h, zs in intervals]
    rec2 = make_rec()
    nsteps += _diffusive_path(space, x0, lo, times, rec2, kind, coarse_iv)
    coarse = rec2.result()
    out = dict(fine, nsteps=nsteps)
    # the averaged projector "rho" stays the fine path's: 2 rho(dt) - rho(2 dt) need not be a
    # density matrix (measured: an eigenvalue -0.003 at N = 3), and no QFI is taken of a non-state
    for key in ("sz", "C", "zz", "sm", "qfi"):
        if key in fine:
            out[key] = 2.0 * fine[key] - coarse[key]
    return out


# ====================================================================== tasks
def _run_task(task):
    system, unravelling, seeds, initial, times, opts = task
    space = _space_for(system, opts["jump_basis"])
    sites = product_state(initial, system.n)
    out = []
    def make_rec():
        return _Recorder(space, len(times), opts["series"], opts["want_sm"], opts["rho"])

    for seed in seeds:
        cpu = time.process_time()
        if unravelling == "jumps":
            res = _jump_trajectory(space, seed, sites, times, make_rec(), opts["tol"])
        else:
            res = _diffusive_trajectory(space, seed, sites, times, make_rec, opts["dt"], unravelling,
                                        opts["extrapolate"])
        res["cpu"] = time.process_time() - cpu
        out.append(res)
    return out


def _check_options(system, unravelling, ntraj, dt, jump_basis="eigen"):
    if unravelling not in UNRAVELLINGS:
        raise InvalidOptionError(f"unknown unravelling {unravelling!r}; choose one of {', '.join(UNRAVELLINGS)}")
    if jump_basis not in JUMP_BASES:
        raise InvalidOptionError(f"unknown jump_basis {jump_basis!r}; choose one of {', '.join(JUMP_BASES)}")
    if int(ntraj) != ntraj or ntraj < 1:
        raise InvalidOptionError(f"ntraj must be a positive integer, got {ntraj!r}")
    if dt is not None and not (np.isfinite(dt) and dt > 0):
        raise InvalidOptionError(f"dt must be a positive time step (units of 1/Gamma), got {dt!r}")
    system.check_lindblad("method='trajectories'")


def _nworkers(executor, workers):
    if executor == "serial" or workers == 1:
        return 1
    if executor in (None, "local"):
        return workers or default_workers()
    return 1


def _run(system, times, ntraj, seed, unravelling, initial, dt, tol, executor, workers, progress,
         series, want_sm=None, rho=False, extrapolate=False, jump_basis="eigen"):
    n = system.n
    unravelling = "heterodyne" if unravelling == "diffusion" else unravelling
    from ..applicability import alternatives

    check_size(n, min(_nworkers(executor, workers), ntraj),
               alternatives(system, exclude=("trajectories",), entry="evolve" if series else "steady_state"))
    if rho:
        check_memory(2 * 16 * 4.0 ** n * max(1, min(_nworkers(executor, workers), ntraj)),
                     f"averaging the dense N={n} density matrix over trajectories",
                     "the moments (rho=False) or method='mpo'")
    product_state(initial, n)  # validate before any worker starts
    if want_sm is None:
        want_sm = has_coherences(product_state(initial, n))
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2 ** 63))
    seeds = spawn_seeds(seed, int(ntraj))
    extrapolate = bool(extrapolate) and unravelling != "jumps"
    opts = dict(series=series, want_sm=want_sm, rho=rho, tol=tol, extrapolate=extrapolate,
                dt=1e-3 if dt is None else float(dt), jump_basis=jump_basis)
    # tasks hold fixed groups of trajectories: the grouping never changes a trajectory
    size = max(1, int(np.ceil(ntraj / 256)))
    tasks = [(system, unravelling, seeds[i:i + size], initial, np.asarray(times, float), opts)
             for i in range(0, ntraj, size)]
    t0 = time.perf_counter()
    chunks = parallel_map(_run_task, tasks, executor=executor, workers=workers, progress=progress,
                          description=f"trajectories ({unravelling})")
    results = [r for c in chunks for r in c]
    info = dict(seconds=time.perf_counter() - t0, ntraj=int(ntraj), seed=seed, unravelling=unravelling,
                jump_basis=jump_basis,
                integrator=("Taylor exp(-i H_eff h), waiting-time jumps" if unravelling == "jumps"
                            else "Euler-Maruyama, Talay-Tubaro extrapolated (weak order 2)" if extrapolate
                            else "Euler-Maruyama (strong order 1/2, weak order 1)"),
                dt=None if unravelling == "jumps" else opts["dt"], tol=tol,
                mean_jumps=float(np.mean([r["njumps"] for r in results])),
                mean_steps=float(np.mean([r["nsteps"] for r in results])), dim=2 ** n,
                cpu_seconds_per_trajectory=float(np.mean([r["cpu"] for r in results])))
    return results, info, want_sm


def _mean_se(results, key):
    arr = np.array([r[key] for r in results])
    mean = arr.mean(axis=0)
    if len(arr) < 2:
        return mean, np.full(mean.shape, np.nan) if np.ndim(mean) else np.nan, arr
    if np.iscomplexobj(arr):
        se = (arr.real.std(axis=0, ddof=1) + 1j * arr.imag.std(axis=0, ddof=1)) / np.sqrt(len(arr))
    else:
        se = arr.std(axis=0, ddof=1) / np.sqrt(len(arr))
    return mean, se, arr


def _hermitian(C):
    return 0.5 * (C + np.conj(np.swapaxes(C, -1, -2)))


# ====================================================================== entry points
def steady_state(system, ntraj: int = 100, t_burn: float = 20.0, t_avg: float = 40.0,
                 sample_dt: float = 0.2, dt: float | None = None, seed=None,
                 unravelling: str = "jumps", initial="down", tol: float = 1e-12,
                 executor=None, workers: int | None = None, progress: bool = False,
                 keep_density_matrix: bool = False, t_max: float | None = None,
                 extrapolate: bool = False, jump_basis: str = "eigen") -> SteadyState:
    """Steady state by averaging trajectories over time after a burn-in.

    Parameters
    ----------
    system : DipoleSystem
        f must be positive semidefinite (its eigenvectors give the jump operators).
    ntraj : int
        Number of trajectories.
    t_burn, t_avg : float
        Burn-in time and averaging window (units of 1/Gamma).
    sample_dt : float
        Interval between the samples of the time average.
    dt : float, optional
        Euler-Maruyama step of the diffusive unravellings (default 1e-3); unused by
        ``"jumps"``, whose propagation has no time-step error.
    seed : int, optional
        Master seed; trajectory i uses ``spawn_seeds(seed, ntraj)[i]`` (recorded in
        ``diagnostics["seed"]`` when drawn at random).
    unravelling : {"jumps", "homodyne", "heterodyne"}
        Photon counting, one-quadrature or two-quadrature (QSD) detection of the
        emitted light (``"diffusion"`` = ``"heterodyne"``). Unconditional moments are
        the same for all; the conditional QFI is not (see :func:`mpsync.paper.studies.qfi_vs_time`).
    initial : "down", "up", "x" or list of 2 x 2 density matrices
    tol : float
        Relative truncation of the Taylor propagator (jumps).
    executor, workers, progress
        See :func:`mpsync.parallel.parallel_map`.
    keep_density_matrix : bool
        Also average |psi><psi| (dense 2^N x 2^N, small N) into ``extras["rho"]``
        (with ``extrapolate``: of the step-dt path only, so that it stays a state).
    t_max : float, optional
        Total simulated time (the CLI's ``--t-max``): sets t_avg = t_max - t_burn.
    extrapolate : bool
        Diffusive unravellings: also run each trajectory with steps 2 dt on the same
        Brownian path and report 2 A(dt) - A(2 dt) (Talay-Tubaro extrapolation: weak
        order 2 at 1.5x the cost). The O(dt) bias of plain Euler-Maruyama is large
        when ||L^+ L|| dt is not small (strong pump, large f_eff): check it.
    jump_basis : {"eigen", "local"}
        How f = A A^T is split into collective jumps (module docstring): the
        eigenmodes of f, or local emission at f's smallest eigenvalue plus the
        eigenmodes of the rest. Changes conditional quantities only.

    Returns
    -------
    SteadyState
        ``errors``: standard errors over trajectories of sz, correlations
        (complex: SE of real and imaginary parts), zz, ZQ2 and the conditional QFI;
        ``extras``: ``qfi_conditional`` (mean over trajectories of the time-averaged
        F_Q(psi_c)), ``trajectory_ZQ2``, ``trajectory_qfi``.

    Examples
    --------
    >>> from mpsync import DipoleSystem
    >>> s = DipoleSystem.chain(4, 0.1, "magic", W=2.0)
    >>> ss = steady_state(s, ntraj=4, t_burn=5, t_avg=5, seed=1, workers=1)
    >>> ss.method
    'trajectories'
    """
    _check_options(system, unravelling, ntraj, dt, jump_basis)
    if t_max is not None:
        if not (np.isfinite(t_max) and t_max > t_burn):
            raise InvalidOptionError(f"t_max = {t_max!r} must exceed the burn-in t_burn = {t_burn}")
        t_avg = float(t_max) - float(t_burn)
    for name, v in (("t_burn", t_burn), ("t_avg", t_avg)):
        if not (np.isfinite(v) and v >= 0):
            raise InvalidSystemError(f"{name} must be a time >= 0, got {v!r}")
    if not (np.isfinite(sample_dt) and sample_dt > 0):
        raise InvalidSystemError(f"sample_dt must be > 0, got {sample_dt!r}")
    times = t_burn + sample_dt * np.arange(int(np.floor(t_avg / sample_dt + 1e-9)) + 1)
    results, info, want_sm = _run(system, times, int(ntraj), seed, unravelling, initial, dt, tol,
                                  executor, workers, progress, series=False, rho=keep_density_matrix,
                                  extrapolate=extrapolate, jump_basis=jump_basis)
    sz, sz_se, _ = _mean_se(results, "sz")
    C, C_se, Cs = _mean_se(results, "C")
    zz, zz_se, _ = _mean_se(results, "zz")
    zq = np.array([ZQ2_from_correlations(c) for c in Cs])
    qf = np.array([np.mean(r["qfi"]) for r in results])
    sm, sm_se, _ = _mean_se(results, "sm") if want_sm else (None, None, None)
    nt = len(results)
    se = (lambda a: float(np.std(a, ddof=1) / np.sqrt(nt)) if nt > 1 else float("nan"))
    moments = Moments(sz, _hermitian(C), 0.5 * (zz + zz.T), sm=sm)
    errors = dict(sz=sz_se, correlations=C_se, zz=zz_se, ZQ2=se(zq), qfi_conditional=se(qf))
    if want_sm:
        errors["sm"] = sm_se
    extras = dict(qfi_conditional=float(qf.mean()), trajectory_ZQ2=zq, trajectory_qfi=qf)
    if keep_density_matrix:
        extras["rho"] = np.mean([r["rho"] for r in results], axis=0)
    info.update(t_burn=float(t_burn), t_avg=float(t_avg), sample_dt=float(sample_dt), samples=len(times))
    return SteadyState(system, moments, "trajectories", info, errors, extras)


def evolve(system, times, initial="down", ntraj: int = 100, dt: float | None = None, seed=None,
           unravelling: str = "jumps", tol: float = 1e-12, executor=None,
           workers: int | None = None, progress: bool = False,
           extrapolate: bool = False, jump_basis: str = "eigen") -> TimeSeries:
    """Trajectory averages at the output ``times`` (units of 1/Gamma) from a product state.

    Parameters are those of :func:`steady_state` (``times`` sets the span). ``initial`` with coherences
    ("x") gives states spanning several excitation sectors; ``sm`` is then averaged too.

    Returns
    -------
    TimeSeries
        Averages over trajectories; ``errors`` holds standard errors with a
        leading time axis (sz, correlations, zz, ZQ2, qfi); ``extras["qfi"]`` the
        mean conditional QFI and ``extras["qfi_trajectories"]`` (ntraj, T).
    """
    _check_options(system, unravelling, ntraj, dt, jump_basis)
    times = check_times(times, strictly_increasing=True)
    results, info, want_sm = _run(system, times, int(ntraj), seed, unravelling, initial, dt, tol,
                                  executor, workers, progress, series=True, extrapolate=extrapolate,
                                  jump_basis=jump_basis)
    sz, sz_se, _ = _mean_se(results, "sz")
    C, C_se, Cs = _mean_se(results, "C")
    zz, zz_se, _ = _mean_se(results, "zz")
    qf, qf_se, qfs = _mean_se(results, "qfi")
    zq = np.array([[ZQ2_from_correlations(c) for c in traj] for traj in Cs])
    zq_se = zq.std(axis=0, ddof=1) / np.sqrt(len(zq)) if len(zq) > 1 else np.full(len(times), np.nan)
    sm, sm_se, _ = _mean_se(results, "sm") if want_sm else (None, None, None)
    moments = Moments(sz, _hermitian(C), 0.5 * (zz + np.swapaxes(zz, 1, 2)), sm=sm)
    errors = dict(sz=sz_se, correlations=C_se, zz=zz_se, ZQ2=zq_se, qfi=qf_se)
    if want_sm:
        errors["sm"] = sm_se
    extras = dict(qfi=qf, qfi_trajectories=qfs)
    return TimeSeries(system, times, moments, "trajectories", info, errors, extras)
