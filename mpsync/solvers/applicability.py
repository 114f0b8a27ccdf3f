"""Which method accepts which system: the one place that knows.

Each method has requirements on the system it is given:

============== ======================== ============ ============ ===================
method         geometry                 permutation  Lindblad     size (memory)
                                        symmetry     form (f PSD)
============== ======================== ============ ============ ===================
exact          any                      no           yes          4^N-ish sector
permutational  any                      required     yes          (N/2+1)^2 unknowns
mpo            1D chain (or no          no           yes          N chi^2 D
               positions: index order)
meanfield      any                      no           no           3N
cumulant       any, N >= 2              no           no           N^2
trajectories   any                      no           yes          2^N per worker
============== ======================== ============ ============ ===================

:func:`why_not` says why a method refuses a system (``None`` when it accepts),
:func:`suggest` lists the methods that accept it, in order of preference, and
:func:`check` raises the right :class:`~mpsync.errors.MpsyncError` subclass
naming them. :func:`mpsync.steady_state` and :func:`mpsync.evolve` call
:func:`check` before any solver runs, so every "use method=..." hint comes
from here. The solvers keep their own checks as a second line of defence.

Memory limits follow :func:`mpsync.errors.available_memory_bytes` (the
``MPSYNC_MAX_MEMORY`` environment variable, else the machine's free memory).
"""

from __future__ import annotations

import numpy as np

from ..errors import (InvalidSystemError, MpsyncError, NotApplicableError, TooLargeError,
                      available_memory_bytes, format_bytes)

__all__ = ["ORDER", "why_not", "suggest", "alternatives", "suggestion_text", "check"]

#: preference order of suggestions (the exact methods first, then the approximations)
ORDER = ("exact", "permutational", "mpo", "cumulant", "meanfield", "trajectories")

#: fraction of the available memory a method may plan to use (as in ``check_memory``)
_FRACTION = 0.8
#: MPO bond dimension assumed for a suggestion (the solver's default ``max_bond``)
_MPO_DEFAULT_BOND = 64
#: bond dimension of the Liouvillian MPO assumed for a suggestion (dipolar chains: 20-40)
_MPO_OPERATOR_BOND = 40

# (kind of refusal, reason); kinds map to error classes in ``check``
_GEOMETRY, _SYMMETRY, _LINDBLAD, _SIZE = "geometry", "symmetry", "lindblad", "size"


def _is_psd(system) -> bool:
    try:
        system.lindblad_decomposition()
    except InvalidSystemError:
        return False
    return True


def _chain_reason(system):
    """Why ``system`` is not a 1D chain (None when it is, or has no geometry)."""
    shape = system.lattice_shape
    if shape is not None and sum(int(s) > 1 for s in shape) > 1:
        return f"is for 1D chains and this system is a {'x'.join(map(str, shape))} lattice"
    pos = system.positions
    if pos is not None and len(pos) > 2:
        x = np.asarray(pos, float) - np.mean(pos, axis=0)
        s = np.linalg.svd(x, compute_uv=False)
        if s[0] > 0 and s[1] > 1e-9 * s[0]:
            return "is for 1D chains and the positions of this system are not collinear"
    return None


def _is_chain(system) -> bool:
    """A chain in space (suggestions name mpo only for these)."""
    return _chain_reason(system) is None and (
        system.positions is not None or (system.lattice_shape or (0, 0))[0] == system.n)


def _mpo_first_bond(entry, options) -> int:
    """The bond dimension of the MPO solver's first (smallest) run: ``max_bond`` if given;
    for a steady state otherwise the first rung of the ladder; for evolve its default."""
    chi = options.get("max_bond")
    if chi is not None:
        return int(chi)
    if entry == "steady_state":
        from .mpo import DEFAULT_LADDER

        ladder = options.get("ladder") or DEFAULT_LADDER
        try:
            return int(min(ladder))
        except (TypeError, ValueError):
            return int(DEFAULT_LADDER[0])
    return _MPO_DEFAULT_BOND


