r"""U(1) block-sparse TDVP: the charge ``n_ket - n_bra`` kept exact, every contraction by blocks.

Pump, decay and exchange all conserve ``Q = sum_a (n_a^ket - n_a^bra)`` (each jump
and each flip-flop acts on the ket and the bra alike), and the steady state lies in
its ``Q = 0`` sector (``docs/physics.md``, "U(1) symmetry"). With the local charge
``q(s = 2 i + j) = i - j`` of the vectorised basis every MPS and MPO bond can carry a
charge label, and then each tensor has nonzero entries only where the charges
balance. :mod:`symmray` stores such tensors as dictionaries of dense blocks and
contracts them block by block through the same autoray calls as the dense engine,
so :class:`BlockTDVP` is :class:`~.tdvp.TDVP` with three local operations replaced:

* the Krylov exponential works on the packed vector of all allowed blocks
  (:func:`expm_blocks`);
* the two-site split is symmray's block SVD, truncated globally over sectors,
  which keeps a degenerate multiplet whole (the dense SVD can cut through a
  ``+q / -q`` pair that Hermiticity makes degenerate and mix the two sectors);
* norms and the trivial edge environments.

Measured (``benchmarks/bench_mpo_u1.py``, N = 20 magic-angle chain): sectors
``-3..3`` on the MPS bonds, ``-1, 0, 1`` on the MPO bonds, and 9-16x less time per
contraction at chi = 64-128; a whole chi = 64 rung at N = 20 runs 5.6x faster (RESULTS.md).
Below chi = 32 the per-block bookkeeping costs more than it saves, so the ladder
runs those rungs dense (:data:`BLOCKS_FROM_CHI`).

Conversions go through a *charge gauge*: in a right-canonical MPS the right charge
``Q_R`` of each bond, expressed in the orthonormal bond basis, is a Hermitian matrix
whose eigenvalues are integers for a symmetric state; rotating every bond to its
eigenbasis (a unitary, so canonical forms survive) makes each basis vector carry a
definite charge. The same works for the MPO, read as an MPS of the 16-dimensional
operator space with local charge ``q(s) - q(t)``.
"""

from __future__ import annotations

import numpy as np
from autoray import do, to_numpy

from .tdvp import TDVP, expm_krylov, right_canonicalize

__all__ = ["available", "BlockTDVP", "mps_to_blocks", "mpo_to_blocks", "mps_to_dense",
           "Q_SITE", "Q_OP", "charge_gauge", "right_canonical_svd", "expm_blocks", "resolve_symmetry",
           "charge_zero", "BLOCKS_FROM_CHI"]

#: charge ``n_ket - n_bra`` of the local basis vector ``s = 2 i + j`` (|i><j|)
Q_SITE = np.array([0, -1, 1, 0])
#: flux ``q(s) - q(t)`` of the local operator |s><t|, flattened as ``16 = 4 s + t``
Q_OP = (Q_SITE[:, None] - Q_SITE[None, :]).reshape(-1)
# duals: A (left, phys, right) with q_l + q_s = q_r; M (left, right, out, in) with
# q_wl + q_s - q_t = q_wr; the edge environments (bra, MPO, ket) contract against them
_DUALS_A = (False, False, True)
_DUALS_M = (False, True, False, True)


#: the smallest bond dimension run on blocks: below it symmray's bookkeeping (~0.1 ms a
#: call) costs more than the blocks save (N = 20 chain, 1 thread: chi = 8 and 16 rungs run
#: 3x and 1.7x slower by blocks, chi = 32 2.2x and chi = 64 5.6x faster; RESULTS.md)
BLOCKS_FROM_CHI = 32


def resolve_symmetry(symmetry, like) -> str:
    """The ``symmetry`` option checked and resolved: ``"U1"`` or ``"none"``.

    ``"auto"`` is ``"U1"`` on numpy (with symmray installed) and ``"none"`` on any other
    backend. Raises :class:`~mpsync.errors.InvalidOptionError` for anything else, or for
    ``"U1"`` where it cannot run.
    """
    from ...errors import InvalidOptionError

    if symmetry not in ("auto", "U1", "none"):
        raise InvalidOptionError(f"method='mpo': option symmetry must be 'auto', 'U1' or 'none', "
                                 f"got {symmetry!r}")
    numpy_backend = like in (None, "numpy")
    if symmetry == "auto":
        return "U1" if numpy_backend and available() else "none"
    if symmetry == "U1" and not numpy_backend:
        raise InvalidOptionError(f"method='mpo': symmetry='U1' runs on numpy only; with like={like!r} "
                                 "pass symmetry='none'")
    if symmetry == "U1" and not available():
        raise InvalidOptionError("method='mpo': symmetry='U1' needs the symmray package "
                                 "(pip install symmray); or pass symmetry='none'")
    return symmetry


