"""Bit-level construction of the Liouvillian in the full space and in the balanced U(1) sector.

Helper module of :mod:`mpsync.solvers.exact` (one algorithm: building the generator).

A basis operator ``|i><j|`` of N qubits is labelled by two configuration integers
``i`` (ket) and ``j`` (bra). Site ``a`` is bit ``N - 1 - a`` (site 0 the most
significant bit, as in :mod:`mpsync.observables`), bit value 1 = up. Every term of
the master equation (docs/physics.md#channels) maps ``|i><j|`` to ``coefficient * |i'><j'|``,
so the generator is assembled with vectorised bit arithmetic over all basis
operators at once, for any ordering of them (full space or balanced sector).
"""

from __future__ import annotations

from math import comb

import numpy as np
from scipy import sparse

from ...channels import local_generator, pair_channel_coefficients

__all__ = [
    "site_bit", "popcount", "spread_bits", "SectorBasis", "assemble", "nnz_estimate_sector",
    "nnz_estimate_full",
]


def site_bit(n: int, a: int) -> int:
    """Integer mask of site ``a`` in a configuration of ``n`` qubits (site 0 most significant)."""
    return 1 << (n - 1 - a)


def popcount(x):
    """Number of up spins in each configuration."""
    return np.bitwise_count(np.asarray(x, dtype=np.int64)).astype(np.int64)


def spread_bits(x, n: int):
    """Move bit p of x to bit 2p (interleaving helper for the per-site index 2 i + j)."""
    x = np.asarray(x, dtype=np.int64)
    out = np.zeros_like(x)
    for p in range(n):
        out |= ((x >> p) & 1) << (2 * p)
    return out


class SectorBasis:
    """Basis of the sector n_ket - n_bra = ``shift`` of N qubits (balanced: shift 0).

    The sector is the direct sum over bra excitation numbers k of blocks ``X_k``
    of shape ``(m_{k+shift}, m_k)``, ``m_k = C(N, k)``; rows are ket
    configurations (k + shift excitations) and columns bra configurations (k
    excitations), each in increasing integer order. Blocks are stored one after
    the other, row-major, so ``blocks(vec)[i]`` is the i-th block (bra number
    ``bra_counts[i]``); in the balanced sector block i is ``X_i``.
    """

    def __init__(self, n: int, shift: int = 0):
        self.n = n
        self.shift = shift
        allc = np.arange(2 ** n, dtype=np.int64)
        pop = popcount(allc)
        self.configs = [allc[pop == k] for k in range(n + 1)]
        self.m = np.array([comb(n, k) for k in range(n + 1)], dtype=np.int64)
        self.bra_counts = [k for k in range(n + 1) if 0 <= k + shift <= n]
        self.shapes = [(int(self.m[k + shift]), int(self.m[k])) for k in self.bra_counts]
        self.offsets = np.concatenate([[0], np.cumsum([r * c for r, c in self.shapes])]).astype(np.int64)
        self.size = int(self.offsets[-1])
        self.rank = np.empty(2 ** n, dtype=np.int64)
        for c in self.configs:
            self.rank[c] = np.arange(len(c))

    def blocks(self, vec):
        """Views of the blocks of a sector vector (or of the rows of a (size, p) array)."""
        return [vec[self.offsets[i]:self.offsets[i + 1]].reshape(shape + vec.shape[1:])
                for i, shape in enumerate(self.shapes)]

    def ket_bra(self):
        """Ket and bra configuration of every sector element, in sector order."""
        kets, bras = [], []
        for k in self.bra_counts:
            ck, cb = self.configs[k + self.shift], self.configs[k]
            kets.append(np.repeat(ck, len(cb)))
            bras.append(np.tile(cb, len(ck)))
        return np.concatenate(kets), np.concatenate(bras)

    def index(self, ket, bra):
        """Sector index of ``|ket><bra|`` (popcounts must differ by ``shift``)."""
        k = popcount(bra)
        return self.offsets[k - self.bra_counts[0]] + self.rank[ket] * self.m[k] + self.rank[bra]


def nnz_estimate_sector(n: int) -> int:
    """Upper bound of the nonzeros of the sector Liouvillian (all couplings nonzero)."""
    tot = 0
    for k in range(n + 1):
        m2 = comb(n, k) ** 2
        tot += m2 * (1 + 2 * k * (n - k) + k * k + (n - k))
    return tot


def nnz_estimate_full(n: int) -> int:
    """Upper bound of the nonzeros of the full 4^N Liouvillian."""
    tot = 0
    for ki in range(n + 1):
        for kj in range(n + 1):
            cnt = comb(n, ki) * comb(n, kj)
            tot += cnt * (1 + ki * (n - ki) + kj * (n - kj) + ki * kj + 2 * n)
    return tot