def _memory(method, system, entry="steady_state", options=None):
    """Estimated peak bytes of ``method`` on ``system`` (0 when negligible)."""
    options = options or {}
    n = system.n
    if method == "exact":
        if n > 20:
            return float("inf")
        if entry == "evolve":
            from .exact import evolve_memory

            plan = {k: options[k] for k in ("initial", "space", "operator", "krylov_dim") if k in options}
            try:
                return evolve_memory(system, **plan)
            except MpsyncError:  # a bad option or initial state: the solver itself names it
                return evolve_memory(system)
        from .exact import steady_state_memory

        solver = options.get("solver", "auto")
        symmetry = options.get("symmetry", "auto")
        krylov = options.get("krylov", "auto")
        try:
            return steady_state_memory(system, solver, options.get("restart"), symmetry, krylov)
        except MpsyncError:  # a bad option: the solver itself names it
            return steady_state_memory(system)
    if method == "permutational":
        from .permutational import _LU_BYTES_PER_UNKNOWN

        m = n // 2 + 1
        return float(m * (n - n // 2 + 1)) * _LU_BYTES_PER_UNKNOWN  # ~ the balanced sector size
    if method == "mpo":
        from math import log

        chi = _mpo_first_bond(entry, options)
        if n // 2 * log(4) < log(max(chi, 1)):
            chi = 4 ** (n // 2)
        d, k = _MPO_OPERATOR_BOND, int(options.get("krylov_dim", 30) or 30)
        return 16.0 * (2 * n * chi * chi * d + (k + 4) * 16 * chi * chi + 2 * 16 * chi * chi * d)
    if method == "cumulant":
        return float(n) ** 2 * 16 * (24 + 15)
    if method == "meanfield":
        return float(n) ** 2 * 8 * 4
    if method == "trajectories":
        if n > 40:
            return float("inf")
        from .trajectories.statevector import estimate_memory

        workers = options.get("workers") or 1
        if options.get("executor") not in (None, "local") or options.get("ntraj") == 1:
            workers = 1
        return estimate_memory(n, int(workers))
    return 0.0


def _refusal(method, system, entry="steady_state", options=None):
    """(kind, reason) why ``method`` refuses ``system``, or None."""
    n = system.n
    if method == "permutational" and not system.is_permutation_symmetric:
        return _SYMMETRY, ("needs a permutation-symmetric system (equal off-diagonal f, equal "
                           "off-diagonal g, uniform delta)")
    if method == "mpo":
        reason = _chain_reason(system)
        if reason:
            return _GEOMETRY, reason
    if method == "cumulant" and n < 2:
        return _GEOMETRY, "needs N >= 2 dipoles"
    if method in ("exact", "permutational", "mpo", "trajectories") and not _is_psd(system):
        lmin = float(np.linalg.eigvalsh(system.f)[0])
        return _LINDBLAD, (f"needs Lindblad form and f is not positive semidefinite (smallest "
                           f"eigenvalue {lmin:.6g})")
    need = _memory(method, system, entry, options)
    avail = available_memory_bytes()
    if need > _FRACTION * avail:
        where = f"at N={n}"
        hint = ""
        if method == "mpo":
            chi = _mpo_first_bond(entry, options or {})
            where += f" with max_bond={chi}"
            hint = " (a smaller max_bond needs less)"
        elif method == "trajectories" and ((options or {}).get("workers") or 1) > 1:
            hint = " (fewer workers need less)"
        if not np.isfinite(need):
            return _SIZE, f"{where} needs far more memory than the {format_bytes(avail)} available{hint}"
        return _SIZE, f"{where} needs ~{format_bytes(need)} but only {format_bytes(avail)} is available{hint}"
    return None


def why_not(method: str, system, entry: str = "steady_state", options: dict | None = None):
    """Why ``method`` refuses ``system`` (a phrase), or ``None`` when it accepts it.

    Parameters
    ----------
    method : str
        A name in :data:`mpsync.METHODS`.
    system : DipoleSystem
    entry : {"steady_state", "evolve"}
    options : dict, optional
        Solver options that change the size (``max_bond``, ``workers``, ``solver``, ...).
    """
    r = _refusal(method, system, entry, options)
    return None if r is None else r[1]


def suggest(system, exclude=(), entry: str = "steady_state") -> list:
    """Methods that accept ``system``, in order of preference, without those in ``exclude``
    (for ``entry="two_time"`` only those that give two-time functions).

    ``mpo`` is named only for systems laid out as a chain in space (it also accepts
    systems without positions, in index order, but its cost then follows the rank of f).
    """
    from . import TWO_TIME_METHODS

    out = []
    for m in ORDER:
        if m in exclude or (entry == "two_time" and m not in TWO_TIME_METHODS):
            continue
        if m == "mpo" and not _is_chain(system):
            continue
        if _refusal(m, system, entry) is None:
            out.append(m)
    return out


def alternatives(system, exclude=(), entry: str = "steady_state") -> str:
    """``"method='a', 'b' or 'c'"`` for the methods that accept ``system`` ("" when none)."""
    names = [f"'{m}'" for m in suggest(system, exclude, entry)]
    if not names:
        return ""
    return "method=" + (names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}")


def suggestion_text(system, exclude=(), entry: str = "steady_state") -> str:
    """``"use method='a', 'b' or 'c'"`` for the methods that accept ``system`` (or a fallback)."""
    alt = alternatives(system, exclude, entry)
    if not alt:
        return "no method accepts this system as it is; reduce N or make f positive semidefinite"
    return f"use {alt}"


def check(method: str, system, entry: str = "steady_state", options: dict | None = None) -> None:
    """Raise before any work if ``method`` refuses ``system``; the message names what works.

    Raises
    ------
    NotApplicableError
        Wrong geometry or symmetry for the method.
    InvalidSystemError
        The method needs Lindblad form and f is not positive semidefinite.
    TooLargeError
        The method's memory estimate exceeds what is available.
    """
    r = _refusal(method, system, entry, options)
    if r is None:
        return
    kind, reason = r
    msg = f"method='{method}' {reason}; {suggestion_text(system, exclude=(method,), entry=entry)}"
    if kind == _LINDBLAD:
        raise InvalidSystemError(msg)
    if kind == _SIZE:
        raise TooLargeError(msg)
    raise NotApplicableError(msg)
