"""Solvers: one subpackage per method, each exposing the same two entry points.

Every solver package defines::

    steady_state(system, *, <its options>) -> mpsync.result.SteadyState
    evolve(system, times, initial="down", *, <its options>) -> mpsync.result.TimeSeries

and is reached through :func:`mpsync.steady_state` / :func:`mpsync.evolve` with
``method=NAME``. Each method is a subpackage ``mpsync.solvers.<method>`` whose
``__init__`` is that module, with its helpers beside it; equations shared by two
methods have a public module here (:mod:`mpsync.solvers.moment_equations`, mean
field and cumulant), and :mod:`mpsync.solvers.applicability` is the one check of
which methods accept a system. Solvers are imported lazily (a solver's
dependencies load only when it runs) and never import each other for figures:
the paper's studies live in :mod:`mpsync.paper`.

The options contract
--------------------
A method's options are the keyword parameters of its module-level
``steady_state`` and ``evolve`` (:func:`declared_options`); neither takes
``**kwargs``. :func:`steady_state` and :func:`evolve` check the options against
that declaration and their values against the parameters' types before any
work (:func:`check_options`): an unknown option or a bad value raises
:class:`~mpsync.errors.InvalidOptionError` naming the option, the method and
the options it takes. Whether the method accepts the system at all is checked
by :func:`mpsync.solvers.applicability.check`, whose messages name the methods
that would. A result whose ``diagnostics["converged"]`` is False comes with a
:class:`~mpsync.errors.ConvergenceWarning`.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import inspect
import math
import numbers
import warnings

import numpy as np

from ..errors import ConvergenceWarning, InvalidOptionError, MpsyncError

__all__ = ["METHODS", "get_solver", "steady_state", "evolve", "two_time", "declared_options",
           "check_options", "accepts_option", "UnknownMethodError", "ENTRIES", "TWO_TIME_METHODS"]

#: method name -> module implementing it
METHODS = {
    "exact": "mpsync.solvers.exact",
    "permutational": "mpsync.solvers.permutational",
    "mpo": "mpsync.solvers.mpo",
    "meanfield": "mpsync.solvers.meanfield",
    "cumulant": "mpsync.solvers.cumulant",
    "trajectories": "mpsync.solvers.trajectories",
}

#: the entry points of the solvers, and the positional parameters that are not options
#: (every solver has ``steady_state`` and ``evolve``; those of :data:`TWO_TIME_METHODS`
#: also ``two_time``)
ENTRIES = {"steady_state": ("system",), "evolve": ("system", "times", "initial"),
           "two_time": ("system", "taus", "pairs", "steady")}

#: the methods that give steady-state two-time functions (:func:`two_time`)
TWO_TIME_METHODS = ("exact", "permutational", "cumulant", "mpo")

#: numeric options that must be strictly positive (the others must be >= 0)
_STRICTLY_POSITIVE = frozenset({
    "tol", "rtol", "atol", "dt", "dt_max", "dt_growth", "t_max", "t_chunk", "sample_dt", "ntraj",
    "max_bond", "maxiter", "krylov", "krylov_dim", "krylov_tol", "restart", "workers", "zq_tol",
    "ptc_cap", "checkpoint_every", "max_steps", "warm_grow_steps", "time_budget", "rung_tol",
})


class UnknownMethodError(MpsyncError, ValueError):
    """The method name is not one of :data:`METHODS`."""


def _canonical_method(method) -> str:
    key = str(method).lower().replace("-", "").replace("_", "")
    aliases = {"meanfield": "meanfield", "mf": "meanfield", "perm": "permutational",
               "piqs": "permutational", "traj": "trajectories", "mcwf": "trajectories"}
    key = aliases.get(key, key)
    if key not in METHODS:
        raise UnknownMethodError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return key


def get_solver(method: str):
    """The module implementing ``method``."""
    return importlib.import_module(METHODS[_canonical_method(method)])


def _parameters(method, entry):
    if entry not in ENTRIES:
        raise ValueError(f"entry must be one of {', '.join(ENTRIES)}, got {entry!r}")
    fn = getattr(get_solver(method), entry, None)
    if fn is None:
        from ..errors import NotApplicableError

        raise NotApplicableError(f"method='{_canonical_method(method)}' has no {entry}; "
                                 f"use method={' or '.join(repr(m) for m in TWO_TIME_METHODS)}")
    params = inspect.signature(fn).parameters
    # a solver's deprecated call forms are arguments, not options
    skip = ENTRIES[entry] + tuple(getattr(get_solver(method), "LEGACY_ARGUMENTS", {}).get(entry, ()))
    opts = {k: p for k, p in params.items()
            if k not in skip and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    open_ = any(p.kind == p.VAR_KEYWORD for p in params.values())
    return opts, open_


def declared_options(method: str, entry: str = "steady_state") -> dict:
    """The options ``method`` takes in ``entry`` (``"steady_state"`` or ``"evolve"``).

    Returns
    -------
    dict
        option name -> default value (``inspect.Parameter.empty`` when required).

    Examples
    --------
    >>> sorted(declared_options("permutational", "evolve"))
    ['progress']
    """
    opts, _ = _parameters(method, entry)
    return {k: p.default for k, p in opts.items()}


def accepts_option(method: str, name: str, entry: str = "steady_state") -> bool:
    """True when ``name`` is an option of ``method``'s ``entry``."""
    opts, open_ = _parameters(method, entry)
    return name in opts or open_


