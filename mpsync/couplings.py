"""Coupling matrices f (collective decay) and g (coherent exchange).

Units: the single-atom decay rate Gamma = 1 unless ``gamma`` is given; lengths
in units of the transition wavelength lambda.

The dipolar couplings are (seed paper; docs/physics.md#couplings), with
``zeta = 2 pi |r_ab| / lambda`` and ``theta`` the angle between the dipole
moment and ``r_ab``::

    g = -3G/2 { sin^2 th cos z / z + (3 cos^2 th - 1) [cos z / z^3 + sin z / z^2] }
    f =  3G/2 { sin^2 th sin z / z + (3 cos^2 th - 1) [sin z / z^3 - cos z / z^2] }

with ``f_aa = Gamma`` and ``g_aa = 0``.
"""

from __future__ import annotations

import numpy as np

MAGIC_ANGLE = float(np.arccos(1.0 / np.sqrt(3.0)))

__all__ = [
    "MAGIC_ANGLE",
    "dipolar_pair",
    "dipolar_matrices",
    "power_law_matrix",
    "all_to_all_matrices",
    "chain_positions",
    "lattice_positions",
    "parse_theta",
]


def parse_theta(theta) -> float:
    """Angle in radians, in [-pi, pi]; the string ``"magic"`` means arccos(1/sqrt 3).

    Raises :class:`~mpsync.errors.InvalidSystemError` (a ``ValueError``) for anything
    else, e.g. an angle in degrees.
    """
    from .errors import InvalidSystemError

    if isinstance(theta, str):
        if theta.strip().lower() == "magic":
            return MAGIC_ANGLE
        try:
            theta = float(theta)
        except ValueError:
            raise InvalidSystemError(f"theta must be a number in radians or 'magic', got {theta!r}") from None
    try:
        theta = float(theta)
    except (TypeError, ValueError):
        raise InvalidSystemError(f"theta must be a number in radians or 'magic', got {theta!r}") from None
    if not np.isfinite(theta):
        raise InvalidSystemError(f"theta must be finite, got {theta}")
    if abs(theta) > np.pi + 1e-12:
        raise InvalidSystemError(f"theta = {theta:g} is outside [-pi, pi]: it is in radians "
                                 f"({theta:g} degrees would be {np.radians(theta):.6g}), or 'magic'")
    return theta


def dipolar_pair(distance, cos_theta, gamma=1.0):
    """Dipolar f and g for pairs at ``distance`` (units of lambda).

    Parameters
    ----------
    distance : array_like
        Pair distances |r_ab| / lambda, strictly positive.
    cos_theta : array_like
        Cosine of the angle between the dipole moment and r_ab.
    gamma : float
        Single-atom decay rate Gamma.

    Returns
    -------
    f, g : ndarray
        Collective decay and exchange couplings, same shape as ``distance``.
    """
    r = np.asarray(distance, dtype=float)
    c2 = np.asarray(cos_theta, dtype=float) ** 2
    z = 2 * np.pi * r
    s2 = 1.0 - c2
    b = 3.0 * c2 - 1.0
    sz, cz = np.sin(z), np.cos(z)
    f = 1.5 * gamma * (s2 * sz / z + b * (sz / z**3 - cz / z**2))
    g = -1.5 * gamma * (s2 * cz / z + b * (cz / z**3 + sz / z**2))
    return f, g


def dipolar_matrices(positions, dipole, gamma=1.0):
    """N x N dipolar f and g for arbitrary positions and a common dipole moment.

    Parameters
    ----------
    positions : (N, 3) array_like
        Positions in units of lambda (1D or 2D arrays are padded with zeros).
    dipole : (3,) array_like
        Dipole orientation; normalised here.
    gamma : float
        Single-atom decay rate, placed on the diagonal of f.

    Returns
    -------
    f, g : (N, N) ndarray
    """
    pos = np.asarray(positions, dtype=float)
    if pos.ndim == 1:
        pos = pos[:, None]
    if pos.ndim != 2 or pos.shape[1] > 3:
        raise ValueError(f"positions must have shape (N, 3), got {pos.shape}")
    pos = np.pad(pos, ((0, 0), (0, 3 - pos.shape[1])))
    d = np.asarray(dipole, dtype=float).reshape(-1)
    if d.shape != (3,) or not np.all(np.isfinite(d)) or np.linalg.norm(d) == 0:
        raise ValueError(f"dipole must be a non-zero finite 3-vector, got {dipole!r}")
    d = d / np.linalg.norm(d)
    n = len(pos)
    rvec = pos[:, None, :] - pos[None, :, :]
    dist = np.linalg.norm(rvec, axis=-1)
    off = ~np.eye(n, dtype=bool)
    if np.any(dist[off] <= 0):
        raise ValueError("two dipoles share a position: pair distances must be > 0")
    f = np.full((n, n), float(gamma))
    g = np.zeros((n, n))
    cos = (rvec[off] @ d) / dist[off]
    f[off], g[off] = dipolar_pair(dist[off], cos, gamma)
    return f, g


def chain_positions(n, spacing):
    """Positions of an equally spaced chain along x, units of lambda."""
    pos = np.zeros((n, 3))
    pos[:, 0] = spacing * np.arange(n)
    return pos


def lattice_positions(rows, cols, spacing=1.0):
    """Row-major square-lattice positions in the x-y plane (site index = row * cols + col)."""
    y, x = np.divmod(np.arange(rows * cols), cols)
    pos = np.zeros((rows * cols, 3))
    pos[:, 0] = spacing * x
    pos[:, 1] = spacing * y
    return pos


def power_law_matrix(positions, alpha, f0=0.25, gamma=1.0):
    """f_ab = f0 * gamma * |r_ab|^-alpha (a != b), f_aa = gamma."""
    pos = np.asarray(positions, dtype=float)
    dist = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    n = len(pos)
    off = ~np.eye(n, dtype=bool)
    f = np.full((n, n), float(gamma))
    f[off] = f0 * gamma * dist[off] ** (-float(alpha))
    return f


def all_to_all_matrices(n, f_eff, g_eff=0.0, gamma=1.0):
    """f_ab = f_eff / N and g_ab = g_eff / N for a != b; f_aa = gamma."""
    f = np.full((n, n), f_eff / n)
    np.fill_diagonal(f, gamma)
    g = np.full((n, n), g_eff / n)
    np.fill_diagonal(g, 0.0)
    return f, g
