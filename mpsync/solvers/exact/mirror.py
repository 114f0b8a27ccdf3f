r"""Mirror (reflection) reduction of the balanced sector, for mirror-symmetric systems.

Helper module of :mod:`mpsync.solvers.exact` (one algorithm: the parity-adapted basis).

The reflection R: site a -> N - 1 - a permutes the configurations of every
excitation block (bit reversal). When f, g and delta are invariant under it
(every equally spaced chain without detunings, or with mirror-symmetric ones),
R commutes with H_eff and with every jump term, so the Liouvillian commutes with
rho -> R rho R. A unique steady state then satisfies R rho R = rho, and in the
parity-adapted basis of block k (even and odd combinations of a configuration
and its mirror image, an orthogonal matrix U_k = [U_e | U_o])

.. math::

    X_k = U_e A_k U_e^T + U_o B_k U_o^T,
    \qquad K_k = U_e K_e U_e^T + U_o K_o U_o^T .

So the unknowns are A_k (m_e x m_e) and B_k (m_o x m_o), about half of them, and
the Sylvester solves of the preconditioner run on the two half-size blocks
separately: a quarter of the matrix-multiplication work. The jumps stay the
sparse matrices of the configuration basis, with only the rows whose ket is one
representative of each mirror pair kept (the others follow by symmetry), and the
columns of mirror-image pairs added up (equal entries of an invariant input): about
half the nonzeros (0.52 at N = 8; the folded columns rarely meet in one row).
See docs/solvers.md#exact.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__ = ["is_mirror_symmetric", "bit_reverse", "ParityBlock"]


def is_mirror_symmetric(system, rtol: float = 1e-12) -> bool:
    """True when f, g and delta are invariant under the reflection a -> N - 1 - a.

    Parameters
    ----------
    system : DipoleSystem
    rtol : float
        Tolerance relative to the largest |f|, |g|, |delta| (round-off of the
        dipolar formulas at mirrored distances is ~1e-16).

    Examples
    --------
    >>> from mpsync import DipoleSystem
    >>> is_mirror_symmetric(DipoleSystem.chain(6, 0.1, "magic", W=2.0))
    True
    >>> is_mirror_symmetric(DipoleSystem.chain(6, 0.1, "magic", W=2.0, delta=[0.1, 0, 0, 0, 0, 0]))
    False
    """
    f, g, d = np.asarray(system.f), np.asarray(system.g), np.asarray(system.delta)
    scale = max(float(np.abs(f).max()), float(np.abs(g).max()), float(np.abs(d).max()), 1e-300)
    flip = slice(None, None, -1)
    return bool(np.abs(f - f[flip, flip]).max() <= rtol * scale
                and np.abs(g - g[flip, flip]).max() <= rtol * scale
                and np.abs(d - d[flip]).max() <= rtol * scale)


def bit_reverse(configs, n: int):
    """Mirror image of each configuration (site a <-> site N - 1 - a: bit p <-> bit N - 1 - p)."""
    c = np.asarray(configs, dtype=np.int64)
    out = np.zeros_like(c)
    for p in range(n):
        out |= ((c >> p) & 1) << (n - 1 - p)
    return out


class ParityBlock:
    """The parity-adapted basis of one excitation block (k excitations, m = C(N, k) configurations).

    A reduced block vector is ``concat(A.ravel(), B.ravel())``: A holds the
    even-even part (m_e x m_e), B the odd-odd part (m_o x m_o) of a
    mirror-invariant X (the even-odd parts vanish).

    Parameters
    ----------
    configs : (m,) int array
        The block's configurations in increasing order.
    rank : (2**N,) int array
        Position of every configuration within its block.
    n : int
        Number of sites.
    """

    def __init__(self, configs, rank, n: int):
        m = len(configs)
        self.m = m
        self.perm = perm = rank[bit_reverse(configs, n)]  # index of the mirror image
        idx = np.arange(m)
        #: one representative per mirror orbit (the smaller index); even columns in this order
        self.reps = reps = idx[idx <= perm]
        pair = perm[reps] != reps
        self.pair_reps = reps[pair]
        self.me, self.mo = len(reps), int(pair.sum())
        self.size = self.me ** 2 + self.mo ** 2
        s = 1.0 / np.sqrt(2.0)
        w = np.where(pair, s, 1.0)
        ce = np.arange(self.me)
        rows_e = np.concatenate([reps, perm[reps[pair]]])
        cols_e = np.concatenate([ce, ce[pair]])
        vals_e = np.concatenate([w, np.full(self.mo, s)])
        self.Ue = sparse.csr_array((vals_e, (rows_e, cols_e)), shape=(m, self.me))
        co = np.arange(self.mo)
        self.Uo = sparse.csr_array((np.concatenate([np.full(self.mo, s), np.full(self.mo, -s)]),
                                    (np.concatenate([self.pair_reps, perm[self.pair_reps]]),
                                     np.concatenate([co, co]))), shape=(m, self.mo))
        self._w = w
        self._pair = pair
        # the same matrices as gathers: U_e[c, col_e[c]] = wt_e[c], U_o[c, col_o[c]] = sgn_o[c]
        self._col_e = np.empty(m, dtype=np.int64)
        self._col_e[reps] = ce
        self._col_e[perm[reps]] = ce
        self._wt_e = np.where(perm == idx, 1.0, s)
        self._col_o = np.zeros(m, dtype=np.int64)
        self._sgn_o = np.zeros(m)
        self._col_o[self.pair_reps] = co
        self._col_o[perm[self.pair_reps]] = co
        self._sgn_o[self.pair_reps] = s
        self._sgn_o[perm[self.pair_reps]] = -s
        self._weights_e = w[:, None] * self._wt_e[None, :]  # (m_e, m): U_e[reps] and U_e^T
        self._weights_o = self._sgn_o[None, :] * s
        alpha = np.where(pair, 1.0, s)
        self._alpha2 = alpha[:, None] * alpha[None, :]
        beta = np.where(pair, s, 0.5)
        self._beta2 = beta[:, None] * beta[None, :]
        # position of each representative among the representatives (-1: not one)
        self._pos = np.full(m, -1, dtype=np.int64)
        self._pos[reps] = np.arange(self.me)

    # -- the half layout of the jumps: rows of X whose ket is a representative (m_e x m)
    def row_offsets(self):
        """Per ket position: the offset of its row in the half layout, or a negative number
        below -m for a ket that is not a representative (offset + bra position < 0)."""
        return np.where(self._pos >= 0, self._pos * self.m, -2 * self.m - 1)

    def fold_index(self, ket_rank, bra_rank):
        """Index in the half layout of ``|ket><bra|`` or of its mirror image, whichever is kept
        (equal entries of a mirror-invariant X)."""
        pos = self._pos[ket_rank]
        rep = pos >= 0
        return np.where(rep, pos * self.m + bra_rank,
                        self._pos[self.perm[ket_rank]] * self.m + self.perm[bra_rank])

    def to_rep_rows(self, v):
        """The representative rows X[reps, :] (m_e x m) of X = U_e A U_e^T + U_o B U_o^T."""
        A, B = self.split(v)
        # U_e[reps] = diag(w) and U_o[reps] picks the pair rows with weight 1/sqrt 2
        Y = A[:, self._col_e]
        Y *= self._weights_e
        if self.mo:
            Y[self._pair] += B[:, self._col_o] * self._weights_o
        return Y

    def from_rep_rows(self, Y_reps):
        """The reduced vector of a mirror-invariant Y given only its representative rows.

        With Y[R r, c] = Y[r, R c]: A = (Y[reps, reps] + Y[reps, R reps]) * alpha alpha^T
        (alpha = 1 for a mirror pair, 1/sqrt 2 for a palindrome) and, on pairs only,
        B = Y[reps, reps] - Y[reps, R reps].
        """
        out = np.empty(self.size, dtype=complex)
        A, B = self.split(out)
        direct = Y_reps[:, self.reps]
        mirrored = Y_reps[:, self.perm[self.reps]]
        if self.mo:
            B[...] = (direct - mirrored)[np.ix_(self._pair, self._pair)]
        direct += mirrored
        np.multiply(direct, self._alpha2, out=A)
        return out

    # -- views and conversions
    def split(self, v):
        """Views A (m_e x m_e) and B (m_o x m_o) of a reduced block vector."""
        e2 = self.me ** 2
        return v[:e2].reshape(self.me, self.me), v[e2:].reshape(self.mo, self.mo)

    @staticmethod
    def _sandwich(U, A):
        # U A U^T with sparse real U: (U (U A)^T)^T, two sparse-dense products
        return (U @ (U @ A).T).T

    def to_full(self, v):
        """X = U_e A U_e^T + U_o B U_o^T (m x m, configuration basis).

        Every row of U_e and U_o has one nonzero at most, so X is gathered:
        X[r, c] = w_e[r] w_e[c] A[col_e[r], col_e[c]] + s_o[r] s_o[c] B[col_o[r], col_o[c]].
        """
        A, B = self.split(v)
        X = A.take(self._col_e, axis=0).take(self._col_e, axis=1)
        X *= self._wt_e[:, None]
        X *= self._wt_e[None, :]
        if self.mo:
            Z = B.take(self._col_o, axis=0).take(self._col_o, axis=1)
            Z *= self._sgn_o[:, None]
            Z *= self._sgn_o[None, :]
            X += Z
        return X

    def from_full(self, X, out=None):
        """The reduced vector of (the mirror-invariant part of) X: A = U_e^T X U_e, B = U_o^T X U_o.

        Gathered as well: with R = X[reps] + X[R reps] (rows), A is R[:, reps] + R[:, R reps]
        times beta beta^T (beta = 1/sqrt 2 for a mirror pair, 1/2 for a palindrome, counted
        twice), and B the same with differences, on pairs only, times 1/2.
        """
        out = np.empty(self.size, dtype=complex) if out is None else out
        A, B = self.split(out)
        X = np.asarray(X)
        image = self.perm[self.reps]
        R = X.take(self.reps, axis=0)
        R += X.take(image, axis=0)
        np.add(R.take(self.reps, axis=1), R.take(image, axis=1), out=A)
        A *= self._beta2
        if self.mo:
            pr, pi = self.pair_reps, self.perm[self.pair_reps]
            D = X.take(pr, axis=0)
            D -= X.take(pi, axis=0)
            np.subtract(D.take(pr, axis=1), D.take(pi, axis=1), out=B)
            B *= 0.5
        return out

    def parity_blocks(self, K):
        """(K_e, K_o, leak): the even and odd blocks of U^T K U and the norm of its even-odd part
        relative to ||K|| (zero for a mirror-symmetric K)."""
        Ke = self._sandwich(self.Ue.T, K)
        Ko = self._sandwich(self.Uo.T, K) if self.mo else np.zeros((0, 0), dtype=K.dtype)
        cross = (self.Ue.T @ (self.Uo.T @ K.T).T) if self.mo else np.zeros((0, 0))
        leak = float(np.linalg.norm(cross) / max(np.linalg.norm(K), 1e-300))
        return Ke, Ko, leak