def _kind(param):
    """('bool' | 'int' | 'float' | 'str' | None, None allowed) from a parameter's annotation/default."""
    ann = param.annotation
    ann = ann if isinstance(ann, str) else getattr(ann, "__name__", "") if ann is not param.empty else ""
    default = param.default
    none_ok = "None" in ann or default is None
    if ann:
        parts = {t.strip() for t in ann.replace("Optional[", "").replace("]", "").split("|")} - {"None"}
        if parts == {"float", "int"}:
            return "float", none_ok
        if len(parts) == 1 and next(iter(parts)) in ("bool", "int", "float", "str"):
            return next(iter(parts)), none_ok
        return None, none_ok
    if isinstance(default, bool):
        return "bool", none_ok
    if isinstance(default, float):
        return "float", none_ok
    if isinstance(default, int):
        return "int", none_ok
    return None, none_ok


def _bad(method, entry, name, value, why):
    return InvalidOptionError(f"option {name}={value!r} of method='{method}' ({entry}) {why}")


def _check_value(method, entry, name, param, value):
    """The value, validated against the parameter's declared type (integral floats become ints)."""
    if name == "seed":
        if value is None:
            return value
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            if not isinstance(value, (np.random.SeedSequence, np.random.Generator)):
                raise _bad(method, entry, name, value, "must be an integer >= 0")
        return value
    kind, none_ok = _kind(param)
    if kind is None or (value is None and none_ok):
        return value
    if value is None:
        raise _bad(method, entry, name, value, f"must be a {kind}")
    if kind == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise _bad(method, entry, name, value, "must be true or false")
        return bool(value)
    if kind == "str":
        if not isinstance(value, str):
            raise _bad(method, entry, name, value, "must be a string")
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise _bad(method, entry, name, value, f"must be {'an integer' if kind == 'int' else 'a number'}")
    if not math.isfinite(float(value)):
        raise _bad(method, entry, name, value, "must be finite")
    if kind == "int":
        if float(value) != int(value):
            raise _bad(method, entry, name, value, "must be an integer")
        value = int(value)
    if value <= 0 and name in _STRICTLY_POSITIVE:
        raise _bad(method, entry, name, value, "must be > 0")
    if value < 0:
        raise _bad(method, entry, name, value, "must be >= 0")
    return value


def check_options(method: str, entry: str, options: dict) -> dict:
    """Validate ``options`` against what ``method`` declares for ``entry``.

    Returns the options, with integral floats given to integer options made ints.

    Raises
    ------
    InvalidOptionError
        An option the method does not take (the message lists those it does, and a
        close name if there is one), or a value of the wrong type or sign.
    """
    method = _canonical_method(method)
    params, open_ = _parameters(method, entry)
    out = {}
    for name, value in options.items():
        if name not in params:
            if open_:
                out[name] = value
                continue
            close = difflib.get_close_matches(name, list(params), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise InvalidOptionError(
                f"unknown option {name!r} for method='{method}' ({entry}); {hint}"
                f"its options are: {', '.join(params) or '(none)'}")
        out[name] = _check_value(method, entry, name, params[name], value)
    return out


@contextlib.contextmanager
def _watching_warnings():
    """Let every warning a solver emits through as it happens, noting whether one was a
    ConvergenceWarning (``seen["convergence"]``).

    Not a recording: a warning said before a long run (the MPO's strong-exchange warning)
    must reach the user before the run, and one said before an exception must not be lost
    with it. Entering ``catch_warnings`` resets the once-per-location registries, so a
    repeated call warns again, as a recording would have.
    """
    seen = {"convergence": False}
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, category, *args, **kwargs):
            seen["convergence"] = seen["convergence"] or issubclass(category, ConvergenceWarning)
            return shown(message, category, *args, **kwargs)

        warnings.showwarning = show
        yield seen


def _after(result, seen, entry_label):
    """Warn (once) when the result did not converge and the solver did not say so itself."""
    diag = getattr(result, "diagnostics", None) or {}
    if diag.get("converged") is False and not seen["convergence"]:
        why = diag.get("stop_reason") or diag.get("warning") or "stopping criterion not reached"
        res = diag.get("residual")
        res = (f", residual {float(res):.3g}" if isinstance(res, (int, float, np.floating))
               and "residual" not in str(why) else "")
        warnings.warn(f"method='{result.method}' {entry_label} did not converge ({why}{res}); "
                      "diagnostics['converged'] is False", ConvergenceWarning, stacklevel=3)
    return result


