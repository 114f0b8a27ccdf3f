r"""MPO solver for long dipole chains (issue 3): Liouvillian MPO, vectorised MPS, TDVP.

The density matrix is a vectorised matrix-product state of local dimension 4
(per-site index ``s = 2 i + j``, ket i, bra j), the Liouvillian

.. math:: \mathcal{L}\rho = -i[H, \rho] + L_f[\rho] + L_W[\rho]

(DESIGN section 1; Gamma = 1, lengths in lambda, times in 1/Gamma) a matrix-product
operator whose long-range f and g are compressed through the numerical rank of the
coupling matrices (:mod:`.liouvillian`). The steady state ``L rho = 0`` is reached
by integrating ``d|rho>>/dt = L|rho>>`` with two-site TDVP (:mod:`.tdvp`) from a
product state, with a time step that grows geometrically up to ``dt_max``: the
spectral gap of L is of order Gamma, so t ~ 20-50 reaches stationarity. States are
normalised by the trace ``<<1|rho>>``; observables come from the one- and
two-point moments computed with left/right environments (:mod:`.vectorized`).

Entry points (the shared solver interface)::

    steady_state(system, max_bond=64, cutoff=1e-10, tol=1e-6, zq_tol=1e-6, ...)
    evolve(system, times, initial="down", max_bond=64, cutoff=1e-10, dt=0.05, ...)

Only 1D chains (in the order of the sites) are accepted; other geometries raise
:class:`~mpsync.errors.NotApplicableError` naming the methods that apply.
"""

from __future__ import annotations

import math
import time

import numpy as np
from autoray import do, to_numpy

from ...errors import InvalidSystemError, MpsyncError, check_memory
from ...result import Moments, SteadyState, TimeSeries
from ...states import check_times, product_state
from .checkpoint import load_checkpoint, save_checkpoint
from .tdvp import (TDVP, antihermitian_norm, distance, expand_basis, residual_norm,
                   trace_normalized, zq2_sum)
from .vectorized import moments as _vectorized_moments

__all__ = ["steady_state", "evolve", "check_chain", "build_mpo", "estimate_memory"]

METHOD = "mpo"


# ---------------------------------------------------------------------- checks and set-up
def check_chain(system) -> None:
    """Raise :class:`NotApplicableError` unless ``system`` is a 1D chain (see
    :func:`.liouvillian.check_chain`; systems without positions are taken in index order)."""
    from .liouvillian import check_chain as _check

    _check(system)


def build_mpo(system, mpo_cutoff=1e-10, like="numpy"):
    """Liouvillian MPO tensors ``(Dl, Dr, 4, 4)`` as arrays of the backend ``like``."""
    from .liouvillian import liouvillian_mpo

    mpo = liouvillian_mpo(system, cutoff=mpo_cutoff)
    tensors = [np.asarray(to_numpy(W), dtype=complex) for W in mpo.tensors]
    return [_to_backend(W, like) for W in tensors], list(mpo.bond_dims)


def _to_backend(x, like):
    x = np.asarray(x, dtype=complex)
    if like in (None, "numpy"):
        return x
    return do("asarray", x, like=like)


def _initial_mps(initial, n, like):
    states = product_state(initial, n)
    return [_to_backend(np.asarray(rho, dtype=complex).reshape(1, 4, 1), like) for rho in states]


def _expansion_step(dt):
    """Length of the initial Euler basis-expansion step (error ~ (h ||L||)^2)."""
    return 1e-3 * min(float(dt), 1e-2)


def _moments(mps) -> Moments:
    """Moments of the unit-trace, Hermitian part of the state."""
    mps = trace_normalized([np.asarray(to_numpy(A)) for A in mps])
    m = _vectorized_moments(mps)
    # moments of (rho + rho^+)/2: real sz and zz, Hermitian C (removes round-off parts)
    C = np.asarray(m.correlations)
    C = 0.5 * (C + C.conj().T)
    extra = {}
    for name in ("sm", "zsm", "smsm"):
        v = getattr(m, name, None)
        if v is not None:
            extra[name] = v
    return Moments(np.real(m.sz), C, np.real(m.zz), **extra)


def _zq(mps, n):
    """(ZQ2, ZQ, mean sz) of the trace-normalised state, in one transfer pass."""
    s, z, tr = zq2_sum(mps)
    zq2 = (s / tr).real / (n * (n - 1)) if n > 1 else 0.0
    return zq2, math.sqrt(max(zq2, 0.0)), (z / tr).real / n