def charge_zero(initial, n) -> bool:
    """Whether the product state ``initial`` lies in the charge-0 sector (no coherences):
    only then can the first state be put on blocks."""
    from ...states import product_state

    return all(abs(m[0, 1]) == 0 and abs(m[1, 0]) == 0 for m in product_state(initial, n))


def available() -> bool:
    """Whether :mod:`symmray` (the block-sparse array library) can be imported."""
    try:
        import symmray  # noqa: F401
    except ImportError:
        return False
    return True


def _symmray():
    try:
        import symmray
    except ImportError as exc:  # pragma: no cover - symmray is a declared dependency
        raise ImportError("symmetry='U1' needs the symmray package: pip install symmray") from exc
    return symmray


def charge_gauge(tensors, q_phys, total: int = 0):
    """Rotate the bonds of a right-canonical MPS ``[(l, p, r)]`` to definite charges
    (local charges ``q_phys`` of the ``p`` basis vectors of a site).

    Returns the rotated tensors, for each of the ``n + 1`` bonds the integer *left*
    charges of its basis vectors (sorted; ``Q_L = total - Q_R`` on every bond of a state
    of charge ``total``, the right edge carrying ``total``), and the largest distance of
    a charge from an integer (0 for an exactly symmetric state; a dense truncation that
    cut a +q/-q pair leaves more).
    """
    A = [np.asarray(t) for t in tensors]
    n = len(A)
    charges = [None] * (n + 1)
    charges[0] = np.zeros(1, dtype=int)
    charges[n] = np.full(1, int(total), dtype=int)
    C = np.zeros((1, 1))
    leak = 0.0
    for a in range(n - 1, 0, -1):
        p = A[a].shape[1]
        C = sum(A[a][:, s, :] @ (C + q_phys[s] * np.eye(C.shape[0])) @ A[a][:, s, :].conj().T
                for s in range(p))
        C = 0.5 * (C + C.conj().T)
        off = C - np.diag(np.diag(C))
        if np.max(np.abs(off), initial=0.0) <= 1e-10 * max(1.0, np.max(np.abs(C))):
            c, U = np.real(np.diag(C)), np.eye(C.shape[0])   # already in a charge basis
        else:
            c, U = np.linalg.eigh(C)
        q_left = int(total) - np.rint(c).astype(int)
        leak = max(leak, float(np.max(np.abs(c + q_left - int(total)), initial=0.0)))
        order = np.argsort(q_left, kind="stable")
        U, q_left, c = U[:, order], q_left[order], c[order]
        A[a] = np.tensordot(U.conj().T, A[a], axes=([1], [0]))
        A[a - 1] = np.tensordot(A[a - 1], U, axes=([2], [0]))
        C = np.diag(np.rint(c))
        charges[a] = q_left
    return A, charges, leak


def _from_dense(x, maps, duals):
    sr = _symmray()
    import warnings

    with warnings.catch_warnings():
        # entries outside the charge blocks (truncation leaks of a dense state) are dropped
        warnings.simplefilter("ignore")
        return sr.U1Array.from_dense(np.asarray(x), index_maps=[list(map(int, m)) for m in maps],
                                     duals=duals, charge=0, invalid_sectors="ignore", tol=0.0)


def mps_to_blocks(mps, canonical: bool = False, return_leak: bool = False, charge: int = 0):
    """Dense ``(Dl, 4, Dr)`` site arrays -> :class:`symmray.U1Array` tensors, right-canonical.

    Parameters
    ----------
    mps : list of arrays
    canonical : bool
        Already right-canonical (then only unitary bond rotations are applied, and a
        state written by :func:`mps_to_dense` comes back exactly).
    return_leak : bool
        Also return the largest distance of a bond charge from an integer: the part
        of the dense state outside the charge blocks, which the conversion drops.
    charge : int
        The state's total charge ``sum_a (n_a^ket - n_a^bra)``: 0 for a density matrix,
        -1 for ``s-_b rho`` (the two-time functions), carried by the right edge.
    """
    A = [np.asarray(to_numpy(x), dtype=complex) for x in mps]
    if not canonical:
        A = right_canonicalize(A)
    A, q, leak = charge_gauge(A, Q_SITE, charge)
    out = [_from_dense(A[a], [q[a], Q_SITE, q[a + 1]], _DUALS_A) for a in range(len(A))]
    return (out, leak) if return_leak else out


