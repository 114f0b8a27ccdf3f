r"""State vectors of N dipoles for the trajectory solver, ordered by excitation sector.

The 2^N basis states (site 0 the most significant bit, 0 = down, as in
:func:`mpsync.observables.collective_spin_operators`) are reordered by the number of
excitations k (stably, so ascending within a sector). H_eff conserves k and every
jump changes it by one, so a trajectory started in a basis state stays in a single
sector of C(N, k) amplitudes, and a superposition occupies a contiguous range of
positions ``offsets[k_lo]:offsets[k_hi + 1]``.

The effective Hamiltonian (docs/physics.md#unravelling, Gamma = f_aa, units of Gamma)

.. math::

    H_\mathrm{eff} = \sum_a \left[\delta_a (n_a - \tfrac12) - \tfrac{i}{2} f_{aa} n_a
                     - \tfrac{i W}{2} (1 - n_a)\right]
                     + \sum_{a \ne b} \tfrac12 (g_{ab} - i f_{ab})\, s^+_a s^-_b

is stored as one sparse CSR matrix in the sector order (block diagonal), built by
bit manipulation; never as a dense 2^N x 2^N matrix. The lowering and raising
operators s-_b, s+_a are gather tables (index arrays) with a sentinel index
pointing at a zero, so (s-_b psi)[j] = psi_ext[low[b, j]].
"""

from __future__ import annotations

from math import comb

import numpy as np
from scipy import sparse

from ...errors import check_memory
from ...observables import qfi_from_moments

__all__ = ["StateSpace", "estimate_memory", "pure_state_qfi", "moments_of_state"]

_C = 16  # bytes per complex128


def estimate_memory(n: int, workers: int = 1) -> float:
    """Peak bytes of one trajectory process at N dipoles (times ``workers`` processes).

    Hopping CSR (built through COO) ~ 52 bytes per non-zero, N(N-1)2^N/4 of them;
    gather tables, bit table and the N x 2^N work arrays of the jump/diffusion steps.
    """
    d = 2.0 ** n
    nnz = n * (n - 1) * d / 4 + d
    per = 52 * nnz + (8 + 1 + 4 * _C) * n * d + 8 * _C * d
    return per * max(1, int(workers))


def check_size(n: int, workers: int = 1, alternatives: str | None = None) -> None:
    """Raise :class:`~mpsync.errors.TooLargeError` before any 2^N allocation; the message
    names ``alternatives`` (the methods that accept the system) and fewer workers."""
    alt = "fewer workers" if not alternatives else f"{alternatives}, or fewer workers"
    check_memory(estimate_memory(n, workers),
                 f"N={n} in the trajectory solver (state vectors over 2^{n} amplitudes, "
                 f"{max(1, int(workers))} worker process(es))", alt)