def estimate_memory(n: int, max_bond: int, mpo_bond: int, krylov_dim: int = 30) -> float:
    """Peak bytes of a TDVP run: 2 N environments (chi^2 D), the Krylov basis of
    two-site blocks (16 chi^2 each) and the precomputed env-MPO products (16 chi^2 D)."""
    chi, D = int(max_bond), int(mpo_bond)
    return 16.0 * (2 * n * chi * chi * D + (krylov_dim + 4) * 16 * chi * chi + 2 * 16 * chi * chi * D)


def _prepare(system, max_bond, cutoff):
    system.check_lindblad("method='mpo'")
    check_chain(system)
    if max_bond is not None and int(max_bond) < 1:
        raise InvalidSystemError(f"max_bond must be >= 1, got {max_bond}")
    if not cutoff >= 0:
        raise InvalidSystemError(f"cutoff must be >= 0, got {cutoff}")


def _check_memory(system, max_bond, mpo_dims, krylov_dim):
    n = system.n
    chi = max_bond if max_bond is not None else 4 ** (n // 2)
    need = estimate_memory(n, min(chi, 4 ** (n // 2)), max(mpo_dims or [1]), krylov_dim)
    check_memory(need, f"method='mpo' with N={n}, max_bond={chi}",
                  "a smaller max_bond (the error is shown by comparing two max_bond values)")


# ---------------------------------------------------------------------- steady state
class ConvergenceError(MpsyncError, RuntimeError):
    """The MPO evolution ended on an unphysical state even with reduced time steps."""


def _unphysical(moments: Moments, tol: float = 1e-3) -> str | None:
    """Why the moments cannot come from a density matrix (None when they can)."""
    sz = np.asarray(moments.sz)
    c = np.asarray(moments.correlations)
    if not np.all(np.isfinite(sz)) or not np.all(np.isfinite(c)):
        return "non-finite moments"
    if np.max(np.abs(sz)) > 1 + tol:
        return f"max |<sz>| = {np.max(np.abs(sz)):.3g} > 1"
    off = c[~np.eye(len(sz), dtype=bool)]
    if off.size and np.max(np.abs(off)) > 0.5 + tol:
        return f"max |<s+_a s-_b>| = {np.max(np.abs(off)):.3g} > 1/2"
    return None


def steady_state(system, dt_max: float = 1.0, resume=None, **options):
    """Steady state by TDVP, retried with smaller time steps if it ends unphysical.

    Large TDVP steps (``dt_max``) can make the projected evolution unstable for strongly
    collective systems (e.g. all-to-all f_eff = 8 at N = 10 with dt_max = 1 diverged to
    <sz> = -3.4 while dt_max = 0.2 converges to the exact state). A result whose moments
    cannot come from a density matrix (|<sz>| > 1 or |C_ab| > 1/2) is therefore recomputed
    with ``dt_max`` divided by 5, twice at most, and otherwise refused with
    :class:`ConvergenceError`. ``diagnostics["dt_max_retries"]`` records the retries.
    All parameters are those of :func:`run_steady_state`.
    """
    reason = None
    for attempt in range(3):
        result = run_steady_state(system, dt_max=dt_max, resume=resume, **options)
        reason = _unphysical(result.moments)
        if reason is None:
            result.diagnostics["dt_max_retries"] = attempt
            return result
        if resume is not None:
            break
        dt_max /= 5.0
    raise ConvergenceError(
        f"method='mpo' ended on an unphysical state ({reason}, residual "
        f"{result.diagnostics['residual']:.3g}) even with dt_max={dt_max:.3g}; try a smaller "
        "dt_max or a larger max_bond, or method='exact' / 'permutational' / 'cumulant'")


def run_steady_state(system, max_bond: int = 64, cutoff: float = 1e-10, tol: float = 1e-6,
                 zq_tol: float = 1e-6, t_max: float = 200.0, dt: float = 0.05,
                 dt_max: float = 1.0, dt_growth: float = 1.5, mpo_cutoff: float = 1e-10,
                 initial="down", checkpoint=None, checkpoint_every: int = 5, resume=None,
                 progress: bool = False, like: str = "numpy", refine: bool = False,
                 krylov_tol: float = 1e-8, krylov_dim: int = 30, stall_steps: int | None = 20,
                 max_steps: int | None = None, integrator: str = "auto", t_grow: float = 1.0):
    r"""Steady state ``L rho = 0`` of a dipole chain by TDVP time evolution of the vectorised MPS.

    From the product state ``initial``, ``d|rho>>/dt = L|rho>>`` is integrated
    with two-site TDVP. The step starts at ``dt`` and grows by ``dt_growth`` per
    step up to ``dt_max``. A step after which the residual jumps up tenfold (large
    steps can go unstable near stationarity, since the backward one-site steps of
    TDVP amplify decaying modes) is undone, and the ceiling is halved.
    After every step the trace-normalised state is measured. The run stops when

    * ``||L rho||_2 / ||rho||_2 < tol`` (relative residual, units of Gamma) **and**
      ``|Delta ZQ| / Delta t < zq_tol`` (converged); or
    * ``t >= t_max`` or ``max_steps`` steps; or
    * in the one-site phase, the residual changed by less than 0.1 % in a step and
      ``|Delta ZQ| / Delta t < zq_tol``: the state is stationary on the manifold of
      its bond dimensions but the residual is above ``tol`` (``stop_reason``
      "stationary", not converged: the truncation floor; raise ``max_bond``); or
    * at ``dt_max`` the residual has not improved by 10 % for ``stall_steps`` steps
      ("stalled", not converged).

    Parameters
    ----------
    system : DipoleSystem
        A 1D chain (see :func:`check_chain`) with positive semidefinite f.
    max_bond : int
        Largest MPS bond dimension chi of the vectorised density matrix.
    cutoff : float
        Singular values below ``cutoff`` times the largest are dropped at each SVD
        (the residual floor is then about ``cutoff * ||L||``).
    tol, zq_tol : float
        Stopping tolerances (see above).
    t_max : float
        Longest evolution time (1/Gamma).
    dt, dt_max, dt_growth : float
        First step, largest step and growth factor per step.
    mpo_cutoff : float
        Compression tolerance of the Liouvillian MPO.
    initial : "down", "up", "x" or list of 2 x 2 density matrices
        Product initial state.
    checkpoint : path, optional
        ``.npz`` file written every ``checkpoint_every`` steps and at the end.
    resume : path, optional
        Continue from a checkpoint of the same system (the MPS, time, step and
        controller are restored, so the run reproduces an uninterrupted one).
    progress : bool
        tqdm bar over time with the residual, ZQ and the largest bond.
    like : str
        autoray array backend of the tensors ("numpy", "torch", "cupy").
    refine : bool
        After the time evolution, run two-site sweeps that replace each block by
        the eigenvector of the effective generator whose eigenvalue has the largest
        real part (the local null-space condition ``P L rho = 0``), keeping the
        result only if the residual decreases.
    krylov_tol, krylov_dim : float, int
        Accuracy and size of the Arnoldi exponentials.
    stall_steps : int or None
        See the stopping rule; None disables the stall test.
    max_steps : int, optional
        Stop after this many steps in total (counting resumed ones).
    integrator : {"auto", "2site", "1site"}
        ``"auto"``: two-site TDVP while the bonds grow, then (from ``t >= t_grow``,
        once the largest bond reached ``max_bond`` or the bonds stayed the same
        for two steps) one-site TDVP, whose fixed point has no truncation noise.
        ``"1site"`` from the start keeps the initial bond dimensions (use with
        ``resume``).
    t_grow : float
        Earliest switch to one-site steps (1/Gamma).

    Returns
    -------
    SteadyState
        ``diagnostics``: ``seconds``, ``residual`` (relative), ``dZQ_dt``,
        ``converged``, ``stop_reason``, ``time`` (evolved), ``steps``, ``dt``,
        ``bond_dims`` (MPS), ``max_bond_reached``, ``mpo_bond_dims``,
        ``truncation`` (summed discarded weight), ``antihermitian``
        (``||rho - rho^+|| / (2 ||rho||)``, monitored, not enforced: the moments
        are those of the Hermitian part), ``state_change_rate``
        (``||Delta rho|| / (||rho|| Delta t)`` of the last step), ``integrator``
        and ``switch_time`` (two-site -> one-site), ``rejected_steps``,
        ``matvecs``, ``history`` (per step: t, dt, residual, ZQ2, largest bond,
        integrator, state change); ``extras["mps"]``: the unit-trace MPS tensors.

    Examples
    --------
    >>> from mpsync import DipoleSystem, steady_state
    >>> ss = steady_state(DipoleSystem.chain(4, 0.2, "magic", W=2.0), method="mpo")
    >>> ss.diagnostics["converged"]
    True
    """
    t_start = time.perf_counter()
    _prepare(system, max_bond, cutoff)
    n = system.n
    W, mpo_dims = build_mpo(system, mpo_cutoff, like)
    _check_memory(system, max_bond, mpo_dims, krylov_dim)
    ctrl = {"t": 0.0, "dt": float(dt), "step": 0, "zq_prev": None, "best_res": math.inf,
            "since_best": 0, "truncation": 0.0, "matvecs": 0, "history": [], "res_prev": None,
            "mode": "1site" if integrator == "1site" else "2site", "same_bonds": 0,
            "bonds_prev": None, "switch_time": None, "res_every": 1, "res_step": 0}
    if integrator not in ("auto", "2site", "1site"):
        raise InvalidSystemError(f"integrator must be 'auto', '2site' or '1site', got {integrator!r}")
    if resume is not None:
        mps0, saved = load_checkpoint(resume, system)
        ctrl.update(saved)
        mps0 = [_to_backend(A, like) for A in mps0]
    else:
        mps0 = _initial_mps(initial, n, like)
        if n > 2:
            # see tdvp.expand_basis: without it the first steps miss long-range pairs
            ctrl["t"] = _expansion_step(dt)
            mps0 = expand_basis(W, mps0, ctrl["t"], max_bond)
    eng = TDVP(W, mps0, max_bond=max_bond, cutoff=cutoff, krylov_tol=krylov_tol,
               krylov_dim=krylov_dim, canonical=resume is not None)
    eng.truncation = ctrl["truncation"]
    eng.matvecs = ctrl["matvecs"]

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=float(t_max), initial=min(ctrl["t"], t_max), unit="t/Gamma",
                   desc=f"mpo N={n}", bar_format="{l_bar}{bar}| {n:.3g}/{total:.3g} [{elapsed}] {postfix}")

    def save():
        ctrl["truncation"] = eng.truncation
        ctrl["matvecs"] = eng.matvecs
        save_checkpoint(checkpoint, system, eng.mps, ctrl)

    reason = "t_max"
    res = ctrl.get("res_prev")
    dzq = math.inf
    zq = math.nan
    change = math.inf
    try:
        while True:
            if ctrl["t"] >= t_max - 1e-12:
                reason = "t_max"
                break
            if max_steps is not None and ctrl["step"] >= max_steps:
                reason = "max_steps"
                break
            cap = min(float(dt_max), ctrl.get("dt_cap") or math.inf)
            h = min(ctrl["dt"], cap, t_max - ctrl["t"])
            saved_mps = list(eng.mps)  # tensors are never modified in place
            mv0 = eng.matvecs
            if ctrl["mode"] == "1site":
                eng.step1(h)
            else:
                eng.step(h)
            # flop model of this step vs a residual (deterministic, so a resumed run
            # makes the same choices as an uninterrupted one)
            chi_, D_ = max(eng.bond_dims or [1]), max(mpo_dims or [1])
            c_step = (eng.matvecs - mv0) * (8 * chi_ ** 3 * D_ + 16 * chi_ ** 2 * D_ ** 2)
            c_res = n * (8 * chi_ ** 3 * D_ ** 2 + 32 * chi_ ** 2 * D_ ** 3)
            zq2, zq, _ = _zq(eng.mps, n)
            dzq = abs(zq - ctrl["zq_prev"]) / h if ctrl["zq_prev"] is not None else math.inf
            # the residual costs O(N chi^2 D^3) (D: MPO bond), more than a step when D > chi:
            # evaluate it every res_every steps (keeping it ~20 % of the flops), and
            # whenever Z_Q has settled (a possible stop)
            due = (ctrl["step"] + 1 - ctrl["res_step"] >= ctrl["res_every"] or dzq < zq_tol
                   or not math.isfinite(zq2))
            new_res = None
            if due:
                new_res = residual_norm(W, eng.mps) if math.isfinite(zq2) else math.inf
                ctrl["res_every"] = int(min(8, max(1, math.ceil(c_res / (0.25 * max(c_step, 1))))))
                last = ctrl["res_prev"]
                if (last is not None and new_res > 10 * last and h > dt and last < 1e-2) \
                        or not math.isfinite(new_res):
                    # a large step near stationarity went unstable (the backward
                    # steps amplify decaying modes by exp(dt |Re lambda|)): undo it
                    # and lower the ceiling of the step for the rest of the run
                    eng.mps = saved_mps
                    eng._build_right_envs()
                    ctrl["dt_cap"] = h / 2
                    ctrl["dt"] = h / 4
                    ctrl["rejected"] = ctrl.get("rejected", 0) + 1
                    if ctrl["dt"] < 1e-6:
                        raise FloatingPointError("TDVP step size collapsed; try a smaller dt_max")
                    continue
            ctrl["t"] += h
            ctrl["step"] += 1
            ctrl["zq_prev"] = zq
            change = distance(trace_normalized(eng.mps), trace_normalized(saved_mps)) / h
            ctrl["history"].append([ctrl["t"], h, new_res, zq2, max(eng.bond_dims or [1]),
                                    ctrl["mode"], change])
            # integrator: two-site steps let the bonds grow; once they stop growing
            # (saturated at max_bond or set by cutoff) one-site steps converge to the
            # variational fixed point without truncation noise
            bonds = list(eng.bond_dims)
            if ctrl["mode"] == "2site" and integrator == "auto":
                ctrl["same_bonds"] = ctrl["same_bonds"] + 1 if bonds == ctrl["bonds_prev"] else 0
                if ctrl["t"] >= t_grow and (ctrl["same_bonds"] >= 2 or max(bonds) >= (max_bond or np.inf)):
                    ctrl["mode"] = "1site"
                    ctrl["switch_time"] = ctrl["t"]
            ctrl["bonds_prev"] = bonds
            # step controller: geometric growth up to the ceiling
            ctrl["dt"] = min(max(h, ctrl["dt"]) * dt_growth, cap)
            if bar is not None:
                bar.update(h)
                bar.set_postfix_str(f"t={ctrl['t']:.3g} res={(res if res is not None else math.nan):.2e} "
                                    f"ZQ={zq:.5f} chi={max(eng.bond_dims or [1])}")
            if checkpoint is not None and ctrl["step"] % max(1, int(checkpoint_every)) == 0:
                save()
            if new_res is None:
                continue
            ctrl["res_step"] = ctrl["step"]
            prev_res, ctrl["res_prev"] = ctrl["res_prev"], new_res
            res = new_res
            if res < 0.9 * ctrl["best_res"]:
                ctrl["best_res"], ctrl["since_best"] = res, 0
            elif h >= cap - 1e-12:
                ctrl["since_best"] += 1
            if res < tol and dzq < zq_tol:
                reason = "converged"
                break
            res_flat = prev_res is not None and abs(res - prev_res) <= 1e-3 * res
            if ctrl["mode"] == "1site" and res_flat and dzq < zq_tol:
                # a fixed point of the one-site flow: the best state of this bond
                # dimension; the residual above tol is the truncation floor
                reason = "stationary"
                break
            if stall_steps is not None and ctrl["since_best"] >= stall_steps:
                reason = "stalled"
                break
    finally:
        if bar is not None:
            bar.close()
    if checkpoint is not None:
        save()
    refine_info = None
    if refine:
        from .tdvp import refine_sweeps
        fresh = res is not None and ctrl["res_step"] == ctrl["step"]
        res_before = res if fresh else residual_norm(W, eng.mps)
        cand = refine_sweeps(eng, sweeps=4)
        res_after = residual_norm(W, cand)
        refine_info = {"residual_before": res_before, "residual_after": res_after}
        if res_after < res_before:
            eng.mps = cand
            res = res_after
            zq_new = _zq(eng.mps, n)[1]
            dzq = 0.0 if res < tol else dzq
            zq = zq_new
            if res < tol and reason != "converged":
                reason = "converged (refined)"
    if res is None or ctrl["res_step"] != ctrl["step"]:
        res = residual_norm(W, eng.mps)  # the final state's, not a stale value
    mps = trace_normalized(eng.mps)
    moments = _moments(mps)
    bonds = eng.bond_dims
    diagnostics = {
        "seconds": time.perf_counter() - t_start,
        "residual": float(res),
        "dZQ_dt": float(dzq),
        "state_change_rate": float(change),
        "tol": tol,
        "zq_tol": zq_tol,
        "converged": reason.startswith("converged"),
        "stop_reason": reason,
        "time": float(ctrl["t"]),
        "steps": int(ctrl["step"]),
        "dt": float(ctrl["dt"]),
        "rejected_steps": int(ctrl.get("rejected", 0)),
        "bond_dims": bonds,
        "max_bond": int(max(bonds or [1])),
        "max_bond_reached": bool(max_bond is not None and max(bonds or [1]) >= max_bond),
        "mpo_bond_dims": mpo_dims,
        "truncation": float(eng.truncation),
        "antihermitian": float(antihermitian_norm(eng.mps)),
        "matvecs": int(eng.matvecs),
        "history": ctrl["history"],
        "backend": str(like),
        "integrator": ctrl["mode"],
        "switch_time": ctrl["switch_time"],
    }
    if refine_info is not None:
        diagnostics["refine"] = refine_info
    if resume is not None:
        diagnostics["resumed_from"] = str(resume)
    return SteadyState(system, moments, METHOD, diagnostics,
                       extras={"mps": [to_numpy(A) for A in mps]})


# ---------------------------------------------------------------------- time evolution
def evolve(system, times, initial="down", max_bond: int = 64, cutoff: float = 1e-10,
           dt: float = 0.05, mpo_cutoff: float = 1e-10, progress: bool = False,
           like: str = "numpy", krylov_tol: float = 1e-10, krylov_dim: int = 30,
           t_max: float | None = None):
    r"""Time evolution ``d|rho>>/dt = L|rho>>`` of a chain from a product state, by two-site TDVP.

    Parameters
    ----------
    system : DipoleSystem
        A 1D chain with positive semidefinite f.
    times : array_like
        Increasing output times >= 0 (1/Gamma). Steps of at most ``dt`` land
        exactly on each output time.
    initial : "down", "up", "x" or list of 2 x 2 density matrices
    max_bond, cutoff : int, float
        Truncation of the MPS bond dimension.
    dt : float
        Largest TDVP step (second order in dt).
    mpo_cutoff : float
        Compression tolerance of the Liouvillian MPO.
    progress : bool
        tqdm bar over the output times.
    like : str
        autoray array backend.
    krylov_tol, krylov_dim : float, int
        Accuracy and size of the Arnoldi exponentials.
    t_max : float, optional
        Accepted for the CLI (which builds ``times`` from it); must not be
        smaller than the last output time.

    Returns
    -------
    TimeSeries
        Moments at each output time (unit trace); diagnostics ``seconds``,
        ``steps``, ``bond_dims`` (final), ``max_bond`` (largest seen),
        ``truncation``, ``antihermitian`` (largest seen), ``mpo_bond_dims``.
    """
    t_start = time.perf_counter()
    times = check_times(times)
    if not dt > 0:
        raise InvalidSystemError(f"dt must be > 0, got {dt}")
    if t_max is not None and times[-1] > t_max + 1e-12:
        raise InvalidSystemError(f"the last output time {times[-1]:g} exceeds t_max = {t_max:g}")
    _prepare(system, max_bond, cutoff)
    n = system.n
    W, mpo_dims = build_mpo(system, mpo_cutoff, like)
    _check_memory(system, max_bond, mpo_dims, krylov_dim)
    mps0 = _initial_mps(initial, n, like)
    eng = TDVP(W, mps0, max_bond=max_bond, cutoff=cutoff,
               krylov_tol=krylov_tol, krylov_dim=krylov_dim)
    snaps = []
    t = 0.0
    h0 = _expansion_step(dt)
    if n > 2 and times[-1] > h0:
        if times[0] <= 0.0:
            snaps.append(_moments(mps0))  # t = 0 exactly, before the expansion step
        eng = TDVP(W, expand_basis(W, mps0, h0, max_bond), max_bond=max_bond, cutoff=cutoff,
                   krylov_tol=krylov_tol, krylov_dim=krylov_dim)
        t = h0
    steps = 0
    chi_max = 1
    anti = 0.0
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(times), desc=f"mpo evolve N={n}")
    try:
        for target in times[len(snaps):]:
            while t < target - 1e-12:
                nsub = max(1, math.ceil((target - t) / dt - 1e-9))
                h = (target - t) / nsub
                eng.step(h)
                t = t + h if nsub > 1 else float(target)
                steps += 1
                chi_max = max(chi_max, max(eng.bond_dims or [1]))
            snaps.append(_moments(eng.mps))
            anti = max(anti, antihermitian_norm(eng.mps))
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"t={t:.3g} chi={max(eng.bond_dims or [1])}")
    finally:
        if bar is not None:
            bar.close()
    diagnostics = {
        "seconds": time.perf_counter() - t_start,
        "steps": steps,
        "bond_dims": eng.bond_dims,
        "max_bond": chi_max,
        "truncation": float(eng.truncation),
        "antihermitian": float(anti),
        "mpo_bond_dims": mpo_dims,
        "matvecs": int(eng.matvecs),
        "backend": str(like),
    }
    return TimeSeries.from_snapshots(system, times, snaps, METHOD, diagnostics=diagnostics)
