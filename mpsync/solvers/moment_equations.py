r"""Right-hand sides of the mean-field and second-order cumulant equations.

Derived from the master equation of docs/physics.md#master-equation in the Heisenberg picture,

.. math::

    \frac{d\langle O\rangle}{dt} = \langle \mathcal{L}_{loc}^\dagger O\rangle
      + \sum_{a\ne b}\big\langle \kappa^*_{ab}\, s^+_a [O, s^-_b]
      + \kappa_{ab}\,[s^+_a, O]\, s^-_b \big\rangle,
    \qquad \kappa_{ab} = \tfrac12 (f_{ab} + i g_{ab}),

with the local part (detuning, Gamma = f_aa, pump W) giving
d<s-> = -(i delta + Q/2) <s->, d<sz> = -Q <sz> + D (Q = Gamma + W, D = W - Gamma).
Three-site moments are closed with supplement Eq. 7,
<A_a B_b C_c> = <A_a B_b><C_c> + <A_a><B_b C_c> + <A_a C_c><B_b> - 2 <A_a><B_b><C_c>.

Variables (a != b; every matrix below has a zero or fixed diagonal):

* ``sz[a] = <sz_a>``, ``C[a, b] = <s+_a s-_b>`` (diagonal (1 + sz_a)/2),
  ``zz[a, b] = <sz_a sz_b>`` -- the U(1)-symmetric set;
* ``m[a] = <s-_a>``, ``Y[a, b] = <sz_a s-_b>``, ``P[a, b] = <s-_a s-_b>`` -- the
  U(1)-breaking set, needed only when the state carries coherences.

Every equation is an N x N matrix expression; the only O(N^3) work is a handful
of matrix products with K = (f + i g)/2 (zero diagonal). Memory is O(N^2).

This module is private: :mod:`mpsync.solvers.cumulant` and
:mod:`mpsync.solvers.meanfield` are the public solvers.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Couplings", "rhs_u1", "rhs_full", "rhs_meanfield"]


class Couplings:
    """Coupling data shared by the right-hand sides.

    Attributes
    ----------
    K : (N, N) array
        (f + i g)/2 with zero diagonal (real when g = 0).
    f : (N, N) float
        f with zero diagonal.
    delta : (N,) float
    Q, D : float
        Gamma + W and W - Gamma.
    real : bool
        True when the U(1) equations stay real (g = 0 and uniform delta).
    """

    def __init__(self, system):
        n = system.n
        f = np.array(system.f, dtype=float)
        np.fill_diagonal(f, 0.0)
        g = np.array(system.g, dtype=float)
        np.fill_diagonal(g, 0.0)
        self.n = n
        self.f = f
        self.has_g = bool(np.any(g != 0))
        self.K = 0.5 * (f + 1j * g) if self.has_g else 0.5 * f
        self.Kc = np.conj(self.K) if self.has_g else self.K
        self.delta = np.array(system.delta, dtype=float)
        self.uniform_delta = bool(np.ptp(self.delta) == 0) if n > 0 else True
        self.gamma = float(system.gamma)
        self.W = float(system.W)
        self.Q = self.gamma + self.W
        self.D = self.W - self.gamma
        self.real = (not self.has_g) and self.uniform_delta
        self._Kc32 = None

    def single_precision_Kc(self):
        """K^* in single precision (cached), for loose inner solves."""
        if self._Kc32 is None:
            self._Kc32 = self.Kc.astype(np.complex64 if np.iscomplexobj(self.Kc) else np.float32)
        return self._Kc32


def rhs_u1(cp: Couplings, sz, C, zz):
    """U(1)-symmetric cumulant equations: d sz, d C, d zz.

    ``C`` must carry its diagonal (1 + sz)/2; ``zz`` its diagonal is ignored.
    Returns (dsz, dC, dzz) with dC's diagonal d sz / 2 and dzz's diagonal 0.

    Equations (c != d)::

        d sz_c  = -Q sz_c + D - 4 Re v_c,                 v_c = sum_a K_ca C_ca
        d C_cd  = (i(delta_c - delta_d) - Q) C_cd + f_cd (zz_cd - sz_c sz_d)/2
                  + sz_c (K^* C)_cd + sz_d (C K)_cd
        d zz_cd = -2Q zz_cd + D (sz_c + sz_d) + 4 f_cd Re C_cd
                  - 4 sz_d Re(v_c - K_cd C_cd) - 4 sz_c Re(v_d - K_dc C_dc)
    """
    Q, D, K, f = cp.Q, cp.D, cp.K, cp.f
    KC = K * C
    v = KC.sum(axis=1)
    vr = np.real(v)
    dsz = -Q * sz + D - 4.0 * vr
    KhC = cp.Kc @ C
    if np.iscomplexobj(KhC):
        CK = KhC.conj().T  # C Hermitian, K symmetric: C K = (K^* C)^H
    else:
        CK = KhC.T
    dC = -Q * C + 0.5 * f * (zz - np.outer(sz, sz)) + sz[:, None] * KhC + CK * sz[None, :]
    if not cp.uniform_delta:
        dC = dC + 1j * (cp.delta[:, None] - cp.delta[None, :]) * C
    KCr = np.real(KC)
    w = vr[:, None] - KCr  # Re(v_c - K_cd C_cd)
    dzz = (-2.0 * Q * zz + D * (sz[:, None] + sz[None, :]) + 4.0 * f * np.real(C)
           - 4.0 * sz[None, :] * w - 4.0 * sz[:, None] * w.T)
    idx = np.diag_indices(cp.n)
    dC[idx] = 0.5 * dsz
    dzz[idx] = 0.0
    return dsz, dC, dzz


def rhs_full(cp: Couplings, sz, m, C, zz, Y, P):
    """Cumulant equations with the U(1)-breaking variables.

    Arguments as in the module docstring (``C`` with diagonal (1 + sz)/2, ``Y``
    and ``P`` with zero diagonals). Returns (dsz, dm, dC, dzz, dY, dP).
    """
    Q, D, K, Kc, f = cp.Q, cp.D, cp.K, cp.Kc, cp.f
    dl = cp.delta
    sz = np.asarray(sz, float)
    mc = np.conj(m)
    h = K @ m                      # h_c = sum_a K_ca m_a
    v = (K * C).sum(axis=1)        # v_c = sum_a K_ca C_ca
    r = (K * Y).sum(axis=1)        # r_c = sum_a K_ca Y_ca
    KhC = Kc @ C
    CK = C @ K
    KP = K @ P
    YK = Y @ K
    KYt = K @ Y.T
    # h_c - K_cd m_d and its transpose partner h_d - K_dc m_c
    hx = h[:, None] - K * m[None, :]
    hxT = hx.T
    KY = K * Y
    KC = K * C

    dm = -(1j * dl + 0.5 * Q) * m + r
    dsz = -Q * sz + D - 4.0 * np.real(v)

    first = (m[None, :] * np.conj(r[:, None] - KY) + Y * np.conj(hx)
             - 2.0 * sz[:, None] * m[None, :] * np.conj(hx))
    second = (np.conj(Y.T) * hxT + mc[:, None] * (r[None, :] - KY.T)
              - 2.0 * mc[:, None] * sz[None, :] * hxT)
    dC = ((1j * (dl[:, None] - dl[None, :]) - Q) * C + 0.5 * f * (zz - np.outer(sz, sz))
          + sz[:, None] * KhC + sz[None, :] * CK + first + second)

    G = (np.conj(Y.T) * hx + sz[None, :] * (v[:, None] - KC) + mc[:, None] * KYt
         - 2.0 * sz[None, :] * mc[:, None] * hx)
    Gr = np.real(G)
    dzz = (-2.0 * Q * zz + D * (sz[:, None] + sz[None, :]) + 4.0 * f * np.real(C)
           - 4.0 * Gr - 4.0 * Gr.T)

    Cd = np.diag(C)
    TA = (P * np.conj(hx) + m[None, :] * np.conj(v[:, None] - KC)
          + m[:, None] * (KhC - np.conj(K) * Cd[None, :])
          - 2.0 * m[:, None] * m[None, :] * np.conj(hx))
    TB = (mc[:, None] * KP + C * hx + m[None, :] * (v[:, None] - KC)
          - 2.0 * mc[:, None] * m[None, :] * hx)
    TC = ((zz - 2.0 * np.outer(sz, sz)) * hxT + sz[:, None] * (r[None, :] - KY.T)
          + sz[None, :] * YK)
    dY = (-(1.5 * Q + 1j * dl[None, :]) * Y + D * m[None, :] - np.conj(K) * m[:, None]
          - f * Y.T - 2.0 * TA - 2.0 * TB + TC)

    F = (Y * hx + sz[:, None] * KP + m[None, :] * (r[:, None] - KY)
         - 2.0 * sz[:, None] * m[None, :] * hx)
    dP = -(1j * (dl[:, None] + dl[None, :]) + Q) * P + F + F.T

    idx = np.diag_indices(cp.n)
    dC[idx] = 0.5 * dsz
    dzz[idx] = 0.0
    dY[idx] = 0.0
    dP[idx] = 0.0
    return dsz, dm, dC, dzz, dY, dP


def rhs_meanfield(cp: Couplings, sz, m):
    """Mean-field (product-state) equations, supplement Eqs. 1-2 in complex form::

        d m_c  = -(i delta_c + Q/2) m_c + sz_c sum_b K_cb m_b
        d sz_c = -Q sz_c + D - 4 Re(conj(m_c) sum_b K_cb m_b)

    with m_c = <s-_c> = S_perp e^{i phi}; no phase singularity at S_perp = 0.
    """
    h = cp.K @ m
    dm = -(1j * cp.delta + 0.5 * cp.Q) * m + sz * h
    dsz = -cp.Q * sz + cp.D - 4.0 * np.real(np.conj(m) * h)
    return dsz, dm
