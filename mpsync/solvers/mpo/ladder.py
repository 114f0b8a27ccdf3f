r"""The MPO steady state with an error bar: a bond-dimension ladder of warm-started rungs.

The steady state ``L rho = 0`` of a dipole chain (master equation in
``docs/physics.md``; Gamma = 1, lengths in lambda, times in 1/Gamma) is sought as a
vectorised MPS of bond dimension chi. No single chi says how wrong its Z_Q is, so
by default the solver climbs a ladder ``chi = 8, 16, 32, 64, ...``:

1. the first rung starts from the product state ``initial`` and is brought to its
   fixed point by TDVP (:func:`.relax.relax`: two-site steps while the bonds grow,
   then one-site steps);
2. every further rung starts from the last certified rung's state (never again from
   the product state), lets two-site steps fill the doubled bond dimension and relaxes;
3. every finished rung is **certified** against ``L rho = 0`` (:func:`_judge`): its
   flow settled, its moments are physical, and its certificate, the two-site projected
   residual ``||P_2 L rho|| / ||rho||`` (:meth:`.tdvp.TDVP.projected_residual`, which
   does not rely on the one-site projection whose fixed points the rung found), is no
   worse than the last certified rung's. A rung that fails is continued with two-site
   steps; if it still fails it is left out of the result and of the error bar;
4. the climb stops when the certified rungs agree: the error estimate :func:`zq_error`
   (:func:`ladder_error`, ``|Z_Q(chi_k) - Z_Q(chi_{k-1})|`` or its geometric mean with
   the previous difference, when larger, plus ``drift_k``, the change of Z_Q still
   expected in time at that rung, :func:`.relax.remaining_drift`; and the same rule on
   the unclipped signed Z_Q^2) is below ``zq_tol``, from the third rung on (when the
   ladder has three): a warm rung can stay close to the state it started from, so an
   agreement with the first, cold rung is not trusted (measured: all-to-all N = 30,
   f_eff = 8, W = 4, where chi = 8 and 16 agreed to 6e-6 and were both 3e-3 off).

The result is the last certified rung's state; ``errors["ZQ"]`` is that estimate of
the error of the returned Z_Q from the truncation of the bond dimension (checked
against the exact solvers in the tests and in ``benchmarks/RESULTS.md``: it covers the
true error at N = 8 and 12 and for all-to-all chains up to N = 60). The ladder ends
without agreement when the next rung would not fit in memory (the estimate of
:func:`.prepare.estimate_memory`), when it would exceed ``time_budget`` (default
:data:`DEFAULT_TIME_BUDGET`, checked before each rung and inside its steps), or at the
top of the ladder: then ``diagnostics["converged"]`` is False with the reason, and a
:class:`~mpsync.errors.ConvergenceWarning` is emitted.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
from autoray import to_numpy

from ...errors import (ConvergenceError, ConvergenceWarning, InvalidOptionError, NoErrorBarWarning,
                      StrongExchangeWarning, TooLargeError, check_memory, user_stacklevel)
from ...result import SteadyState
from .checkpoint import check_checkpoint_path, load_checkpoint, save_checkpoint
from .prepare import (build_mpo, check_chain, check_fits, full_bond, initial_mps, moments_of,
                      positive, to_backend)
from .relax import RelaxSettings, RunControl, relax, remaining_drift, zq_of
from .state import to_quimb
from . import u1
from .tdvp import TDVP, DeadlineReached, antihermitian_norm, expand_basis, residual_norm, trace_normalized

__all__ = ["steady_state", "DEFAULT_LADDER", "DEFAULT_TIME_BUDGET", "STRONG_EXCHANGE", "exchange_ratio",
           "ladder_error", "zq_error"]

METHOD = "mpo"

#: bond dimensions climbed by default (the climb stops at agreement, memory or time)
DEFAULT_LADDER = (8, 16, 32, 64, 128, 256, 512, 1024)

#: seconds the default ladder may take (``time_budget``): rungs predicted to end after it are
#: not started. Ten minutes: the all-to-all N = 30, f_eff = 12, W = 5 ladder converges in 107 s
#: (chi = 256, 7e-7 from exact) and every all-to-all case of benchmarks/RESULTS.md up to N = 60
#: returns within it, while an unbounded climb to chi = 512 or 1024 can take hours.
DEFAULT_TIME_BUDGET = 600.0

#: ``max |g_ab| / (Gamma + W)`` above which the ladder's error bar is not trusted
#: (:func:`exchange_ratio`). Measured against the exact solver (benchmarks/RESULTS.md, "Strong
#: exchange"): at 28 (chain spacing 0.05, theta 0.35, W = 2) the rungs converge to the exact
#: Z_Q and the bar covers the true error (N = 10: 5.5e-6; N = 14: 2.8e-4 within 1.9e-3); at 60
#: (spacing 0.03, theta 0.5, W = 4, N = 10) the projected flow's fixed point is 1e-2 off at
#: chi = 16 and >= 7e-3 at chi = 32, more than the two rungs differ. 40 lies between.
STRONG_EXCHANGE = 40.0


def exchange_ratio(system) -> float:
    r"""How strong the exchange is against the dissipation: ``max_ab |g_ab| / (Gamma + W)``.

    The coherent part ``-i[H, rho]`` of L grows with ``|g|`` while Z_Q is set by the
    dissipative rates Gamma and W. Near a truncated state ``rho + d`` the fixed point of the
    projected flow moves by about ``(P L P)^-1 P L d``: the commutator turns the truncation
    error ``d`` into a residual ``|g| |d|`` that the Gamma-scale dissipative modes amplify,
    so above :data:`STRONG_EXCHANGE` the rungs are biased by more than they differ.

    Examples
    --------
    >>> from mpsync import DipoleSystem
    >>> round(exchange_ratio(DipoleSystem.chain(10, 0.03, 0.5, W=4.0)), 1)   # max |g| = 300
    60.1
    >>> exchange_ratio(DipoleSystem.chain(10, 0.1, "magic", W=2.0)) < 1
    True
    """
    return float(np.max(np.abs(system.g), initial=0.0) / (system.gamma + system.W))


def _rungs(n, max_bond, ladder):
    """The bond dimensions to climb, increasing, capped at the full dimension 4^(N/2)."""
    if max_bond is not None:
        rungs = [positive("max_bond", max_bond, integer=True)]
    else:
        if ladder is None:
            ladder = DEFAULT_LADDER
        try:
            rungs = sorted({positive("ladder", x, integer=True) for x in ladder})
        except TypeError:
            raise InvalidOptionError(f"method='mpo': option ladder must be a sequence of bond "
                                     f"dimensions, got {ladder!r}") from None
        if not rungs:
            raise InvalidOptionError("method='mpo': option ladder is empty")
    full = full_bond(n)
    capped = [r for r in rungs if r < full]
    if len(capped) < len(rungs):
        capped.append(full)
    return capped


def _unphysical(moments, tol: float = 1e-3):
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


def steady_state(system, *, max_bond: int | None = None, ladder=None, zq_tol: float = 1e-3,
                 rung_tol: float | None = None, time_budget: float | None = DEFAULT_TIME_BUDGET,
                 cutoff: float = 1e-10, mpo_cutoff: float = 1e-6, dt: float = 0.05,
                 dt_max: float = 1.0, dt_growth: float = 1.5, t_grow: float = 1.0,
                 warm_grow_steps: int = 1, t_max: float = 200.0, max_steps: int | None = None,
                 initial="down", checkpoint=None, checkpoint_every: int = 5, resume=None,
                 progress: bool = False, like: str = "numpy", krylov_tol: float = 1e-6,
                 krylov_dim: int = 30, residual: str | bool = "auto", symmetry: str = "auto"):
    r"""Steady state ``L rho = 0`` of a dipole chain as a vectorised MPS, with its error bar.

    Solves :math:`\mathcal{L}\rho = -i[H,\rho] + L_f[\rho] + L_W[\rho] = 0` with ``Tr rho = 1``
    (``docs/physics.md``; Gamma = 1, lengths in lambda, times in 1/Gamma) for a 1D
    chain with full long-range f and g, by TDVP on a bond-dimension ladder (see the
    module docstring): the default result carries ``errors["ZQ"]``.

    Parameters
    ----------
    system : DipoleSystem
        A 1D chain (positions on a line, or couplings taken in index order) with
        positive semidefinite f.
    max_bond : int, optional
        Run a single rung at this bond dimension. It has no bond-dimension error bar
        (``errors`` is empty; a :class:`~mpsync.errors.NoErrorBarWarning` says so) but
        carries its certificate. The rung is bounded by ``time_budget`` like the ladder:
        one that has not settled at the budget raises :class:`~mpsync.errors.ConvergenceError`
        (pass ``time_budget=None`` for a large ``max_bond``). Default: the ladder.
    ladder : sequence of int, optional
        The bond dimensions to climb (default 8, 16, 32, ..., 1024; capped at 4^(N/2),
        where the MPS is exact).
    zq_tol : float
        The climb stops when two rungs agree in Z_Q within ``zq_tol``.
    rung_tol : float, optional
        A rung stops when the change of Z_Q still expected in time is below this
        (default ``zq_tol / 10``).
    time_budget : float or None
        Seconds (default :data:`DEFAULT_TIME_BUDGET`, 600): no rung is started that is
        predicted to end after it (its cost scaled from the last rung's as chi^p, p measured
        from the last two rungs, between 2 and 3: :func:`predicted_rung_seconds`), and a
        rung still running at the budget is abandoned for the previous one; the result is
        then the best certified rung, with ``converged`` False if its error bar is above
        ``zq_tol``. ``None``: no bound.
    cutoff : float
        Singular values below ``cutoff`` times the largest are dropped.
    mpo_cutoff : float
        Compression tolerance of the Liouvillian MPO's coefficient blocks (relative
        singular-value cutoff). 1e-6 shrinks the MPO bond of a 100-dipole chain from 68
        (1e-10) to 46 and moved Z_Q by 1e-9 at N = 20.
    dt, dt_max, dt_growth : float
        First TDVP step, largest step and growth per step (1/Gamma).
    t_grow : float
        A cold rung takes two-site steps at least until this time.
    warm_grow_steps : int
        Two-site steps that fill a warm rung's new bond dimension.
    t_max : float
        Longest evolution per rung (1/Gamma).
    max_steps : int, optional
        Most TDVP steps per rung.
    initial : "down", "up", "x" or list of 2 x 2 density matrices
        Product state of the first rung.
    checkpoint : path, optional
        ``.npz`` written every ``checkpoint_every`` steps and after every rung (checked
        for writability before any work).
    resume : path, optional
        Continue a run from its checkpoint (same system and same answer-changing
        options, else :class:`~.checkpoint.CheckpointError`); the resumed run
        reproduces the uninterrupted one step for step, the certified rungs below
        included (the checkpoint carries them: the fallback of a rejected rung and the
        lower run of the two-time error bar).
    progress : bool
        A tqdm bar per rung with t, Z_Q and the drift.
    like : str
        autoray backend of the tensors: "numpy", "cupy", "torch".
    krylov_tol, krylov_dim : float, int
        Accuracy and size of the Arnoldi exponentials of TDVP.
    symmetry : "auto", "U1" or "none"
        ``"U1"``: from chi = 32 on (:data:`.u1.BLOCKS_FROM_CHI`) every tensor is
        block-sparse in the conserved charge ``n_ket - n_bra`` (:mod:`.u1`, on symmray),
        which makes a rung at chi = 64 about 5x faster and keeps the charge exact.
        ``"none"``: dense tensors. ``"auto"`` (default): ``"U1"`` with ``like="numpy"``,
        ``"none"`` with another backend (cupy, torch).
    residual : "auto", True or False
        Compute the relative residual ``||L rho||_2 / ||rho||_2`` of the final state
        (cost O(N (4 chi^3 D^2 + 16 chi^2 D^3))); ``"auto"`` does when its predicted
        time is under a quarter of the run's.

    Returns
    -------
    SteadyState
        ``state``: the unit-trace state as a :class:`quimb.tensor.MatrixProductState`
        (index convention in :mod:`.state`). ``errors["ZQ"]`` (and ``"ZQ2"``, ``"sz"``:
        differences between the last two rungs plus the drift) with the ladder.
        ``diagnostics``: ``converged``, ``stop_reason``, ``ladder`` (per rung:
        ``max_bond``, ``ZQ``, ``ZQ2``, ``drift``, ``drift_ZQ2``, ``certificate``
        (``||P_2 L rho|| / ||rho||``), ``certified``, ``verify_rounds``,
        ``rejected_because``, ``unphysical``, ``seconds``, ``first_pass_seconds``, ``steps``, ``time``,
        ``stop_reason``, ``bond``, ``matvecs``, ``rejected_steps``: steps undone for going
        unphysical; ``charge_leak``: see :class:`.u1.BlockTDVP`), ``max_bond``, ``bond_dims``,
        ``mpo_bond_dims``, ``certificate`` (the returned rung's), ``uncertified_rungs``
        (when some were left out), ``residual`` (or None), ``truncation``, ``antihermitian``,
        ``matvecs``, ``seconds``, ``history`` (last rung: t, dt, Z_Q^2, bond, phase,
        state change rate).

    Raises
    ------
    NotApplicableError
        Not a 1D chain.
    InvalidOptionError
        A bad option value.
    TooLargeError
        Even the first rung does not fit in memory.
    ConvergenceError
        The final state is unphysical (|<sz>| > 1 or |C_ab| > 1/2): retry with a
        smaller ``dt_max``.

    Examples
    --------
    >>> from mpsync import DipoleSystem, steady_state
    >>> ss = steady_state(DipoleSystem.chain(4, 0.2, "magic", W=2.0), method="mpo")
    >>> ss.diagnostics["converged"], ss.diagnostics["max_bond"]   # 4^2: exact bond
    (True, 16)
    >>> ss.state.L
    4
    """
    t_start = time.perf_counter()
    system.check_lindblad("method='mpo'")
    check_chain(system)
    n = system.n
    zq_tol = positive("zq_tol", zq_tol)
    rung_tol = zq_tol / 10 if rung_tol is None else positive("rung_tol", rung_tol)
    settings = RelaxSettings(
        dt=positive("dt", dt), dt_max=positive("dt_max", dt_max),
        dt_growth=positive("dt_growth", dt_growth), t_grow=positive("t_grow", t_grow, allow_zero=True),
        warm_grow_steps=positive("warm_grow_steps", warm_grow_steps, integer=True),
        rung_tol=rung_tol, t_max=positive("t_max", t_max),
        max_steps=None if max_steps is None else positive("max_steps", max_steps, integer=True))
    if settings.dt_growth < 1:
        raise InvalidOptionError(f"method='mpo': option dt_growth must be >= 1, got {dt_growth!r}")
    cutoff = positive("cutoff", cutoff, allow_zero=True)
    mpo_cutoff = positive("mpo_cutoff", mpo_cutoff, allow_zero=True)
    krylov_tol = positive("krylov_tol", krylov_tol)
    krylov_dim = positive("krylov_dim", krylov_dim, integer=True)
    checkpoint_every = positive("checkpoint_every", checkpoint_every, integer=True)
    if time_budget is not None:
        time_budget = positive("time_budget", time_budget)
    if residual not in ("auto", True, False):
        raise InvalidOptionError(f"method='mpo': option residual must be 'auto', True or False, "
                                 f"got {residual!r}")
    symmetry = u1.resolve_symmetry(symmetry, like)
    rungs = _rungs(n, max_bond, ladder)
    if checkpoint is not None:
        check_checkpoint_path(checkpoint)
    ratio = exchange_ratio(system)
    strong = ratio > STRONG_EXCHANGE and rungs[0] < full_bond(n)
    if strong:
        # said before the work: such a run can take many minutes and then still not be the answer
        warnings.warn(
            f"method='mpo': strong exchange, max |g_ab| = {ratio * (system.gamma + system.W):.3g} Gamma = "
            f"{ratio:.3g} (Gamma + W) > {STRONG_EXCHANGE:g}: below the exact bond dimension the MPO's rungs "
            "are biased here by more than they differ (measured 1e-2 in Z_Q at N = 10, chi = 16-32), so the "
            "result will not be called converged; use method='exact' (N <= 14)",
            StrongExchangeWarning, stacklevel=user_stacklevel())
    mpo, mpo_dims = build_mpo(system, mpo_cutoff, like)
    check_fits(n, rungs[0], mpo_dims, krylov_dim)
    cfg = dict(system=system, mpo=mpo, mpo_dims=mpo_dims, rungs=rungs, settings=settings,
               zq_tol=zq_tol, time_budget=time_budget, cutoff=cutoff, initial=initial,
               checkpoint=checkpoint, checkpoint_every=checkpoint_every, progress=progress,
               like=like, krylov_tol=krylov_tol, krylov_dim=krylov_dim, single=max_bond is not None,
               symmetry=symmetry,
               answer_options={"max_bond": rungs[0] if max_bond is not None else None,
                               "ladder": None if max_bond is not None else rungs,
                               "zq_tol": zq_tol, "rung_tol": rung_tol,
                               "cutoff": cutoff, "mpo_cutoff": mpo_cutoff,
                               "initial": initial if isinstance(initial, str) else "custom"})
    retries = 0
    started = time.perf_counter()       # one clock for every retry: time_budget is per call
    while True:
        eng, records, ctrl, stop, secs, certified = _climb(resume=resume, started=started, **cfg)
        if not records:
            raise ConvergenceError(
                f"method='mpo': not even the first rung (max_bond={rungs[0]}) finished within "
                f"time_budget={time_budget:g} s{_strong_note(strong, ratio)}; raise time_budget (None: no "
                "bound), or try another method: 'exact' (N <= 14), 'permutational' (all-to-all), 'cumulant'")
        mps = trace_normalized(eng.state())
        moments = moments_of(mps)
        why = _unphysical(moments)
        if why is None:
            break
        # large one-site steps can make the projected flow unstable for strongly collective
        # systems (all-to-all f_eff = 8, N = 10 diverged at dt_max = 1); retry smaller
        if resume is not None or retries == 2:
            raise ConvergenceError(
                f"method='mpo' ended on an unphysical state ({why}) even with dt_max="
                f"{settings.dt_max:.3g}{_strong_note(strong, ratio)}; try a smaller dt_max or another "
                "method: 'exact' (N <= 14), 'permutational' (all-to-all), 'cumulant'")
        retries += 1
        settings.dt_max /= 5.0
    result = _result(system, eng, records, ctrl, stop, time.perf_counter() - t_start + secs,
                     mpo=mpo, mpo_dims=mpo_dims, zq_tol=zq_tol, single=max_bond is not None,
                     residual=residual, like=like, resume=resume, retries=retries,
                     moments=moments, mps=mps, symmetry=symmetry,
                     previous=certified[-2] if len(certified) >= 2 else None,
                     exchange=(ratio, strong))
    # two_time propagates with the Liouvillian whose fixed point this is (same compression)
    result.diagnostics["mpo_cutoff"] = mpo_cutoff
    return result


def _climb(*, system, mpo, mpo_dims, rungs, settings, zq_tol, time_budget, cutoff, initial,
           checkpoint, checkpoint_every, progress, like, krylov_tol, krylov_dim, single,
           answer_options, resume, symmetry="none", started=None):
    """Climb the ladder; returns (engine, rung records, last control, stop reason,
    seconds spent before a resume, the certified rungs' (max_bond, dense MPS), the last two
    only, restored from the checkpoint on a resume)."""
    t_start = time.perf_counter() if started is None else started
    n = system.n
    records: list = []
    ctrl = None
    done = False
    stop = "ladder_end"
    if resume is not None:
        mps0, saved = load_checkpoint(resume, system, answer_options)
        records = saved["records"]
        k0 = int(saved["rung"])
        ctrl = RunControl.from_dict(saved["ctrl"]) if saved["ctrl"] is not None else None
        done = bool(saved.get("done", False))
        stop = saved.get("stop", stop)
        # the engine the uninterrupted run had at this rung (see the cold start below)
        sym = symmetry if k0 > 0 or u1.charge_zero(initial, n) else "none"
        eng = _engine_class(sym, rungs[k0])(mpo, [to_backend(A, like) for A in mps0], max_bond=rungs[k0],
                                            cutoff=cutoff, krylov_tol=krylov_tol, krylov_dim=krylov_dim,
                                            canonical=True)
        eng.truncation, eng.matvecs = saved["truncation"], saved["matvecs"]
        before = float(saved.get("seconds", 0.0))
        certified = [(chi, [np.asarray(A) for A in rung]) for chi, rung in saved["certified"]]
    else:
        k0 = 0
        mps0 = initial_mps(initial, n, like)
        ctrl = RunControl(dt=settings.dt)
        if n > 2:
            # one tiny Euler step puts L|rho>> into the bond spaces (see tdvp.expand_basis)
            h0 = 1e-3 * min(settings.dt, 1e-2)
            mps0 = expand_basis(mpo, mps0, h0, rungs[0])
            ctrl.t = h0
        # a first state with coherences (initial="x") has weight outside the charge-0
        # sector: it stays dense until it has relaxed (the next rung converts it)
        cold = symmetry if u1.charge_zero(initial, n) else "none"
        eng = _engine_class(cold, rungs[0])(mpo, mps0, max_bond=rungs[0], cutoff=cutoff,
                                            krylov_tol=krylov_tol, krylov_dim=krylov_dim)
        before = 0.0
        certified = []   # (max_bond, dense MPS) of the last two certified rungs

    def seconds():
        return before + time.perf_counter() - t_start

    def save(k, finished=False):
        if checkpoint is None:
            return
        state = {"rung": k, "records": records, "ctrl": None if ctrl is None else ctrl.to_dict(),
                 "seconds": seconds(), "truncation": eng.truncation, "matvecs": eng.matvecs,
                 "done": finished, "stop": stop}
        save_checkpoint(checkpoint, system, eng.state(), state, answer_options, certified)

    best = None          # the last certified rung's (engine, state): what the ladder returns
    if certified:
        # resumed: the last certified rung, saved with the checkpoint, is again the state a
        # rejected or abandoned rung falls back on (an engine of that rung's kind)
        chi_c, mps_c = certified[-1]
        sym = symmetry if rungs.index(chi_c) > 0 or u1.charge_zero(initial, n) else "none"
        best_eng = _engine_class(sym, chi_c)(mpo, [to_backend(A, like) for A in mps_c], max_bond=chi_c,
                                             cutoff=cutoff, krylov_tol=krylov_tol,
                                             krylov_dim=krylov_dim, canonical=True)
        best = (best_eng, list(best_eng.mps))
    prev = best          # the last finished rung's (engine, state), kept for the time budget
    for k in range(k0, len(rungs)):
        if done:
            break
        chi = rungs[k]
        if ctrl is None:
            # a new rung, warm-started from the previous one
            if time_budget is not None and records:
                if seconds() + predicted_rung_seconds(records, chi) > time_budget:
                    stop = "time_budget"
                    break
            try:
                check_fits(n, chi, mpo_dims, krylov_dim)
            except TooLargeError:
                stop = "memory"
                break
            eng.max_bond = chi
            if type(eng) is not _engine_class(symmetry, chi):
                eng = u1.BlockTDVP.from_engine(eng)     # rungs increase: only dense -> blocks
            ctrl = RunControl(warm=True, dt=min(settings.warm_dt, settings.dt_max))
        target = min(chi, full_bond(n))
        rung_start = seconds()
        # the budget binds inside a step as well (a single explicit rung is bounded too)
        deadline = None if time_budget is None else t_start + time_budget - before
        mv0 = eng.matvecs
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(desc=f"mpo N={n} chi={chi}", unit="step", leave=False)

        def on_step(c, e, k=k, bar=bar):
            if bar is not None:
                bar.update(1)
                zq = math.sqrt(max(c.history[-1][2], 0.0))
                bar.set_postfix_str(f"t={c.t:.3g} ZQ={zq:.6f} drift={remaining_drift(c.zq):.1e} "
                                    f"bond={max(e.bond_dims or [1])} {c.phase}")
            if c.step % checkpoint_every == 0:
                save(k)
            if time_budget is not None and records and seconds() > time_budget:
                raise _OverBudget

        try:
            reason = _relax_rung(eng, ctrl, settings, target, n, on_step, can_fail=bool(records),
                                 deadline=deadline)
        finally:
            if bar is not None:
                bar.close()
        if reason == "time_budget":
            # abandon this rung: the result is the previous (finished) one, held by the
            # previous engine (a dense one when this rung was the first on blocks)
            if prev is not None:
                prev_eng, prev_mps = prev
                prev_eng.matvecs, prev_eng.truncation = eng.matvecs, eng.truncation
                eng = prev_eng
                eng.mps = prev_mps
                eng._build_right_envs()
            stop = "time_budget"
            break
        rec = _measure(eng, ctrl, reason, chi, seconds() - rung_start, eng.matvecs - mv0)
        # the cost of the rung's own relaxation, before any verification rounds: the next
        # rung is predicted from it (predicted_rung_seconds), since it starts afresh
        first_pass = rec["seconds"]
        verdict = _judge(rec, _accepted(records))
        rounds = 0
        while verdict is not None and reason == "converged" and rounds < settings.verify_rounds \
                and not (time_budget is not None and records and seconds() > time_budget):
            # not accepted: continue this rung with two-site steps (which re-select the bond
            # basis, unlike the one-site flow) at a halved step ceiling, then relax again
            rounds += 1
            _restart_for_verification(ctrl, settings)
            vbar = None
            if progress:     # its own bar: these rounds can cost more than the rung did
                from tqdm.auto import tqdm
                vbar = tqdm(desc=f"mpo N={n} chi={chi} verify {rounds}", unit="step", leave=False)
            try:
                reason = _relax_rung(eng, ctrl, settings, target, n,
                                     lambda c, e, vbar=vbar: on_step(c, e, bar=vbar),
                                     can_fail=True, deadline=deadline)
            finally:
                if vbar is not None:
                    vbar.close()
            rec = _measure(eng, ctrl, reason, chi, seconds() - rung_start, eng.matvecs - mv0)
            verdict = _judge(rec, _accepted(records))
        rec["verify_rounds"] = rounds
        rec["first_pass_seconds"] = first_pass
        rec["certified"] = verdict is None
        rec["rejected_because"] = verdict
        records.append(rec)
        eng.charge_leak = 0.0
        if verdict is None:
            best = (eng, list(eng.mps))
            # kept so that the two-time functions' error bar can start its lower run from
            # the lower rung's own steady state (mpo/regression.py)
            certified = certified[-1:] + [(chi, [np.asarray(to_numpy(A)) for A in eng.state()])]
        elif best is not None and reason != "time_budget":
            # an uncertified rung is left out: the next rung climbs from the last certified
            # state, not from a wrong fixed point
            best_eng, best_mps = best
            best_eng.matvecs, best_eng.truncation = eng.matvecs, eng.truncation
            eng, eng.mps = best_eng, list(best_mps)
            eng._build_right_envs()
        prev = best if best is not None else (eng, list(eng.mps))
        accepted = _accepted(records)
        if reason == "time_budget":
            stop = "time_budget"
        elif chi >= full_bond(n) and verdict is None:
            stop = "exact_bond"
        elif len(accepted) >= max(2, min(3, len(rungs))) and verdict is None and \
                zq_error(accepted) < zq_tol:
            stop = "converged"
        elif single:
            stop = "single_rung"
        elif k + 1 == len(rungs):
            stop = "ladder_end"
        else:
            ctrl = None
            save(k + 1)
            continue
        save(k, finished=True)
        break
    if best is not None and records and not records[-1].get("certified", True):
        # the result is the best certified rung (the last one: each certified rung's
        # certificate is no worse than its predecessor's)
        best_eng, best_mps = best
        best_eng.matvecs, best_eng.truncation = eng.matvecs, eng.truncation
        eng, eng.mps = best_eng, list(best_mps)
    return eng, records, ctrl, stop, before, certified


#: bounds of the exponent p in the predicted cost of the next rung, seconds ~ chi^p
#: (:func:`predicted_rung_seconds`): 3 is the cost of one dense matvec, 2 the smallest growth
#: measured between rungs (warm rungs need fewer matvecs than cold ones)
RUNG_COST_EXPONENTS = (2.0, 3.0)


def predicted_rung_seconds(records, chi) -> float:
    """Seconds the rung at ``chi`` is predicted to take, from the finished rungs ``records``.

    ``seconds_last * (chi / chi_last)^p``, with p measured from the last two rungs and held
    in :data:`RUNG_COST_EXPONENTS` (p = 2 after the first rung). The seconds are each rung's
    first pass (``first_pass_seconds``), without the verification rounds of a rung that was
    not accepted at once: those are two-site steps at a halved step ceiling, several times
    the cost of a rung's own relaxation, and the next rung starts without them. Counted in
    (the magic-angle chain N = 40 at W_opt: the rejected chi = 16 rung took 100 s with 2
    rounds), they predicted 800 s for chi = 32, which took 120 s; with 3 jobs on 2 cores the
    prediction passed the 1800 s budget and the ladder stopped, unconverged, at chi = 8.
    Measured (benchmarks/RESULTS.md, "The rung-cost prediction"): the first rung relaxes from a product state
    and costs as much as the next one or more (the next one cost 0.75-3.8 times as much on
    the chains and the all-to-all ensemble measured, i.e. p <= 1.9), so the dense-matvec
    bound chi^3 made the ladder stop with most of its budget unused. A rung that still
    overruns is stopped by the in-step deadline and the previous rung returned.
    """
    def cost(r):
        return r.get("first_pass_seconds", r["seconds"])

    last = records[-1]
    lo, hi = RUNG_COST_EXPONENTS
    p = lo
    if len(records) >= 2:
        before = records[-2]
        if last["max_bond"] > before["max_bond"] and cost(before) > 0 and cost(last) > 0:
            p = math.log(cost(last) / cost(before)) / math.log(last["max_bond"] / before["max_bond"])
            p = min(max(p, lo), hi)
    return cost(last) * (chi / last["max_bond"]) ** p


#: a certificate counts as "worse" than its predecessor's above this factor of it ...
CERTIFICATE_SLACK = 1.1
#: ... and above this fraction of the first rung's certificate (the floor that the
#: cutoffs and the Krylov tolerance leave, below which two certificates do not differ)
CERTIFICATE_FLOOR = 1e-6


def _measure(eng, ctrl, reason, chi, seconds, matvecs):
    """The record of a finished rung: Z_Q, signed Z_Q^2, <sz>, drifts and the certificate."""
    n = eng.n
    dense = eng.state()
    zq2, zq = zq_of(dense, n)
    moments = moments_of(dense)
    sz = np.real(np.asarray(moments.sz))
    t0 = time.perf_counter()
    cert = float(eng.projected_residual())
    return {"max_bond": chi, "bond": int(max(eng.bond_dims or [1])), "ZQ": zq,
            "ZQ2": zq2, "sz": sz.tolist(), "drift": remaining_drift(ctrl.zq),
            "drift_ZQ2": remaining_drift(ctrl.zq2), "certificate": cert,
            "certificate_seconds": time.perf_counter() - t0,
            "unphysical": _unphysical(moments),
            "seconds": seconds, "steps": ctrl.step, "time": ctrl.t,
            "stop_reason": reason, "matvecs": matvecs, "rejected_steps": ctrl.rejected,
            # how far the dense state's bond charges were from integers when
            # this rung went on to blocks (0: exactly symmetric, or no switch)
            "charge_leak": float(getattr(eng, "charge_leak", 0.0))}


def _accepted(records):
    """The certified rungs: the only ones the error bar and the result are built from."""
    return [r for r in records if r.get("certified", True)]


def _judge(rec, accepted):
    """Why a finished rung is not accepted (None when it is).

    A rung is certified when its one-site flow settled (``stop_reason == "converged"``),
    its state is physical, and its certificate (:meth:`.tdvp.TDVP.projected_residual`,
    ``||P_2 L rho|| / ||rho||``) is no worse than the last certified rung's. This is a
    measured rule, not a theorem: a larger bond dimension holds every state a smaller
    one does, so its best state's full residual ||L rho|| is no larger, but eta_2 projects
    onto each rung's own two-site tangent space, which grows with chi, so it could rise
    on a better state. Along every certified ladder of benchmarks/RESULTS.md ("Which
    certificate": N = 8 against exact, N = 20-60 all-to-all) eta_2 fell with the true
    error (|Z_Q - exact| <= 0.025 eta_2), and the rungs it flagged were wrong fixed points
    (all-to-all N = 40, f_eff = 10, W = 2: chi = 64 0.14 from exact with eta_2 1.6e3 after
    2.3e-2 at chi = 32); ``CERTIFICATE_SLACK`` leaves 10 % for the projection. A rung whose Z_Q moved by more than the last error bar although its
    certificate fell by less than half is not trusted either: the move says one of
    the two is wrong, and only a clearly better certificate says which.
    """
    if rec["stop_reason"] != "converged":
        return f"the rung stopped at {rec['stop_reason']} before Z_Q settled"
    if rec["unphysical"] is not None:
        return f"the rung ended on an unphysical state ({rec['unphysical']})"
    if not accepted:
        return None
    last = accepted[-1]
    floor = CERTIFICATE_FLOOR * accepted[0].get("certificate", 0.0)   # (older checkpoints: none)
    if rec["certificate"] > max(CERTIFICATE_SLACK * last.get("certificate", math.inf), floor):
        return (f"its certificate {rec['certificate']:.3g} is worse than the previous rung's "
                f"{last['certificate']:.3g}")
    if len(accepted) >= 2 and rec["certificate"] > max(0.5 * last.get("certificate", math.inf), floor):
        bar = zq_error(accepted)
        move = abs(rec["ZQ"] - last["ZQ"])
        if move > bar:
            return (f"Z_Q moved by {move:.3g}, more than the previous error bar {bar:.3g}, "
                    f"while its certificate fell only from {last['certificate']:.3g} to "
                    f"{rec['certificate']:.3g}")
    return None


def _restart_for_verification(ctrl, settings):
    """Send a rung that was not accepted back to two-site steps at a halved step ceiling."""
    cap = min(float(settings.dt_max), ctrl.dt_cap or math.inf) / 2
    ctrl.phase, ctrl.warm = "grow", True
    ctrl.grow_steps, ctrl.grow_target = 0, settings.verify_grow_steps
    ctrl.zq, ctrl.zq2, ctrl.relax_dt, ctrl.relax_t0 = [], [], [], None
    ctrl.dt_cap = cap
    ctrl.dt = min(settings.warm_dt, cap)
    ctrl.change_prev = None


def _relax_rung(eng, ctrl, settings, target, n, on_step, can_fail, deadline=None):
    """:func:`.relax.relax`, with the time budget and a collapsed step as stop reasons.

    ``deadline`` (a ``time.perf_counter()`` value) is checked inside the steps too
    (:attr:`.tdvp.TDVP.deadline`): a stiff step can take minutes of Krylov sub-steps
    (all-to-all N = 60, f_eff = W = 15: the chi = 16 rung ran 9 min past a 240 s budget
    when the budget was checked between steps only).

    A rung whose step collapsed (every step made the state unphysical: strong exchange,
    spacing 0.03 lambda, at chi = 16) is a rung that failed, not a run that failed, once
    an earlier rung has finished (``can_fail``): it is left out like any uncertified rung.
    """
    eng.deadline = deadline
    try:
        return relax(eng, ctrl, settings, target, n, on_step=on_step)
    except (_OverBudget, DeadlineReached):
        return "time_budget"
    except ConvergenceError:
        if not can_fail:
            raise
        return "step_collapse"
    finally:
        eng.deadline = None


def _engine_class(symmetry, chi):
    return u1.BlockTDVP if symmetry == "U1" and chi >= u1.BLOCKS_FROM_CHI else TDVP


def _result(system, eng, records, ctrl, stop, seconds, *, mpo, mpo_dims, zq_tol, single, residual,
            like, resume, retries, moments, mps, symmetry="none", previous=None, exchange=(0.0, False)):
    """Assemble the SteadyState (errors from the ladder, diagnostics, warning).

    ``previous``: (max_bond, MPS) of the certified rung below the returned one, kept in
    ``extras["previous_mps"]`` (trace 1) for the two-time error bar. ``exchange``:
    (:func:`exchange_ratio`, whether it is above :data:`STRONG_EXCHANGE`)."""
    n = system.n
    if not records:
        raise ConvergenceError("method='mpo': no rung finished within the time budget; raise "
                               "time_budget or give max_bond")
    accepted = _accepted(records)
    last = accepted[-1] if accepted else records[-1]     # the rung whose state is returned
    errors = {}
    if stop == "exact_bond":
        # nothing truncated: the only error left is the evolution's
        errors["ZQ"] = last["drift"]
        errors["ZQ2"] = last["drift_ZQ2"]     # not 2 Z_Q drift: Z_Q may be a clipped 0
    elif len(accepted) >= 2:
        prev = accepted[-2]
        errors["ZQ"] = zq_error(accepted)
        errors["ZQ2"] = _zq2_error(accepted)
        errors["sz"] = np.abs(np.asarray(last["sz"]) - np.asarray(prev["sz"]))
    converged = bool(accepted) and last["stop_reason"] == "converged" and \
        stop in ("converged", "exact_bond", "single_rung")
    # at strong exchange the rungs' differences do not bound their bias: only the exact bond does
    distrusted = exchange[1] and stop != "exact_bond" and converged
    converged = converged and not distrusted
    res = None
    residual_note = None
    if residual is True or (residual == "auto" and _residual_is_cheap(eng, mpo_dims, n, seconds)):
        chi, D = max(eng.bond_dims or [1]), max(mpo_dims or [1])
        try:
            # its largest temporary is (chi, D, D, 4, chi) complex: 2.2 GB at chi = 128, D = 46
            check_memory(3 * 16.0 * chi * chi * D * D * 4, "the residual ||L rho||")
        except TooLargeError as exc:
            residual_note = f"residual skipped: {exc}"   # a diagnostic never costs a finished run
        else:
            t0 = time.perf_counter()
            res = float(residual_norm(mpo, mps))
            seconds += time.perf_counter() - t0
    bonds = list(eng.bond_dims)
    diagnostics = {
        "seconds": seconds,
        "converged": bool(converged),
        "stop_reason": stop,
        "zq_tol": zq_tol,
        "ladder": records_without_arrays(records),
        "max_bond": int(max(bonds or [1])),
        "bond_dims": bonds,
        "mpo_bond_dims": mpo_dims,
        "residual": res,
        "truncation": float(eng.truncation),
        "antihermitian": float(antihermitian_norm(mps)),
        "matvecs": int(eng.matvecs),
        "steps": int(sum(r["steps"] for r in records)),
        "time": float(last["time"]),
        "history": [] if ctrl is None else ctrl.history,
        "backend": str(like),
        "symmetry": symmetry,
        "dt_max_retries": retries,
        "exchange_ratio": float(exchange[0]),
    }
    if resume is not None:
        diagnostics["resumed_from"] = str(resume)
    if residual_note is not None:
        diagnostics["residual_note"] = residual_note
    diagnostics["certificate"] = float(last.get("certificate", math.nan))
    left_out = [r["max_bond"] for r in records if not r.get("certified", True)]
    if left_out:
        diagnostics["uncertified_rungs"] = left_out
    if not converged:
        if distrusted:
            detail = (f"strong exchange (max |g_ab| / (Gamma + W) = {exchange[0]:.3g} > {STRONG_EXCHANGE:g}): "
                      "the rungs agree, but below the exact bond dimension their common bias can exceed "
                      "their difference, so the error bar is not a bound; use method='exact' (N <= 14)")
        elif not accepted:
            detail = (f"the rung at max_bond={last['max_bond']} was not certified: "
                      f"{last.get('rejected_because') or last['stop_reason']}")
        elif stop == "single_rung" or (last["stop_reason"] != "converged"):
            detail = (f"the rung at max_bond={last['max_bond']} stopped at {last['stop_reason']} "
                      "before Z_Q settled")
        else:
            detail = (f"the ladder stopped ({stop}) before two rungs agreed within zq_tol={zq_tol:g}"
                      + (f"; error bar {errors['ZQ']:.2g}" if "ZQ" in errors else ""))
        if left_out:
            detail += (f"; rungs {left_out} were not certified and are left out of the result "
                       "and its error bar")
        diagnostics["warning"] = detail
        warnings.warn(f"method='mpo' did not converge: {detail}; diagnostics['converged'] is False",
                      ConvergenceWarning, stacklevel=user_stacklevel())
    elif stop == "single_rung":
        detail = (f"a single rung at max_bond={last['max_bond']}: Z_Q = {last['ZQ']:.6g} has no "
                  f"bond-dimension error bar (certificate ||P2 L rho||/||rho|| = "
                  f"{diagnostics['certificate']:.3g}); run the ladder (no max_bond) for one")
        diagnostics["warning"] = detail
        warnings.warn(f"method='mpo': {detail}", NoErrorBarWarning, stacklevel=user_stacklevel())
    mps_np = [np.asarray(to_numpy(A)) for A in mps]
    extras = {"mps": mps_np, "state": to_quimb(mps_np)}
    if previous is not None:
        extras["previous_mps"] = [np.asarray(A) for A in trace_normalized(previous[1])]
        extras["previous_max_bond"] = int(previous[0])
    return SteadyState(system, moments, METHOD, diagnostics, errors=errors, extras=extras)


def _strong_note(strong, ratio):
    """The clause a refusal adds at strong exchange (it names why the run was hard)."""
    return (f" (strong exchange: max |g_ab| / (Gamma + W) = {ratio:.3g} > {STRONG_EXCHANGE:g}, where the "
            "MPO's rungs are stiff and biased)") if strong else ""


def ladder_error(records) -> float:
    r"""The error bar of the last rung's Z_Q from the ladder.

    With the differences ``d_k = |Z_Q(chi_k) - Z_Q(chi_{k-1})|`` of the last rungs and
    the last rung's drift: ``max(d_k, sqrt(d_k d_{k-1})) + drift`` (``d_k + drift``
    with two rungs). Convergence in chi is not always monotonic: at N = 8 (magic-angle
    chain, spacing 0.1, W = 2) the errors against the exact Z_Q are +9.3e-4, +2.2e-5,
    -3.5e-5, +1.7e-5, +2.2e-6 at chi = 8, 16, 24, 32, 48, so chi = 16 and 32 agree to
    4.8e-6 while both are 2e-5 off. The geometric mean with the previous difference
    (6.6e-5 there) keeps such an accidental agreement from shrinking the error bar;
    under steady geometric convergence it is at most ``d_{k-1}``.

    Examples
    --------
    >>> rec = [{"ZQ": 0.10, "drift": 0.0}, {"ZQ": 0.11, "drift": 0.0}, {"ZQ": 0.1101, "drift": 0.0}]
    >>> round(ladder_error(rec), 6)        # sqrt(1e-2 * 1e-4)
    0.001
    """
    last = records[-1]
    d = abs(last["ZQ"] - records[-2]["ZQ"])
    if len(records) >= 3:
        d = max(d, math.sqrt(d * abs(records[-2]["ZQ"] - records[-3]["ZQ"])))
    return d + last["drift"]


def _difference(records, key):
    """``max(d_k, sqrt(d_k d_{k-1}))`` of ``key`` over the last rungs (``d_k`` with two)."""
    d = abs(records[-1][key] - records[-2][key])
    if len(records) >= 3:
        d = max(d, math.sqrt(d * abs(records[-2][key] - records[-3][key])))
    return d


def _zq2_error(records) -> float:
    """The ladder's error bar of the signed Z_Q^2 (difference rule plus its drift)."""
    last = records[-1]
    drift2 = last.get("drift_ZQ2", 2 * last["ZQ"] * last["drift"])
    return _difference(records, "ZQ2") + drift2


def zq_error(records) -> float:
    r"""The error bar of the last rung's Z_Q, from Z_Q *and* from the signed Z_Q^2.

    :func:`ladder_error` works on the clipped ``Z_Q = sqrt(max(Z_Q^2, 0))``: two rungs
    that both clip to 0 agree exactly whatever their states (measured: a strong-exchange
    chain whose rungs at chi = 8 and 16 both gave Z_Q = 0, error bar 0, against the exact
    0.192). The signed Z_Q^2 is never clipped; with its ladder error ``e2`` (the same
    difference rule, plus its drift) Z_Q can lie anywhere in
    ``[sqrt(max(Z_Q^2 - e2, 0)), sqrt(Z_Q^2 + e2)]``; the propagated error is the larger
    of the two distances from Z_Q: ``~ e2 / (2 Z_Q)`` (the Z_Q difference) where Z_Q is
    well above it, and ``sqrt(e2)`` at Z_Q = 0. The error bar is the larger of that and
    :func:`ladder_error`.

    Examples
    --------
    >>> rec = [{"ZQ": 0.0, "ZQ2": -0.01, "drift": 0.0, "drift_ZQ2": 0.0},
    ...        {"ZQ": 0.0, "ZQ2": -0.03, "drift": 0.0, "drift_ZQ2": 0.0}]
    >>> ladder_error(rec), round(zq_error(rec), 4)       # two clipped zeros
    (0.0, 0.1414)
    """
    last = records[-1]
    e2 = _zq2_error(records)
    z = last["ZQ"]
    propagated = max(math.sqrt(z * z + e2) - z, z - math.sqrt(max(z * z - e2, 0.0))) if e2 > 0 else 0.0
    return max(ladder_error(records), propagated)


class _OverBudget(Exception):
    """Raised from the step callback when the time budget is spent mid-rung."""


def records_without_arrays(records):
    """The ladder records as the user sees them (without the per-site ``sz``)."""
    return [{k: v for k, v in r.items() if k != "sz"} for r in records]


def _residual_is_cheap(eng, mpo_dims, n, seconds) -> bool:
    """Whether the residual's predicted time is under a quarter of the run's ``seconds``.

    Its cost is ``O(N (4 chi^3 D^2 + 16 chi^2 D^3))`` (environments of shape
    ``(chi, D, D, chi)``), measured at 130 s for N = 70, chi = 32, D = 52 on one core
    (``liouvillian.residual_norm``). A flop count of the run does not do: most of a
    ladder's matvecs are at small chi, and block-sparse rungs cost far less than the
    dense count (at N = 70, chi = 128 the old rule computed a 20-minute residual after a
    5-minute run).
    """
    chi = max(eng.bond_dims or [1])
    D = max(mpo_dims or [1])
    units = n * (4 * chi ** 3 * D ** 2 + 16 * chi ** 2 * D ** 3)
    predicted = units / 1.4e9
    return predicted < 0.25 * seconds
