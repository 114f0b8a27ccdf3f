r"""N - 1 permutation-symmetric dipoles plus one distinguished dipole c (helper of ``permutational``).

The pair function Z_ab(tau) needs <s+_c(tau) s-_c(0)>, i.e. the evolution of
s-_c rho, which is symmetric only under permutations of the other N - 1 dipoles.
Such an operator is

.. math:: X = \bigoplus_{j'} X_{j'} \otimes \mathbb{1}_{d'_{j'}},

X_{j'} acting on (rest spin j') x (site c), dimension D = 2 (2j' + 1); the
unknowns are the block weights R'_{j'} = d'_{j'} X_{j'}. The Liouvillian is

- inside a block: -i[H, .] + (f - 0) D[J-] + (Gamma - f) D[s-_c] + W D[s+_c], with the
  total J = J' + s_c and H = delta Jz + g/2 (J+J- - Jz - N/2), built by Kronecker
  products (row-major vec: A X B -> A (x) B^T);
- between blocks: the individual emission and pump of the N - 1 rest dipoles,
  the Chase-Geremia rates of :mod:`.dicke_sectors` (identity on site c).

It is restricted to one U(1) sector (m + i) - (m' + k) = s (i, k the ket and bra
excitations of site c). Size ~ sum_j' 4 (2j'+1) per sector, O(N^2).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from ...channels import SM, SP, SZ
from .dicke_sectors import j_values, local_transitions, log_degeneracy


def spin_matrices(j):
    """J+, J-, Jz of spin j in the basis m = -j..j (index u = m + j)."""
    m = np.arange(-j, j + 0.5)
    d = m.size
    jp = np.zeros((d, d))
    if d > 1:
        jp[np.arange(1, d), np.arange(d - 1)] = np.sqrt((j - m[:-1]) * (j + m[:-1] + 1))
    return jp, jp.T.copy(), np.diag(m)


def _padded(M, idx, by):
    """Nonzeros of columns (``by="col"``, M in CSC) or rows (CSR) ``idx``, padded to equal length."""
    counts = np.diff(M.indptr)
    width = max(int(counts.max()) if counts.size else 0, 1)
    pos = np.zeros((M.shape[0], width), dtype=np.int64)
    val = np.zeros((M.shape[0], width), dtype=M.dtype)
    for t in range(width):
        has = counts > t
        where = M.indptr[:-1][has] + t
        pos[has, t] = M.indices[where]
        val[has, t] = M.data[where]
    return pos[idx], val[idx]


class SiteSpace:
    """One U(1) sector of the (N - 1 symmetric) x (site c) Liouville space."""

    def __init__(self, n: int, s: int):
        self.n, self.s = n, s
        self.M = n - 1
        self.jp = j_values(self.M)
        self.dims = [2 * int(round(2 * j + 1)) for j in self.jp]
        self.offsets = np.concatenate([[0], np.cumsum([d * d for d in self.dims])])
        maps, elems = [], []
        count = 0
        for b, (j, D) in enumerate(zip(self.jp, self.dims)):
            a_idx, b_idx = np.divmod(np.arange(D * D), D)
            u, i = np.divmod(a_idx, 2)
            u1, k = np.divmod(b_idx, 2)
            ok = (u + i) - (u1 + k) == s
            mp = np.full(D * D, -1, dtype=np.int64)
            mp[ok] = count + np.arange(ok.sum())
            count += int(ok.sum())
            maps.append(mp)
            elems.append(np.stack([np.full(ok.sum(), b), u[ok], i[ok], u1[ok], k[ok]], axis=1))
        self.gmap = np.concatenate(maps)
        self.elems = np.concatenate(elems) if elems else np.zeros((0, 5), int)
        self.size = count

    def index(self, block, u, i, u1, k):
        """Global positions of elements; -1 where outside the space or the sector."""
        block = np.asarray(block)
        nb = len(self.dims)
        ok = (block >= 0) & (block < nb)
        bsafe = np.where(ok, block, 0)
        dims = np.asarray(self.dims)[bsafe]
        nm = dims // 2
        ok &= (u >= 0) & (u < nm) & (u1 >= 0) & (u1 < nm)
        local = (2 * u + i) * dims + (2 * u1 + k)
        out = np.full(block.shape, -1, dtype=np.int64)
        out[ok] = self.gmap[self.offsets[bsafe[ok]] + local[ok]]
        return out

    def liouvillian(self, f_off, emission, pumping, delta=0.0, g_off=0.0):
        """Sparse Liouvillian of this sector on the block weights."""
        n = self.n
        rows, cols, vals = [], [], []
        # inside blocks: sums of c A X B, applied element by element to the sector
        # entries (a, b) -> (a', b') += c A[a', a] B[b, b'] (no D^2 x D^2 matrix is formed)
        for blk, (j, D) in enumerate(zip(self.jp, self.dims)):
            jp, jm, jz = (sparse.csr_matrix(x) for x in spin_matrices(j))
            e = sparse.identity(jp.shape[0], format="csr")
            e2 = sparse.identity(2, format="csr")
            Jm = (sparse.kron(jm, e2) + sparse.kron(e, SM)).tocsr()
            Jz = (sparse.kron(jz, e2) + sparse.kron(e, SZ / 2)).tocsr()
            Jp = Jm.T.tocsr()
            I = sparse.identity(D, format="csr")
            terms = []
            H = delta * Jz + 0.5 * g_off * (Jp @ Jm - Jz)
            if H.nnz:
                terms += [(H, I, -1j), (I, H, 1j)]
            for rate, op in ((f_off, Jm), (emission, sparse.kron(e, SM).tocsr()),
                             (pumping, sparse.kron(e, SP).tocsr())):
                if rate == 0:
                    continue
                od = (op.T @ op).tocsr()
                terms += [(op, op.T.tocsr(), rate), (od, I, -rate / 2), (I, od, -rate / 2)]
            mp = self.gmap[self.offsets[blk]:self.offsets[blk + 1]]
            sel = np.flatnonzero(mp >= 0)
            src_a, src_b = np.divmod(sel, D)
            for A, B, c in terms:
                ra, va = _padded(A.tocsc(), src_a, by="col")
                cb, vb = _padded(B.tocsr(), src_b, by="row")
                tgt = ra[:, :, None] * D + cb[:, None, :]
                val = c * va[:, :, None] * vb[:, None, :]
                src = np.broadcast_to(mp[sel][:, None, None], tgt.shape)
                keep = val != 0
                rows.append(mp[tgt[keep]])
                cols.append(src[keep])
                vals.append(val[keep].astype(complex))
        # between blocks: individual emission and pump of the rest
        blk, u, i, u1, k = self.elems.T
        J = self.jp[blk]
        m, m1 = u - J, u1 - J
        src = np.arange(self.size)
        for dJ, dM, coef in local_transitions(self.M, J, m, m1, emission, pumping, 0.0):
            tb = blk - dJ  # blocks are ordered by decreasing j'
            tj = J + dJ
            tgt = self.index(tb, np.rint(m + dM + tj).astype(int), i,
                             np.rint(m1 + dM + tj).astype(int), k)
            keep = (tgt >= 0) & (coef != 0)
            rows.append(tgt[keep])
            cols.append(src[keep])
            vals.append(coef[keep].astype(complex))
        return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                 shape=(self.size, self.size))

    def from_dicke_populations(self, populations, jN, mN, lower_site: bool = True):
        """s-_c rho (or rho) for a balanced N-spin state rho given by Dicke populations R_j(m).

        rho = sum_{j,m} R_j(m) |j, m><j, m| (block weights) is decomposed with
        Clebsch-Gordan coefficients into (rest j') x (site c), j = j' +- 1/2, with
        weights d'_{j'} / d_j per copy.
        """
        n = self.n
        out = np.zeros(self.size, dtype=complex)
        populations = np.asarray(populations, float)
        for blk, (jr, D) in enumerate(zip(self.jp, self.dims)):
            mp = self.gmap[self.offsets[blk]:self.offsets[blk + 1]]
            for j, sign in ((jr + 0.5, +1), (jr - 0.5, -1)):
                sel = np.abs(jN - j) < 1e-9
                if j < -1e-9 or not np.any(sel):
                    continue
                w = np.exp(log_degeneracy(self.M, jr) - log_degeneracy(n, j)) * populations[sel]
                m = mN[sel]
                # |j, m> = alpha |j', m - 1/2>|up> + beta |j', m + 1/2>|down>
                a = np.sqrt(np.maximum(jr + m + 0.5, 0.0) / (2 * jr + 1))
                c = np.sqrt(np.maximum(jr - m + 0.5, 0.0) / (2 * jr + 1))
                alpha, beta = (a, c) if sign > 0 else (-c, a)
                up = np.rint(m - 0.5 + jr).astype(int)
                dn = np.rint(m + 0.5 + jr).astype(int)
                alpha = np.where((up >= 0) & (up < D // 2), alpha, 0.0)
                beta = np.where((dn >= 0) & (dn < D // 2), beta, 0.0)
                pu, pd = 2 * np.clip(up, 0, D // 2 - 1) + 1, 2 * np.clip(dn, 0, D // 2 - 1)
                pairs = [(pu, pu, alpha * alpha), (pu, pd, alpha * beta)]
                if not lower_site:
                    pairs += [(pd, pu, beta * alpha), (pd, pd, beta * beta)]
                for ket, bra, amp in pairs:
                    if lower_site:
                        ket = ket - 1  # s-_c |up> = |down>; rows with site c down vanish
                    idx = mp[ket * D + bra]
                    ok = (idx >= 0) & (amp != 0)
                    np.add.at(out, idx[ok], (w * amp)[ok])
        return out

    def readout(self, vec):
        """(Tr[s+_c X], Tr[J'+ X]) of an operator X in the s = -1 sector."""
        blk, u, i, u1, k = self.elems.T
        J = self.jp[blk]
        same = (u == u1) & (i == 0) & (k == 1)
        g_same = np.sum(vec[same])
        hop = (u1 == u + 1) & (i == k)
        m = u - J
        g_rest = np.sum(vec[hop] * np.sqrt((J[hop] - m[hop]) * (J[hop] + m[hop] + 1)))
        return g_same, g_rest