def steady_state(system, method: str = "exact", **options):
    """Steady state of ``system`` with the chosen method.

    Parameters
    ----------
    system : DipoleSystem
    method : str
        One of ``exact``, ``permutational``, ``mpo``, ``meanfield``, ``cumulant``,
        ``trajectories``.
    **options
        The method's options (:func:`declared_options`); checked before any work.

    Returns
    -------
    SteadyState
        ``diagnostics["converged"]`` False (with a :class:`ConvergenceWarning`) when the
        solver stopped before its criterion.

    Raises
    ------
    InvalidOptionError
        An option the method does not take, or a bad value.
    NotApplicableError, InvalidSystemError, TooLargeError
        The method does not accept this system; the message names those that do.
    """
    from . import applicability

    method = _canonical_method(method)
    options = check_options(method, "steady_state", options)
    applicability.check(method, system, "steady_state", options)
    with _watching_warnings() as seen:
        result = get_solver(method).steady_state(system, **options)
    return _after(result, seen, "steady state")


def evolve(system, times, initial="down", method: str = "exact", **options):
    """Time evolution of ``system`` from a product ``initial`` state.

    Parameters
    ----------
    times : array_like
        Output times (units of 1/Gamma), increasing, starting at or after 0.
    initial : "down", "up", or list of 2 x 2 single-site density matrices
    method : str
        See :func:`steady_state`.
    **options
        The method's options (:func:`declared_options`); checked before any work.

    Returns
    -------
    TimeSeries
    """
    from . import applicability

    method = _canonical_method(method)
    options = check_options(method, "evolve", options)
    applicability.check(method, system, "evolve", {**options, "initial": initial})
    with _watching_warnings() as seen:
        result = get_solver(method).evolve(system, times, initial=initial, **options)
    return _after(result, seen, "evolution")


def two_time(system_or_result, taus, method: str | None = None, pairs=None, **options):
    """Steady-state two-time functions: Z_ab(tau), <J+(tau) J-(0)>, fits and the spectrum.

    By the quantum regression theorem (docs/physics.md#two-time)::

        G_ab(tau) = <s+_a(tau) s-_b(0)> = Tr[s+_a exp(L tau)(s-_b rho_ss)]
        Z_ab(tau) = G_aa + G_ab + G_ba + G_bb

    Parameters
    ----------
    system_or_result : DipoleSystem or SteadyState
        A steady state is reused (its method is the default ``method``).
    taus : array_like
        Strictly increasing delays >= 0 (units of 1/Gamma); start at 0 for the spectrum.
    method : str, optional
        One of :data:`TWO_TIME_METHODS`: ``exact`` (small N), ``permutational``
        (identical all-to-all dipoles), ``cumulant`` (large N, second-order closure),
        ``mpo`` (chains). Default: the steady state's method, else ``exact``.
    pairs : None, int or list of (a, b)
        ``None``: the central dipole N // 2 against every other; an int b: every (a, b);
        or the listed pairs.
    **options
        The method's options (:func:`declared_options` with ``entry="two_time"``),
        checked before any work.

    Returns
    -------
    TwoTimeResult
        ``Z``, ``G``, ``J``, ``fits`` (nu, gamma per pair with standard errors),
        ``spectrum()``, ``errors`` (approximate methods), ``diagnostics``; ``save``/``load``.

    Raises
    ------
    NotApplicableError
        The method gives no two-time functions, or does not accept the system; the
        message names those that would.
    InvalidOptionError, InvalidSiteError, InvalidSystemError
        An unknown option, a bad pair or bad delays.

    Examples
    --------
    >>> import numpy as np, mpsync
    >>> s = mpsync.DipoleSystem.chain(4, spacing=0.1, theta="magic", W=2.0)
    >>> r = mpsync.two_time(s, np.linspace(0, 5, 51), method="exact", pairs=[(0, 1)])
    >>> r.Z.shape, r.J.shape
    ((1, 51), (51,))
    """
    from ..errors import NotApplicableError
    from ..result import SteadyState
    from . import applicability
    from .correlations import check_taus, resolve_pairs

    steady = None
    if isinstance(system_or_result, SteadyState):
        steady = system_or_result
        system = steady.system
        if system is None:
            raise NotApplicableError("this steady state carries no system; pass the DipoleSystem")
        method = steady.method if method is None else method
    else:
        system = system_or_result
        method = "exact" if method is None else method
    method = _canonical_method(method)
    if method not in TWO_TIME_METHODS:
        raise NotApplicableError(f"method='{method}' gives no two-time functions; use method="
                                 f"{', '.join(repr(m) for m in TWO_TIME_METHODS)}")
    if steady is not None and steady.method != method:
        raise NotApplicableError(f"the steady state given was computed with method='{steady.method}', "
                                 f"not '{method}'; pass the system, or a steady state of method='{method}'")
    taus = check_taus(taus)
    pairs = resolve_pairs(pairs, system.n)
    options = check_options(method, "two_time", options)
    applicability.check(method, system, "two_time", options)
    with _watching_warnings() as seen:
        result = get_solver(method).two_time(system, taus, pairs, steady, **options)
    return _after(result, seen, "two-time functions")
