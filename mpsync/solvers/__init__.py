"""Solvers: one module per method, each exposing the same two entry points.

Every solver module defines::

    steady_state(system, **options) -> mpsync.result.SteadyState
    evolve(system, times, initial="down", **options) -> mpsync.result.TimeSeries

and is reached through :func:`mpsync.steady_state` / :func:`mpsync.evolve` with
``method=NAME``. Modules are imported lazily so that a missing optional
dependency of one solver never breaks the others.
"""

from __future__ import annotations

import importlib

from ..errors import MpsyncError

__all__ = ["METHODS", "get_solver", "steady_state", "evolve"]

#: method name -> module implementing it
METHODS = {
    "exact": "mpsync.solvers.exact",
    "permutational": "mpsync.solvers.permutational",
    "mpo": "mpsync.solvers.mpo",
    "meanfield": "mpsync.solvers.meanfield",
    "cumulant": "mpsync.solvers.cumulant",
    "trajectories": "mpsync.solvers.trajectories",
}


class UnknownMethodError(MpsyncError, ValueError):
    """The method name is not one of :data:`METHODS`."""


def get_solver(method: str):
    """The module implementing ``method``."""
    key = str(method).lower().replace("-", "").replace("_", "")
    aliases = {"meanfield": "meanfield", "mf": "meanfield", "perm": "permutational",
               "piqs": "permutational", "traj": "trajectories", "mcwf": "trajectories"}
    key = aliases.get(key, key)
    if key not in METHODS:
        raise UnknownMethodError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    try:
        return importlib.import_module(METHODS[key])
    except ModuleNotFoundError as exc:
        if exc.name == METHODS[key]:
            raise UnknownMethodError(f"method {key!r} is not available in this version of mpsync") from None
        raise


def steady_state(system, method: str = "exact", **options):
    """Steady state of ``system`` with the chosen method.

    Parameters
    ----------
    system : DipoleSystem
    method : str
        One of ``exact``, ``permutational``, ``mpo``, ``meanfield``, ``cumulant``,
        ``trajectories``.
    **options
        Passed to the solver's ``steady_state``.

    Returns
    -------
    SteadyState
    """
    return get_solver(method).steady_state(system, **options)


def evolve(system, times, initial="down", method: str = "exact", **options):
    """Time evolution of ``system`` from a product ``initial`` state.

    Parameters
    ----------
    times : array_like
        Output times (units of 1/Gamma), increasing, starting at or after 0.
    initial : "down", "up", or list of 2 x 2 single-site density matrices

    Returns
    -------
    TimeSeries
    """
    return get_solver(method).evolve(system, times, initial=initial, **options)
