"""Product initial states shared by every solver's ``evolve``."""

from __future__ import annotations

import numpy as np

from .errors import InvalidSystemError

__all__ = ["product_state", "has_coherences", "check_times"]

_NAMED = {
    "down": np.diag([1.0, 0.0]).astype(complex),
    "ground": np.diag([1.0, 0.0]).astype(complex),
    "up": np.diag([0.0, 1.0]).astype(complex),
    "excited": np.diag([0.0, 1.0]).astype(complex),
    "x": 0.5 * np.ones((2, 2), dtype=complex),
}


def product_state(initial, n: int) -> list:
    """Single-site density matrices (basis 0 = down, 1 = up) of a product state.

    Parameters
    ----------
    initial : str or sequence
        ``"down"`` (ground), ``"up"`` (excited), ``"x"`` (every dipole along +x),
        or a list of N Hermitian, unit-trace, positive 2 x 2 matrices.
    n : int
        Number of dipoles.
    """
    if isinstance(initial, str):
        key = initial.strip().lower()
        if key not in _NAMED:
            raise InvalidSystemError(f"unknown initial state {initial!r}; use 'down', 'up', 'x' "
                                     "or a list of 2x2 density matrices")
        return [_NAMED[key].copy() for _ in range(n)]
    mats = [np.asarray(m, dtype=complex) for m in initial]
    if len(mats) != n:
        raise InvalidSystemError(f"initial state lists {len(mats)} sites, the system has {n}")
    for i, m in enumerate(mats):
        if m.shape != (2, 2):
            raise InvalidSystemError(f"initial state of site {i} must be 2x2, got {m.shape}")
        if not np.allclose(m, m.conj().T, atol=1e-12) or abs(np.trace(m) - 1) > 1e-10:
            raise InvalidSystemError(f"initial state of site {i} must be Hermitian with unit trace")
        if np.linalg.eigvalsh(m).min() < -1e-12:
            raise InvalidSystemError(f"initial state of site {i} is not positive semidefinite")
    return mats


def has_coherences(states) -> bool:
    """True when any site has a coherence between down and up (breaks U(1))."""
    return any(abs(m[0, 1]) > 0 or abs(m[1, 0]) > 0 for m in states)


def check_times(times, name: str = "times", strictly_increasing: bool = False) -> np.ndarray:
    """Output times of ``evolve`` (units of 1/Gamma) as a float array, validated.

    Raises :class:`~mpsync.errors.InvalidSystemError` unless ``times`` is a non-empty 1D
    array of values >= 0 that never decreases (or always increases, if asked).
    """
    t = np.atleast_1d(np.asarray(times, dtype=float))
    steps = np.diff(t)
    bad_order = np.any(steps <= 0) if strictly_increasing else np.any(steps < 0)
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)) or t[0] < 0 or bad_order:
        order = "strictly increasing" if strictly_increasing else "increasing"
        raise InvalidSystemError(f"{name} must be a non-empty {order} 1D array of finite values >= 0")
    return t