class StateSpace:
    """Sector-ordered state space, H_eff and jump operators of one dipole system.

    Parameters
    ----------
    system : DipoleSystem
        f must be positive semidefinite (its eigen-decomposition gives the jumps).

    Attributes
    ----------
    n, dim : int
        N and 2^N.
    order : (2^N,) int
        ``order[j]`` = natural (bit-string) index of the j-th sector-ordered state.
    inv : (2^N,) int
        Inverse permutation.
    offsets : (N + 2,) int
        Sector k occupies positions ``offsets[k]:offsets[k + 1]``.
    bits : (2^N, N) int8
        Occupation n_a of each sector-ordered state.
    low, rai : (N, 2^N) int
        Gather tables of s-_b and s+_a (sentinel ``dim`` = zero).
    A : (N, K) float
        Collective jumps L_k = sum_b A[b, k] s-_b, A = V sqrt(l) (l_k > 0 kept).
    """

    def __init__(self, system, method_name: str = "method='trajectories'"):
        n = system.n
        self.n = n
        self.dim = d = 2 ** n
        self.W = float(system.W)
        dec = system.lindblad_decomposition(method_name)
        keep = dec.rates > 1e-12 * max(float(np.max(dec.rates)), system.gamma)
        self.rates = dec.rates[keep]
        self.A = dec.vectors[:, keep] * np.sqrt(self.rates)[None, :]
        idx = np.arange(d, dtype=np.int64)
        shifts = (n - 1 - np.arange(n)).astype(np.int64)
        pc = np.zeros(d, dtype=np.int64)
        for s in shifts:
            pc += (idx >> s) & 1
        self.order = np.argsort(pc, kind="stable")
        self.inv = np.empty(d, dtype=np.int64)
        self.inv[self.order] = idx
        counts = np.array([comb(n, k) for k in range(n + 1)])
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        st = self.order
        self.bits = ((st[:, None] >> shifts[None, :]) & 1).astype(np.int8)
        self.sector_of = pc[st]
        itype = np.int32 if d < 2 ** 31 - 1 else np.int64
        masks = (np.int64(1) << shifts)
        self.low = np.full((n, d), d, dtype=itype)
        self.rai = np.full((n, d), d, dtype=itype)
        for a in range(n):
            has = self.bits[:, a].astype(bool)
            # s-_a |s> lands on s ^ m_a: position j (bit a = 0) reads from j's partner with a set
            self.low[a, ~has] = self.inv[st[~has] | masks[a]]
            self.rai[a, has] = self.inv[st[has] & ~masks[a]]
        self.diag = self._diagonal(system)
        self.H = self._build(system, masks)
        self._blocks = {}

    # ------------------------------------------------------------------ construction
    def _diagonal(self, system):
        nb = self.bits.astype(float)
        gam = np.diag(system.f)
        return (nb @ system.delta - 0.5 * system.delta.sum()
                - 0.5j * (nb @ gam) - 0.5j * self.W * (self.n - nb.sum(axis=1)))

    def _build(self, system, masks):
        n, d = self.n, self.dim
        c = 0.5 * (system.g - 1j * system.f)
        rows, cols, vals = [np.arange(d)], [np.arange(d)], [self.diag]
        st = self.order
        for b in range(n):
            hb = self.bits[:, b].astype(bool)
            for a in range(n):
                if a == b or c[a, b] == 0:
                    continue
                sel = np.nonzero(hb & ~self.bits[:, a].astype(bool))[0]
                rows.append(self.inv[st[sel] ^ (masks[a] | masks[b])])
                cols.append(sel)
                vals.append(np.full(sel.size, c[a, b]))
        H = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                              shape=(d, d))
        H.sum_duplicates()
        return H

    # ------------------------------------------------------------------ ranges
    def span(self, klo: int, khi: int):
        """Positions (lo, hi) of sectors klo..khi (clipped to 0..N)."""
        klo, khi = max(klo, 0), min(khi, self.n)
        if khi < klo:
            return 0, 0
        return int(self.offsets[klo]), int(self.offsets[khi + 1])

    def block(self, klo: int, khi: int):
        """(H_eff restricted to sectors klo..khi, scalar shift mu, 1-norm of H - mu)."""
        key = (klo, khi)
        if key not in self._blocks:
            lo, hi = self.span(klo, khi)
            rows = self.H[lo:hi]
            blk = sparse.csr_matrix((rows.data, rows.indices - lo, rows.indptr), shape=(hi - lo, hi - lo))
            # the scalar part of the diagonal is exact in the exponential; only the rest sets the step
            mu = complex(np.mean(self.diag[lo:hi]))
            shifted = blk - mu * sparse.identity(hi - lo, format="csr")
            norm1 = float(abs(shifted).sum(axis=0).max()) if hi > lo else 0.0
            self._blocks[key] = (shifted.tocsr(), mu, norm1)
        return self._blocks[key]

    def range_of(self, x, lo):
        """Sector range (klo, khi) occupied by amplitudes x at positions lo.. (nonzero ones)."""
        nz = np.nonzero(np.abs(x) > 0)[0]
        if nz.size == 0:
            return 0, 0
        ks = self.sector_of[lo + nz]
        return int(ks.min()), int(ks.max())

    # ------------------------------------------------------------------ images
    def lowered(self, buf, klo, khi):
        """(Phi, lo') with Phi[b] = (s-_b psi) on sectors klo-1..khi-1; buf holds psi, buf[dim] = 0."""
        lo2, hi2 = self.span(klo - 1, khi - 1)
        return buf[self.low[:, lo2:hi2]], lo2

    def raised_one(self, buf, a, klo, khi):
        lo2, hi2 = self.span(klo + 1, khi + 1)
        return buf[self.rai[a, lo2:hi2]], lo2

    def to_sector_order(self, vec):
        return np.asarray(vec)[self.order]

    def to_natural(self, x, lo=0):
        out = np.zeros(self.dim, dtype=complex)
        out[self.order[lo:lo + len(x)]] = x
        return out


def moments_of_state(space: StateSpace, x, lo: int, klo: int, khi: int, buf, coherent: bool):
    """One- and two-point moments of the normalised state x (positions lo..).

    Returns (sz, C, zz, sm) with C_ab = <s+_a s-_b> = <s-_a psi|s-_b psi> (a Gram
    matrix of the lowered images: one N x N x d product), sm = <s-_a> when the state
    spans several sectors (``coherent``), else None. Cost O(N^2 d).
    """
    d = len(x)
    p = (x.real ** 2 + x.imag ** 2)
    z = 2.0 * space.bits[lo:lo + d].astype(float) - 1.0
    sz = p @ z
    zz = z.T @ (p[:, None] * z)
    buf[lo:lo + d] = x
    phi, lo2 = space.lowered(buf, klo, khi)
    C = np.conj(phi) @ phi.T
    sm = None
    if coherent:
        sm = phi @ np.conj(buf[lo2:lo2 + phi.shape[1]])
    buf[lo:lo + d] = 0.0
    return sz, C, zz, sm


def pure_state_qfi(psi, n: int | None = None, space: StateSpace | None = None) -> float:
    """Direction-averaged QFI (mean of 4 Var J_x, J_y, J_z) of a pure state vector.

    Parameters
    ----------
    psi : (2^N,) complex
        State in the basis of :mod:`mpsync.observables` (site 0 most significant bit).
    n : int, optional
    space : StateSpace, optional
        Reused tables (any system with N dipoles).
    """
    psi = np.asarray(psi, dtype=complex)
    if n is None:
        n = int(round(np.log2(psi.size)))
    if space is None:
        space = _bare_space(n)
    x = space.to_sector_order(psi)
    x = x / np.linalg.norm(x)
    klo, khi = space.range_of(x, 0)
    buf = np.zeros(space.dim + 1, dtype=complex)
    sz, C, zz, _ = moments_of_state(space, x, 0, 0, space.n, buf, coherent=False)
    buf[:space.dim] = x
    phi, lo2 = space.lowered(buf, 0, space.n)
    sm = phi @ np.conj(buf[lo2:lo2 + phi.shape[1]])
    return qfi_from_moments(sz, C, zz, sm)


def _bare_space(n):
    from ...model import DipoleSystem

    return StateSpace(DipoleSystem.from_matrices(np.eye(n), np.zeros((n, n)), W=0.0))