def assemble(system, ket, bra, index, parts=("local", "ket", "bra", "cross"), local_jumps=True,
             shape=None, dtype=complex, diagonal=True, columns=None):
    """Sparse generator on the basis operators ``|ket[c]><bra[c]|`` (column c).

    Parameters
    ----------
    system : DipoleSystem
    ket, bra : (D,) int arrays
        Configurations of the basis operator of each column.
    index : callable
        ``index(ket', bra') -> row`` for the image basis operators; a negative
        row drops the entry (rows not needed, e.g. fixed by a symmetry).
    parts : tuple of str
        Which terms to include: ``"local"`` (:func:`mpsync.channels.local_generator`
        per site), ``"ket"``, ``"bra"``, ``"cross"`` (the pair channels of
        :func:`mpsync.channels.pair_channel_coefficients`).
    local_jumps : bool or {"lower", "raise"}
        With ``"local"``, include its off-diagonal entries (the jumps of decay and
        pump); ``False`` keeps only its diagonal; ``"lower"`` only decay,
        ``"raise"`` only the pump.
    diagonal : bool
        Include the diagonal (the local terms that keep ket and bra); ``False``
        when ``index`` maps into another space than the columns (one block of
        the sector to another).
    columns : (D,) int array, optional
        Column of each basis operator (default: its position); equal columns
        add up (inputs identified by a symmetry).

    Returns
    -------
    scipy.sparse.csr_matrix of shape ``(D, D)`` (or ``shape``).
    """
    n = system.n
    dim = len(ket)
    cols_all = np.arange(dim, dtype=np.int64) if columns is None else np.asarray(columns, dtype=np.int64)
    rows, cols, vals = [], [], []
    diag = np.zeros(dim, dtype=dtype)
    itype = np.int32 if dim < 2 ** 31 else np.int64

    def append(r, c, v):
        keep = r >= 0
        if not keep.all():
            r, c, v = r[keep], c[keep], v[keep]
        rows.append(r.astype(itype))
        cols.append((c if columns is None else cols_all[c]).astype(itype))
        vals.append(v)

    def add(mask, new_ket, new_bra, coef):
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return
        append(index(new_ket[idx], new_bra[idx]), idx, np.full(idx.size, coef, dtype=dtype))

    bits = [(ket >> (n - 1 - a)) & 1 for a in range(n)], [(bra >> (n - 1 - a)) & 1 for a in range(n)]
    if "local" in parts:
        for a in range(n):
            gen = local_generator(float(system.delta[a]), float(system.f[a, a]), float(system.W))
            s = 2 * bits[0][a] + bits[1][a]
            mb = site_bit(n, a)
            for sp, sc in zip(*np.nonzero(gen)):
                coef = gen[sp, sc]
                mask = s == sc
                if sp == sc:
                    diag[mask] += coef
                elif local_jumps is True or local_jumps == ("raise" if sp > sc else "lower"):
                    ik, jk = divmod(int(sp), 2)
                    nk = (ket & ~mb) | (mb * ik)
                    nb = (bra & ~mb) | (mb * jk)
                    add(mask, nk, nb, coef)
    kc, bc, cc = pair_channel_coefficients(system.f, system.g)
    masks = 1 << (n - 1 - np.arange(n, dtype=np.int64))  # site_bit of every site
    occ_k = np.array(bits[0], dtype=bool)  # (n, dim): i_b = 1
    occ_b = np.array(bits[1], dtype=bool)  # (n, dim): j_b = 1
    none = np.zeros(n, dtype=np.int64)

    def add_pairs(mask2d, coef_row, ket_flip, bra_flip):
        # all partners b of one site a at once; b = a and zero couplings drop out
        mask2d &= (coef_row != 0)[:, None]
        bi, ci = np.nonzero(mask2d)
        if ci.size == 0:
            return
        append(index(ket[ci] ^ ket_flip[bi], bra[ci] ^ bra_flip[bi]), ci, coef_row[bi].astype(dtype))

    for a in range(n):
        pair = masks[a] | masks
        # ket: s+_a s-_b rho needs i_b = 1, i_a = 0
        if "ket" in parts:
            add_pairs(~occ_k[a][None, :] & occ_k, kc[a], pair, none)
        # bra: rho s+_a s-_b = (s+_b s-_a |j>)^+ needs j_a = 1, j_b = 0
        if "bra" in parts:
            add_pairs(occ_b[a][None, :] & ~occ_b, bc[a], none, pair)
        # cross: s-_b rho s+_a needs i_b = 1, j_a = 1 (cc[a, a] = 0: decay is local)
        if "cross" in parts:
            add_pairs(occ_k & occ_b[a][None, :], cc[a], masks, np.full(n, masks[a]))
    if diagonal:
        append(index(ket, bra), np.arange(dim), diag)
    if not vals:
        return sparse.csr_matrix(shape or (dim, dim), dtype=dtype)
    shape = shape or (dim, dim)
    # 32-bit indices while they fit: a third less memory for the largest matrices
    itype = np.int32 if max(shape) < 2 ** 31 - 1 else np.int64
    mat = sparse.coo_matrix((np.concatenate(vals),
                             (np.concatenate(rows).astype(itype), np.concatenate(cols).astype(itype))),
                            shape=shape)
    mat = mat.tocsr()
    mat.sum_duplicates()
    mat.eliminate_zeros()
    return mat