def right_canonical_svd(tensors, rel: float = 1e-13) -> list:
    """Right-canonical form by SVDs that drop singular values below ``rel`` times the
    largest: an MPO read as an MPS has exactly redundant bond directions, and a QR
    would keep them as zero-weight basis vectors of no definite charge."""
    A = [np.asarray(t) for t in tensors]
    for a in range(len(A) - 1, 0, -1):
        Dl, d, Dr = A[a].shape
        U, S, Vh = np.linalg.svd(A[a].reshape(Dl, d * Dr), full_matrices=False)
        k = max(1, int(np.sum(S > rel * S[0]))) if S.size and S[0] > 0 else 1
        A[a] = Vh[:k].reshape(k, d, Dr)
        A[a - 1] = np.tensordot(A[a - 1], U[:, :k] * S[:k], axes=([2], [0]))
    return A


def mpo_to_blocks(mpo) -> list:
    """Dense MPO tensors ``(Dl, Dr, 4, 4)`` -> block tensors in a charge gauge (the
    redundant bond directions dropped, see :func:`right_canonical_svd`)."""
    as_mps = [np.transpose(np.asarray(to_numpy(M), dtype=complex), (0, 2, 3, 1)).reshape(
        M.shape[0], 16, M.shape[1]) for M in mpo]
    B, q, _ = charge_gauge(right_canonical_svd(as_mps), Q_OP)
    out = []
    for a, b in enumerate(B):
        M = np.transpose(b.reshape(b.shape[0], 4, 4, b.shape[2]), (0, 3, 1, 2))
        out.append(_from_dense(M, [q[a], q[a + 1], Q_SITE, Q_SITE], _DUALS_M))
    return out


def _index_map(index) -> list:
    cm = index.chargemap
    return [q for q in sorted(cm) for _ in range(cm[q])]


def mps_to_dense(blocks) -> list:
    """Block tensors -> dense ``(Dl, 4, Dr)`` numpy arrays (bond bases sorted by charge)."""
    out = []
    for x in blocks:
        maps = [_index_map(ix) for ix in x.indices]
        maps[1] = list(map(int, Q_SITE))
        out.append(np.asarray(x.to_dense(index_maps=maps)))
    return out


def _edge_env(duals, charge: int = 0):
    # (bra, MPO, ket) beyond an edge: the MPS legs carry the charge at the right edge
    q = int(charge)
    return _symmray().U1Array.from_blocks({(q, 0, q): np.ones((1, 1, 1), dtype=complex)},
                                          duals=duals, charge=0)


_PHYSICAL_CHARGES = {int(q): int(np.sum(Q_SITE == q)) for q in np.unique(Q_SITE)}


def _full_physical(x, axes):
    """``x`` with every charge of the local basis on the physical ``axes`` (symmray
    drops index charges that no stored block uses; the generator can fill them)."""
    ix = list(x.indices)
    for a in axes:
        ix[a] = ix[a].copy_with(chargemap=dict(_PHYSICAL_CHARGES))
    return x.copy_with(indices=tuple(ix))


def expm_blocks(matvec, x, t, tol: float = 1e-10, m_max: int = 30, physical=()):
    """``exp(t A) x`` for a block array ``x``: :func:`~.tdvp.expm_krylov` on the packed
    vector of all allowed blocks of ``x`` (with every local charge on the ``physical``
    axes): the operator conserves charge, so ``A x`` has no other blocks."""
    x = _full_physical(x, physical)
    x.fill_missing_blocks()
    keys = sorted(x.blocks)
    shapes = [x.blocks[k].shape for k in keys]
    sizes = [int(np.prod(s)) for s in shapes]
    offsets = np.concatenate([[0], np.cumsum(sizes)])

    def pack(y):
        return np.concatenate([np.ravel(y.blocks[k]) if k in y.blocks else np.zeros(s, dtype=complex)
                               for k, s in zip(keys, sizes)])

    def unpack(v):
        return x.copy_with(blocks={k: v[o:o + s].reshape(sh)
                                   for k, o, s, sh in zip(keys, offsets[:-1], sizes, shapes)})

    out = expm_krylov(lambda v: pack(matvec(unpack(v))), pack(x), t, tol=tol, m_max=m_max)
    return unpack(out)


