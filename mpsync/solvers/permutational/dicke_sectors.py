r"""Permutation-symmetric Liouville space in the Dicke basis (helper of ``permutational``).

A permutation-symmetric operator of N two-level dipoles is, by Schur-Weyl duality,

.. math:: \rho = \bigoplus_j \rho_j \otimes \mathbb{1}_{d_j},
          \qquad d_j = \frac{(2j+1)\, N!}{(N/2+j+1)!\,(N/2-j)!},

with one (2j+1) x (2j+1) block rho_j per total spin j (elements rho_j(m, m')).
The space has sum_j (2j+1)^2 = C(N+3, 3) elements: the SU(4) space of Xu, Tieri
and Holland (PRA 87 062101) in another basis. Every term of the all-to-all model
keeps m - m' fixed (U(1)), so the Liouvillian splits into sectors
s = m - m' = n_ket - n_bra; the balanced sector s = 0 has (N/2+1)^2 elements for
even N.

Numerical scaling: the degeneracies d_j reach 1e299 at N = 1000, so the unknowns
are the block weights R_j = d_j rho_j (Tr rho = sum_j Tr R_j): R_j(m, m) is the
probability of (j, m), a number in [0, 1] at any N.

The rates of the local emission (rate ``emission``) and pump (``pumping``)
are those of Chase and Geremia (PRA 78 052101) as written in QuTiP-PIQS
(Shammah et al., PRA 98 063815), which act on the block weights R_j directly (the
ratios d_{j'}/d_j are inside their j-dependent factors: the trace sum_j Tr R_j is
conserved, which the tests check); the collective emission D[J-] and the
Hamiltonian act inside a block. All formulas are checked against the full master
equation in ``tests/test_permutational.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.special import gammaln


def j_values(n: int) -> np.ndarray:
    """Total spins N/2, N/2 - 1, ..., down to 0 or 1/2."""
    return n / 2.0 - np.arange(n // 2 + 1)


def log_degeneracy(n: int, j):
    """ln d_j, the multiplicity of total spin j among N spins 1/2."""
    j = np.asarray(j, dtype=float)
    return (np.log(2 * j + 1) + gammaln(n + 1) - gammaln(n / 2 + j + 2) - gammaln(n / 2 - j + 1))


@dataclass
class Sector:
    """Elements (j, m, m') with m - m' = s of the N-spin Dicke Liouville space.

    Attributes
    ----------
    n, s : int
    j, m, m1 : (size,) float arrays
        Total spin, ket and bra magnetic numbers of each element.
    """

    n: int
    s: int
    j: np.ndarray
    m: np.ndarray
    m1: np.ndarray

    @classmethod
    def build(cls, n: int, s: int) -> "Sector":
        js, ms = [], []
        for j in j_values(n):
            lo, hi = max(-j, -j + s), min(j, j + s)
            if hi < lo:
                continue
            m = np.arange(lo, hi + 0.5)
            js.append(np.full(m.size, j))
            ms.append(m)
        j = np.concatenate(js) if js else np.zeros(0)
        m = np.concatenate(ms) if ms else np.zeros(0)
        return cls(n, s, j, m, m - s)

    @property
    def size(self) -> int:
        return self.j.size

    def _lookup(self):
        # dense (j index, m + N/2) -> position table; O(N^2) integers
        if not hasattr(self, "_table"):
            n = self.n
            table = np.full((n // 2 + 1, n + 1), -1, dtype=np.int64)
            table[np.rint(n / 2 - self.j).astype(int), np.rint(self.m + n / 2).astype(int)] = np.arange(self.size)
            self._table = table
        return self._table

    def index(self, j, m):
        """Positions of elements (j, m, m - s); -1 where absent."""
        n = self.n
        table = self._lookup()
        t = np.rint(n / 2 - np.asarray(j)).astype(int)
        u = np.rint(np.asarray(m) + n / 2).astype(int)
        ok = (t >= 0) & (t < table.shape[0]) & (u >= 0) & (u <= n)
        out = np.full(t.shape, -1, dtype=np.int64)
        out[ok] = table[t[ok], u[ok]]
        m1 = np.asarray(m) - self.s
        j = np.asarray(j)
        out[(np.abs(m1) > j + 1e-9) | (np.abs(np.asarray(m)) > j + 1e-9)] = -1
        return out


def _sqrt(x):
    return np.sqrt(np.maximum(x, 0.0))


def local_transitions(n, J, M, M1, emission, pumping, collective_emission=0.0):
    """Per-copy transitions of sum_a(emission D[s-_a] + pumping D[s+_a]) + collective_emission D[J-].

    Parameters
    ----------
    n : int
        Number of spins the blocks belong to.
    J, M, M1 : arrays
        Source elements.

    Returns
    -------
    list of (dJ, dM, coefficient array)
        The source (J, M, M1) feeds (J + dJ, M + dM, M1 + dM) with this per-copy rate;
        dJ = dM = 0 is the diagonal (loss) term.
    """
    J = np.asarray(J, float)
    M = np.asarray(M, float)
    M1 = np.asarray(M1, float)
    h = n / 2.0
    Jpos = J > 0
    Jsafe = np.where(Jpos, J, 1.0)
    diag = -(collective_emission / 2 * (2 * J * (J + 1) - M * (M - 1) - M1 * (M1 - 1))
             + emission / 2 * (n + M + M1) + pumping / 2 * (n - M - M1))
    lower_same = _sqrt((J + M) * (J - M + 1) * (J + M1) * (J - M1 + 1))
    raise_same = _sqrt((J + M + 1) * (J - M) * (J + M1 + 1) * (J - M1))
    out = [(0, 0, diag)]
    out.append((0, -1, collective_emission * lower_same
                + np.where(Jpos, emission / 2 * lower_same * (h + 1) / (Jsafe * (J + 1)), 0.0)))
    out.append((-1, -1, np.where(Jpos, emission / 2 * _sqrt((J + M) * (J + M - 1) * (J + M1) * (J + M1 - 1))
                                 * (h + J + 1) / (Jsafe * (2 * J + 1)), 0.0)))
    out.append((+1, -1, emission / 2 * _sqrt((J - M + 1) * (J - M + 2) * (J - M1 + 1) * (J - M1 + 2))
                * (h - J) / ((J + 1) * (2 * J + 1))))
    out.append((-1, +1, np.where(Jpos, pumping / 2 * _sqrt((J - M - 1) * (J - M) * (J - M1 - 1) * (J - M1))
                                 * (h + J + 1) / (Jsafe * (2 * J + 1)), 0.0)))
    out.append((0, +1, np.where(Jpos, pumping / 2 * raise_same * (h + 1) / (Jsafe * (J + 1)), 0.0)))
    out.append((+1, +1, pumping / 2 * _sqrt((J + M + 1) * (J + M + 2) * (J + M1 + 1) * (J + M1 + 2))
                * (h - J) / ((J + 1) * (2 * J + 1))))
    return out


def energies(n, J, M, delta, g_off):
    """Eigenvalues of H = delta Jz + g/2 (J+J- - Jz - N/2) on |J, M> (docs/physics.md#permutation)."""
    return delta * M + 0.5 * g_off * ((J + M) * (J - M + 1) - M - n / 2.0)


def sector_liouvillian(sector: Sector, collective_emission, emission, pumping, delta=0.0, g_off=0.0,
                       dtype=None):
    """Sparse Liouvillian of one sector acting on the block weights R_j = d_j rho_j.

    Returns a CSR matrix L with dR/dt = L R (real for s = 0 or without H).
    """
    n = sector.n
    J, M, M1 = sector.j, sector.m, sector.m1
    rows, cols, vals = [], [], []
    src = np.arange(sector.size)
    for dJ, dM, coef in local_transitions(n, J, M, M1, emission, pumping, collective_emission):
        tgt = sector.index(J + dJ, M + dM) if (dJ or dM) else src
        keep = (tgt >= 0) & (coef != 0)
        rows.append(tgt[keep])
        cols.append(src[keep])
        vals.append(coef[keep])
    data = np.concatenate(vals).astype(complex if dtype is None else dtype)
    if sector.s != 0 and (delta != 0 or g_off != 0):
        rows.append(src)
        cols.append(src)
        data = np.concatenate([data, -1j * (energies(n, J, M, delta, g_off) - energies(n, J, M1, delta, g_off))])
    elif dtype is None:
        data = data.real
    return sparse.csr_matrix((data, (np.concatenate(rows), np.concatenate(cols))),
                             shape=(sector.size, sector.size))
