"""One builder of a :class:`~mpsync.model.DipoleSystem` from named parameters.

Used by the ``mpsync`` command (``--model chain --n 6 ...``) and by the sweeps
(``dict(model="chain", n=6, ...)``), so both accept the same names:

- ``model``: ``chain``, ``all_to_all``, ``power_law``, ``from_positions`` or
  ``from_matrices``; the spellings with hyphens (``all-to-all``, ``power-law``)
  are the same models.
- the arguments of the constructor of that name (``n``, ``spacing``, ``theta``,
  ``W``, ``f_eff``, ``g_eff``, ``alpha``, ``f0``, ``shape``, ``delta``, ``gamma``...);
  for ``chain``, ``theta`` defaults to ``"magic"``; for ``power_law``, ``n`` may
  stand for a chain ``shape`` (both given must agree);
- derived parameters, valid for every model: ``W_over_feff`` (W = W_over_feff *
  f_eff), ``W_over_Wopt`` (W = W_over_Wopt * the optimal pump of the all-to-all
  ensemble with the same N and f_eff, :func:`mpsync.solvers.permutational.optimal_pump`:
  a pump grid that follows the finite-N optimum), ``delta_spread`` with ``delta_seed`` (detunings drawn uniformly in
  [-delta_spread/2, delta_spread/2] from ``numpy.random.default_rng(delta_seed)``,
  default seed 0). ``seed`` is accepted as the old name of ``delta_seed`` where
  it cannot mean a solver's seed (the command line's ``--seed``).

Units: rates in units of Gamma, lengths in units of lambda, angles in radians.

Examples
--------
>>> from mpsync.builder import build_system
>>> build_system("all-to-all", n=4, f_eff=2.0, W=1.0).n
4
>>> build_system("power_law", shape=[2, 3], alpha=1.0, W=1.0).lattice_shape
(2, 3)
"""

from __future__ import annotations

import inspect

import numpy as np

from .errors import InvalidSystemError

__all__ = ["MODELS", "DERIVED", "canonical_model", "parameter_names", "build_system", "apply_derived"]

#: constructors of DipoleSystem reachable by name
MODELS = ("chain", "all_to_all", "power_law", "from_positions", "from_matrices")

#: parameters applied after construction, valid for every model
DERIVED = ("W_over_feff", "W_over_Wopt", "delta_spread", "delta_seed")


def canonical_model(model) -> str:
    """``"all-to-all"`` -> ``"all_to_all"``; raises for an unknown model."""
    key = str(model).strip().lower().replace("-", "_")
    if key not in MODELS:
        raise InvalidSystemError(f"unknown model {model!r}; choose one of {', '.join(MODELS)} "
                                 "(hyphens or underscores)")
    return key


def _constructor(model):
    from .model import DipoleSystem

    return getattr(DipoleSystem, canonical_model(model))


def parameter_names(model) -> set:
    """Every parameter name :func:`build_system` accepts for ``model``."""
    names = set(inspect.signature(_constructor(model)).parameters) | set(DERIVED)
    if canonical_model(model) == "power_law":
        names.add("n")
    return names


def build_system(model, **params):
    """The DipoleSystem of ``model`` with ``params`` (see the module docstring).

    Raises
    ------
    InvalidSystemError
        Unknown model or parameter, a missing required one, or a bad value; the
        message names the parameter.
    """
    model = canonical_model(model)
    params = {k: v for k, v in params.items() if v is not None}
    if "seed" in params:                       # the old name of the detuning seed
        seed = params.pop("seed")
        params.setdefault("delta_seed", seed)
    derived = {k: params.pop(k) for k in DERIVED if k in params}
    if model == "power_law" and "n" in params:
        n = params.pop("n")
        shape = params.get("shape")
        if shape is None:
            params["shape"] = n
        elif int(np.prod(np.atleast_1d(shape))) != n:
            raise InvalidSystemError(f"n = {n} does not match shape {shape} "
                                     f"({int(np.prod(np.atleast_1d(shape)))} sites); give one of them")
    if model == "chain":
        params.setdefault("theta", "magic")
    if model == "power_law" and isinstance(params.get("shape"), list):
        params["shape"] = tuple(params["shape"])
    ctor = _constructor(model)
    sig = inspect.signature(ctor)
    unknown = sorted(set(params) - set(sig.parameters))
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], sorted(parameter_names(model)), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InvalidSystemError(f"unknown parameter {unknown[0]!r} for model {model!r}{hint}; it takes "
                                 f"{', '.join(sorted(parameter_names(model)))}")
    missing = [k for k, p in sig.parameters.items() if p.default is p.empty and k not in params]
    if missing:
        raise InvalidSystemError(f"model {model!r} needs {', '.join(missing)}")
    delta = params.get("delta")
    if delta is not None and derived.get("delta_spread") is not None:
        raise InvalidSystemError("give either delta or delta_spread, not both")
    try:
        system = ctor(**params)
    except InvalidSystemError:
        raise
    except (TypeError, ValueError) as exc:
        raise InvalidSystemError(f"bad arguments for model {model!r}: {exc}") from None
    return apply_derived(system, **derived)


def apply_derived(system, W_over_feff=None, W_over_Wopt=None, delta_spread=None, delta_seed=0):
    """``system`` with the derived parameters applied (see the module docstring)."""
    from .model import DipoleSystem

    if not isinstance(system, DipoleSystem):
        raise InvalidSystemError(f"expected a DipoleSystem, got {type(system).__name__}")
    if W_over_feff is not None and W_over_Wopt is not None:
        raise InvalidSystemError("give either W_over_feff or W_over_Wopt, not both")
    if W_over_feff is not None:
        system = system.replace(W=float(W_over_feff) * system.f_eff)
    if W_over_Wopt is not None:
        from .solvers.permutational import optimal_pump

        system = system.replace(W=float(W_over_Wopt) * optimal_pump(system.n, system.f_eff, system.gamma)[0])
    spread = delta_spread
    if spread is not None:
        spread = float(spread)
        if not np.isfinite(spread) or spread < 0:
            raise InvalidSystemError(f"delta_spread must be finite and >= 0, got {spread}")
        seed = 0 if delta_seed is None else delta_seed
        try:
            rng = np.random.default_rng(seed)
        except (TypeError, ValueError):
            raise InvalidSystemError(f"delta_seed must be an integer >= 0, got {seed!r}") from None
        system = system.replace(delta=rng.uniform(-spread / 2, spread / 2, system.n))
    return system