class BlockTDVP(TDVP):
    """:class:`~.tdvp.TDVP` on U(1) block-sparse tensors (same parameters and methods).

    ``mps`` and ``mpo`` are dense arrays; they are converted once (``canonical=True``:
    the MPS is right-canonical already, e.g. from a checkpoint, and converts exactly).
    :meth:`state` gives the dense arrays back. :attr:`charge_leak` is the largest
    distance of a bond charge of the given state from an integer (what the conversion
    projected away; 0 for a state that was symmetric). ``charge`` is the state's total
    charge: 0 for a density matrix, -1 for the ``s-_b rho`` of the two-time functions
    (:mod:`.regression`).

    Examples
    --------
    >>> import numpy as np
    >>> from mpsync.model import DipoleSystem
    >>> from mpsync.solvers.mpo.prepare import build_mpo, initial_mps
    >>> from mpsync.solvers.mpo.tdvp import TDVP, trace_normalized
    >>> s = DipoleSystem.chain(4, 0.2, 0.9553, W=2.0)
    >>> mpo, _ = build_mpo(s)
    >>> dense, blocks = (E(mpo, initial_mps("ground", 4, "numpy"), max_bond=16) for E in (TDVP, BlockTDVP))
    >>> for _ in range(3):
    ...     _ = dense.step(0.1); _ = blocks.step(0.1)
    >>> a, b = (trace_normalized(e.state()) for e in (dense, blocks))
    >>> from mpsync.solvers.mpo.state import density_matrix
    >>> bool(np.abs(density_matrix(a) - density_matrix(b)).max() < 1e-10)
    True

    (Dense matrices, not :func:`.tdvp.distance`, whose floor is sqrt(eps) ~ 1.5e-8.)
    """

    def __init__(self, mpo, mps, max_bond=None, cutoff: float = 1e-10,
                 krylov_tol: float = 1e-10, krylov_dim: int = 30, canonical: bool = False,
                 charge: int = 0):
        self.charge = int(charge)
        blocks, self.charge_leak = mps_to_blocks(mps, canonical=canonical, return_leak=True,
                                                 charge=self.charge)
        super().__init__(mpo_to_blocks(mpo), blocks, max_bond=max_bond, cutoff=cutoff,
                         krylov_tol=krylov_tol, krylov_dim=krylov_dim, canonical=True)
        if not canonical:
            # as the dense engine: unit-norm centre, the given norm in log_norm
            self.mps[0] = self._unit(self.mps[0])

    @classmethod
    def from_engine(cls, engine: TDVP) -> "BlockTDVP":
        """The same run continued on blocks: a dense engine's state (right-canonical, centre
        at site 0, as every step leaves it), MPO, settings and counters."""
        blocks = cls(engine.mpo, engine.state(), max_bond=engine.max_bond, cutoff=engine.cutoff,
                     krylov_tol=engine.krylov_tol, krylov_dim=engine.krylov_dim, canonical=True,
                     charge=getattr(engine, "charge", 0))
        blocks.matvecs, blocks.truncation = engine.matvecs, engine.truncation
        blocks.log_norm = engine.log_norm
        return blocks

    def state(self) -> list:
        return mps_to_dense(self.mps)

    @staticmethod
    def _norm(x) -> float:
        return float(x.norm())

    def _ones(self, side):
        if side == "left":
            return _edge_env((False, True, True))
        return _edge_env((True, False, False), self.charge)

    def _exp(self, apply, x, t):
        physical = {2: (), 3: (1,), 4: (1, 2)}[x.ndim]     # bond, one-site, two-site blocks
        return expm_blocks(self._counted(apply), x, t, tol=self.krylov_tol, m_max=self.krylov_dim, physical=physical)

    def _split(self, theta, absorb):
        Dl, d1, d2, Dr = theta.shape
        mat = do("reshape", theta, (Dl * d1, d2 * Dr))
        total = float(mat.norm()) ** 2
        # global truncation over sectors (keeps degenerate multiplets whole); "rel" cutoff
        U, s, V = mat.svd_truncated(cutoff=self.cutoff, cutoff_mode="rel",
                                    max_bond=-1 if self.max_bond is None else int(self.max_bond),
                                    absorb=None, renorm=False)
        kept = float(sum(np.sum(np.abs(np.asarray(v)) ** 2) for v in s.blocks.values()))
        if absorb == "right":
            V = V.multiply_diagonal(s, axis=0)
        else:
            U = U.multiply_diagonal(s, axis=1)
        k = U.shape[1]
        disc = max(total - kept, 0.0) / total if total > 0 else 0.0
        return do("reshape", U, (Dl, d1, k)), do("reshape", V, (k, d2, Dr)), disc
