"""Single-site operators and the canonical decomposition of the Liouvillian.

Conventions (docs/physics.md#conventions and #channels), shared by the exact and MPO solvers
(the trajectory solver's H_eff and jump operators hold the same terms):

- basis per site: 0 = down (ground), 1 = up (excited); ``s+ = |1><0|``;
- row-major vectorisation, ``|rho>> = sum rho_ij |i>|j>``, so ``A rho B -> A (x) B^T``;
  per site the local index is ``s = 2 i + j`` (ket i, bra j), local dimension 4;
- per site, the local Liouvillian of delta_a, Gamma (= f_aa) and W;
- per ordered pair (a, b), a != b, three channels::

      ket side:  (-i g_ab / 2 - f_ab / 2)  s+_a s-_b rho
      bra side:  (+i g_ab / 2 - f_ab / 2)  rho s+_a s-_b
      cross:      f_ab                     s-_b rho s+_a
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SP", "SM", "SZ", "ID2", "P_UP", "P_DOWN",
    "local_generator", "pair_channel_coefficients",
    "ket_superop", "bra_superop", "superop", "VEC_IDENTITY",
]

SP = np.array([[0.0, 0.0], [1.0, 0.0]])  # |1><0|
SM = SP.T.copy()
SZ = np.diag([-1.0, 1.0])
ID2 = np.eye(2)
P_UP = np.diag([0.0, 1.0])
P_DOWN = np.diag([1.0, 0.0])
#: <<1| per site: the vectorised identity, used for traces.
VEC_IDENTITY = np.eye(2).reshape(4)


def ket_superop(a):
    """Superoperator of rho -> a rho (row-major vec)."""
    return np.kron(a, ID2)


def bra_superop(b):
    """Superoperator of rho -> rho b (row-major vec)."""
    return np.kron(ID2, np.asarray(b).T)


def superop(a, b):
    """Superoperator of rho -> a rho b (row-major vec)."""
    return np.kron(a, np.asarray(b).T)


def local_generator(delta: float, gamma: float, W: float) -> np.ndarray:
    """4 x 4 local Liouvillian of one site: detuning, spontaneous decay and pump.

    L rho = -i [delta/2 sz, rho] + gamma D[s-] rho + W D[s+] rho,
    with D[c] rho = c rho c^+ - 1/2 {c^+ c, rho}.
    """
    h = 0.5 * delta * SZ
    out = -1j * (ket_superop(h) - bra_superop(h))
    for rate, c in ((gamma, SM), (W, SP)):
        cdc = c.T @ c
        out = out + rate * (superop(c, c.T) - 0.5 * ket_superop(cdc) - 0.5 * bra_superop(cdc))
    return out


def pair_channel_coefficients(f, g):
    """Coefficient matrices of the three pair channels over ordered pairs (a, b).

    Returns
    -------
    ket, bra, cross : (N, N) complex ndarray
        ``ket[a, b]`` multiplies ``s+_a s-_b rho``, ``bra[a, b]`` multiplies
        ``rho s+_a s-_b`` and ``cross[a, b]`` multiplies ``s-_b rho s+_a``.
        Diagonals are zero (the a = b terms are in :func:`local_generator`).
    """
    f = np.asarray(f, dtype=float)
    g = np.asarray(g, dtype=float)
    off = 1.0 - np.eye(f.shape[0])
    ket = (-0.5j * g - 0.5 * f) * off
    bra = (0.5j * g - 0.5 * f) * off
    cross = f * off + 0j
    return ket, bra, cross
