r"""One rung of the MPO steady-state search: TDVP at a fixed bond dimension to its fixed point.

At a bond dimension chi the vectorised density matrix follows
``d|rho>>/dt = L|rho>>`` projected on the manifold of MPS of bond dimension <= chi
(:class:`.tdvp.TDVP`). A rung has two phases:

``grow``
    two-site TDVP steps (the bonds grow up to chi; singular values below
    ``cutoff`` are dropped). The step starts at ``dt`` and grows by ``dt_growth``
    per step. A cold start (from a product state) stays here until ``t >= t_grow``
    (1/Gamma) and the bonds have stopped growing: switching earlier fixes the bond
    basis while the state still has many tiny singular values, and the one-site flow
    then drifts to a wrong fixed point (measured: Z_Q^2 1.08e-2 instead of 1.024e-2 at
    N = 20, chi = 16). A warm start (from the previous rung) takes
    ``warm_grow_steps`` two-site steps, enough to fill the new bond dimension.
``relax``
    one-site TDVP steps (bond dimensions fixed, no truncation noise) with the step
    growing to ``dt_max`` (a warm rung starts them at ``dt_max``). Its fixed points obey ``P_1 L |rho>> = 0`` (P_1: the
    projector on the one-site tangent space).

The rung stops as ``converged`` when the one-site flow has settled: after at least
three steps at ``dt_max``, the remaining change of Z_Q, extrapolated from the last
three values as a geometric series, is below ``rung_tol`` after at least
``min_relax_time`` (1/Gamma) of one-site steps, and that of the signed
Z_Q^2 below the matching ``rung_tol (2 Z_Q + rung_tol)`` (:func:`settled`). It stops unconverged at ``t_max`` or ``max_steps``.

A step whose relative state change ``||Delta rho|| / (||rho|| dt)`` jumps tenfold
from an already small value, or that produces a state no density matrix has
(``|<sz>| > 1`` on average or ``|Z_Q^2| > 1/4``), is undone and the step ceiling halved (large one-site steps can go unstable near stationarity: the
backward bond steps amplify decaying modes by ``exp(dt |Re lambda|)``).

The control state is a :class:`RunControl`: a small dataclass that a checkpoint
stores as JSON, so a resumed rung continues exactly where it stopped.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ...errors import ConvergenceError
from ..krylov import NonFiniteKrylov
from .tdvp import DeadlineReached, distance, trace_normalized, zq2_sum

__all__ = ["RunControl", "RelaxSettings", "relax", "remaining_drift", "settled", "zq_of"]


@dataclass
class RelaxSettings:
    """How one rung is integrated (see the module docstring; times in 1/Gamma)."""

    dt: float = 0.05
    dt_max: float = 1.0
    dt_growth: float = 1.5
    t_grow: float = 1.0
    warm_grow_steps: int = 1
    warm_dt: float = 0.2
    rung_tol: float = 1e-4
    t_max: float = 200.0
    max_steps: int | None = None
    min_relax_steps: int = 3
    min_relax_time: float = 1.0
    verify_rounds: int = 2
    verify_grow_steps: int = 4


@dataclass
class RunControl:
    """The loop state of one rung (JSON-serialisable through :meth:`to_dict`)."""

    warm: bool = False
    t: float = 0.0
    dt: float = 0.05
    step: int = 0
    phase: str = "grow"
    dt_cap: float | None = None
    rejected: int = 0
    grow_steps: int = 0
    grow_target: int | None = None
    same_bonds: int = 0
    bonds_prev: list | None = None
    change_prev: float | None = None
    zq: list = field(default_factory=list)
    zq2: list = field(default_factory=list)
    relax_dt: list = field(default_factory=list)
    relax_t0: float | None = None
    history: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunControl":
        return cls(**d)


def zq_of(mps, n, with_sz: bool = False):
    """``(Z_Q^2, Z_Q)`` of the trace-normalised state, in one O(N chi^2) transfer pass
    (and the mean ``<sz>`` with ``with_sz``)."""
    s, z, tr = zq2_sum(mps)
    zq2 = (s / tr).real / (n * (n - 1)) if n > 1 else 0.0
    if with_sz:
        return zq2, math.sqrt(max(zq2, 0.0)), (z / tr).real / n
    return zq2, math.sqrt(max(zq2, 0.0))


def _physical(zq2, mean_sz, tol=1e-3) -> bool:
    """Whether Z_Q^2 and the mean inversion are possible for a density matrix:
    ``|<sz>| <= 1`` and ``-1/4 <= Z_Q^2 <= 1/4`` (every ``|<s+_a s-_b>| <= 1/2``)."""
    return (math.isfinite(zq2) and math.isfinite(mean_sz) and abs(mean_sz) <= 1 + tol
            and -0.25 - tol <= zq2 <= 0.25 + tol)


def remaining_drift(zq, spacing=None) -> float:
    r"""Estimated change of Z_Q still to come, from its last three values.

    With ``d1 = z[-2] - z[-3]`` and ``d2 = z[-1] - z[-2]`` at equal steps and
    ``r = d2 / d1``: ``|d2| r / (1 - r)`` (the tail of a geometric series) when
    ``0 <= r < 0.9``; otherwise (slow, growing or oscillating) ``20 |d2|``, a
    deliberately pessimistic value. ``inf`` with fewer than three values.

    Examples
    --------
    >>> round(remaining_drift([1.0, 0.5, 0.25]), 6)      # 0.125 + 0.0625 + ... = 0.25
    0.25
    """
    if len(zq) < 3:
        return math.inf
    d1 = zq[-2] - zq[-3]
    d2 = zq[-1] - zq[-2]
    if d2 == 0.0:
        return 0.0
    if d1 != 0.0:
        r = d2 / d1
        if 0.0 <= r < 0.9:
            return abs(d2) * r / (1.0 - r)
    return 20.0 * abs(d2)


def settled(ctrl: RunControl, tol: float) -> bool:
    r"""Whether the one-site flow has settled: the remaining drift of Z_Q *and* of the
    signed Z_Q^2 are small.

    Z_Q = sqrt(max(Z_Q^2, 0)) is clipped: a state whose mean correlation is negative
    has Z_Q = 0 whatever Z_Q^2 does, so Z_Q alone can look settled while the state
    still moves (measured: strong-exchange chain N = 10, spacing 0.03, theta = 0.5,
    rungs "converged" at Z_Q = 0 against the exact 0.192). The signed Z_Q^2 must settle
    to ``tol (2 Z_Q + tol)``, the change of Z_Q^2 that a change ``tol`` of Z_Q makes.
    """
    if remaining_drift(ctrl.zq) >= tol:
        return False
    if not ctrl.zq2:              # a control restored from an older checkpoint
        return True
    zq = ctrl.zq[-1] if ctrl.zq else 0.0
    return remaining_drift(ctrl.zq2) < tol * (2 * zq + tol)


def relax(engine, ctrl: RunControl, settings: RelaxSettings, chi_target: int, n: int,
          on_step=None) -> str:
    """Integrate ``engine`` (a :class:`.tdvp.TDVP`) until the rung stops; return the reason.

    Parameters
    ----------
    engine : TDVP
        Holds the MPS and the MPO; ``engine.max_bond`` is the rung's chi.
    ctrl : RunControl
        Updated in place (resume by passing a restored one).
    settings : RelaxSettings
    chi_target : int
        Largest bond the rung can reach (min of chi and the full dimension 4^k).
    n : int
        Number of sites.
    on_step : callable, optional
        ``on_step(ctrl, engine)`` after every accepted step (checkpoints, progress bar).

    Returns
    -------
    str
        ``"converged"``, ``"t_max"`` or ``"max_steps"``.
    """
    s = settings
    current = engine.state()               # dense copy of engine.mps, for the measurements
    while True:
        if ctrl.t >= s.t_max - 1e-12:
            return "t_max"
        if s.max_steps is not None and ctrl.step >= s.max_steps:
            return "max_steps"
        cap = min(float(s.dt_max), ctrl.dt_cap or math.inf)
        h = min(ctrl.dt, cap, s.t_max - ctrl.t)
        before = list(engine.mps)          # tensors are never modified in place
        try:
            if ctrl.phase == "grow":
                engine.step(h)
            else:
                engine.step1(h)
        except DeadlineReached:
            # stopped mid-step: put back the last accepted state (and its environments)
            engine.mps = before
            engine._build_right_envs()
            raise
        except NonFiniteKrylov:
            # a local exponential met nan/inf: an unstable step like any other (undone below)
            after, zq2, zq, mean_sz, change = None, math.nan, math.nan, math.nan, math.inf
        else:
            after = engine.state()
            zq2, zq, mean_sz = zq_of(after, n, with_sz=True)
            change = (distance(trace_normalized(after), trace_normalized(current)) / h
                      if math.isfinite(zq2) else math.inf)
        unstable = not math.isfinite(change) or not _physical(zq2, mean_sz) or (
            ctrl.change_prev is not None and change > 10 * ctrl.change_prev
            and ctrl.change_prev < 1e-2 and h > s.dt)
        if unstable:
            engine.mps = before
            engine._build_right_envs()
            ctrl.dt_cap = h / 2
            ctrl.dt = h / 4
            ctrl.rejected += 1
            if ctrl.dt < 1e-6:
                raise ConvergenceError(
                    f"method='mpo': the TDVP step collapsed below 1e-6 at t = {ctrl.t:.3g} (every "
                    "larger step made the state unphysical or non-finite); try a larger max_bond or another "
                    "method: 'exact' (N <= 14), 'permutational' (all-to-all), 'cumulant'")
            continue
        current = after
        ctrl.t += h
        ctrl.step += 1
        ctrl.change_prev = change     # finite: a non-finite change is rejected above
        bonds = list(engine.bond_dims)
        ctrl.history.append([ctrl.t, h, zq2, max(bonds or [1]), ctrl.phase, change])
        if ctrl.phase == "grow":
            ctrl.grow_steps += 1
            ctrl.same_bonds = ctrl.same_bonds + 1 if bonds == ctrl.bonds_prev else 0
            saturated = max(bonds or [1]) >= chi_target
            if ctrl.warm:
                done = ctrl.grow_steps >= (ctrl.grow_target or s.warm_grow_steps)
            else:
                done = ctrl.t >= s.t_grow and (ctrl.same_bonds >= 2 or saturated)
            ctrl.bonds_prev = bonds
            ctrl.dt = min(max(h, ctrl.dt) * s.dt_growth, cap)
            if done:
                ctrl.phase = "relax"
                if ctrl.warm:
                    # the state is already near the fixed point: relax at full step at once
                    ctrl.dt = cap
        else:
            if ctrl.relax_t0 is None:
                ctrl.relax_t0 = ctrl.t - h
            ctrl.zq.append(zq)
            ctrl.zq2.append(zq2)
            ctrl.relax_dt.append(h)
            ctrl.dt = min(max(h, ctrl.dt) * s.dt_growth, cap)
        if on_step is not None:
            on_step(ctrl, engine)
        if ctrl.phase == "relax" and len(ctrl.zq) >= s.min_relax_steps:
            at_cap = all(abs(x - cap) <= 1e-12 * cap for x in ctrl.relax_dt[-3:])
            # the extrapolated drift means little over a span much shorter than the decay
            # time 1/Gamma: a rung whose first step was rejected relaxed at a halved cap and
            # "settled" after 0.3/Gamma (all-to-all N = 30, chi = 256)
            long_enough = ctrl.t - (ctrl.relax_t0 or 0.0) >= s.min_relax_time - 1e-12
            if at_cap and long_enough and settled(ctrl, s.rung_tol):
                return "converged"
