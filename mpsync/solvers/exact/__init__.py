r"""Exact solver: the full master equation, sparse, in the balanced U(1) sector.

Solves (Gamma = 1 units by default, times in 1/Gamma)

.. math::

    \dot\rho = \mathcal{L}\rho = -i[H, \rho] + \mathcal{L}_f[\rho] + \mathcal{L}_W[\rho]

of docs/physics.md#master-equation for arbitrary f, g, delta and W, built from
:func:`mpsync.channels.local_generator` and :func:`mpsync.channels.pair_channel_coefficients`.

Steady state
    H and every jump change ket and bra excitation numbers together, so the steady
    state lives in the balanced sector n_ket = n_bra (C(2N, N) unknowns). There
    rho = (X_0, ..., X_N), X_k the (C(N,k) x C(N,k)) block with k excitations, and

    .. math:: \mathcal{L}\rho = \underbrace{K X_k + X_k K^\dagger}_{D,\ \text{keeps } k}
              + \underbrace{\textstyle\sum_{ab} f_{ab}\, s^-_b X_{k+1} s^+_a}_{\text{lowers}}
              + \underbrace{W \textstyle\sum_a s^+_a X_{k-1} s^-_a}_{\text{raises}},
        \qquad K = -i H_\mathrm{eff}

    with H_eff = H - i/2 sum f s+ s- - i W/2 sum s- s+. ``solver="direct"`` factorises
    the sparse sector Liouvillian (one row replaced by the trace); ``solver="iterative"``
    runs GMRES on the right-preconditioned system L P sigma = 0, rho = P sigma, with
    P = D^{-1} (block Jacobi: L P = 1 + J D^{-1}, J D^{-1} minus the trace-preserving
    jump map of quantum trajectories) or, by default, block Gauss-Seidel (about half
    the iterations): P = (D + J_lower)^{-1}, a sweep from k = N down to 0, for
    W <= 2 Gamma, and P = (D + J_raise)^{-1}, a sweep from k = 0 up, above, where the
    pump is the stronger coupling (15-25 % fewer iterations at W ~ f_eff). D^{-1}
    costs one Sylvester solve per block (eigen- or Schur decomposition of K_k,
    computed once). Since <<1| L = 0, adding the rank-one term v <<1| (with
    <<1|v> = 1) makes the system nonsingular and fixes <<1|sigma> = 1.

    A mirror-symmetric system (f, g, delta invariant under a -> N - 1 - a) is solved
    among mirror-invariant states (:mod:`.mirror`): half the unknowns, a quarter of
    the Sylvester work. W enters only through the pump jumps (proportional to W) and
    a scalar shift of each K_k, so the operator is kept after a call and moved to a
    new W when only W changes (``reuse``; a pump scan builds it once).

Time evolution and two-time functions
    :func:`evolve` propagates with ``expm_multiply`` in the balanced sector (initial
    states without coherences) or in the full space; :func:`correlation_function`
    gives <s+_a(tau) s-_b(0)> by quantum regression in the sector n_ket - n_bra = -1.

Memory
    The iterative solver stores no jump matrix: the jumps into block k are applied as
    sum_a F_a X S_a, F_a a sparse (m_k x m_{k+1}) matrix with N - k entries a row, S_a a
    column selection (:meth:`SectorOperator._free_tables`), the same multiply-adds as the
    stored matrix, which would be 23 GB at N = 14. What remains is the Krylov method's
    vectors (BiCGStab from N = 12: about 22 in all; GMRES below: its basis of 40 and about
    19 more) and the Sylvester factors. Every entry point estimates its peak memory first
    (:func:`estimate_memory`, within 6 % of the measured peak RSS at N = 9-14) and raises
    :class:`mpsync.errors.TooLargeError` naming the largest N that fits and the methods
    that reach further when it will not fit (mirror-symmetric chains, defaults: 0.11 GB at
    N = 9, 0.56 GB at N = 12, 1.9 GB at N = 13, 7.1 GB at N = 14).

Orderings of the full 4^N Liouvillian (:func:`liouvillian`)
    ``"interleaved"``: per site ``s_a = 2 i_a + j_a`` (ket i, bra j, 0 = down),
    total index ``sum_a s_a 4**(N-1-a)`` (site 0 most significant): the MPO order.
    ``"ket_bra"``: row-major vec of the 2^N x 2^N matrix, index ``i 2^N + j`` with
    site 0 the most significant bit of i and j (QuTiP stacks columns instead:
    its index is ``j 2^N + i``).
"""

from __future__ import annotations

import copy
import hashlib
import threading
import time
import warnings
from math import comb

import numpy as np
from scipy import sparse
from scipy.linalg import schur
from scipy.linalg.lapack import ztrsyl as trsyl
from scipy.sparse import linalg as spla

from ...errors import (ConvergenceWarning, InvalidOptionError, InvalidSystemError, NotApplicableError,
                      TooLargeError, check_memory, fits_in_memory, format_bytes)
from ...result import Moments, SteadyState, TimeSeries
from ...states import check_times, has_coherences, product_state
from ..krylov import expm_krylov, expm_krylov_series
from .sector_basis import (SectorBasis, assemble, nnz_estimate_full, nnz_estimate_sector, popcount,
                      site_bit, spread_bits)

__all__ = ["liouvillian", "sector_liouvillian", "steady_state", "evolve", "density_matrix",
           "correlation_function", "two_time", "sector_moments", "full_moments", "estimate_memory",
           "default_restart", "resolve_krylov", "steady_state_memory", "evolve_memory", "SectorOperator",
           "clear_operator_cache"]

METHOD = "exact"

def _alternatives(system, entry="steady_state"):
    """The methods that accept ``system`` instead (from :mod:`.applicability`)."""
    from ..applicability import alternatives

    return alternatives(system, exclude=("exact",), entry=entry)

#: sector size up to which ``solver="auto"`` factorises directly (N <= 5); the
#: preconditioned GMRES is faster from N = 6 on (N = 8: 0.12 s against 415 s for LU)
DIRECT_MAX_SECTOR = 300
#: above this bound (Frobenius) of the condition number of the eigenvectors of K_k,
#: D^{-1} uses the Schur form
EIG_COND_MAX = 1e6
_COMPLEX = 16
_INDEX = 8


# ---------------------------------------------------------------------- memory
def default_restart(n: int) -> int:
    """GMRES restart length of ``steady_state(restart=None)``: 40 up to N = 13, 20 beyond.

    The iteration count hardly depends on it (N = 11: 43, 45, 47, 52 iterations at restart
    40, 30, 20, 10; N = 12: 47 and 51 at 40 and 20), while the Krylov basis is most of the
    memory: at N = 14 a reduced vector is 0.32 GB, so 20 instead of 40 saves 6.4 GB.
    """
    return 40 if n <= 13 else 20


def _mirror_size(n: int) -> int:
    """Unknowns of the mirror-reduced balanced sector: sum_k m_e^2 + m_o^2, with
    m_e = (m + p) / 2, m_o = (m - p) / 2 and p the palindromes among the C(N, k) configurations."""
    tot = 0
    for k in range(n + 1):
        m = comb(n, k)
        if n % 2 == 0:
            p = comb(n // 2, k // 2) if k % 2 == 0 else 0
        else:
            p = comb((n - 1) // 2, k // 2)
        tot += ((m + p) // 2) ** 2 + ((m - p) // 2) ** 2
    return tot


#: resident memory of the interpreter with numpy, scipy and mpsync imported (measured 83 MB)
_BASE_BYTES = 85e6
#: vectors of the iterative solve beside the Krylov basis (GMRES's own x, r, w, the matvec's
#: temporaries, the blocks of the largest excitation number, and the Sylvester factors V, V^-1,
#: the denominators and K_k, each as large as a vector); fitted to the peak RSS at N = 9-12
_EXTRA_VECTORS = {True: 19, False: 16}
#: all the vectors of a BiCGStab solve (its r, r~, p, v, s, t, x, the matvec's temporaries and
#: the factors; no basis), fitted to the peak RSS at N = 9-12 with the mirror reduction
BICGSTAB_VECTORS = {True: 22, False: 19}
#: vectors of evolve(operator="free") beside its Krylov basis, of the (reduced) sector, and
#: full-sector vectors (the operator's index tables, ket/bra, the expansion for the moments);
#: fitted to the growth of the peak RSS over the interpreter's at N = 9-11, mirror and not
#: (benchmarks/RESULTS.md, issue 21)
FREE_EVOLVE_VECTORS = 1
FREE_EVOLVE_FULL_VECTORS = 5
#: from this N on ``evolve(operator="auto")`` applies the sector Liouvillian matrix-free: the
#: Krylov exponential beats expm_multiply on the stored matrix 3x at N = 8 and 5-13x at N = 10
#: (t = 1 and 10; benchmarks/RESULTS.md, issue 21); below it the matrix is the faster
FREE_EVOLVE_FROM_N = 8
KRYLOV = ("auto", "gmres", "bicgstab")
#: from this N on ``krylov="auto"`` runs BiCGStab: at N = 12 40 s and 0.55 GB against GMRES(40)'s
#: 44 s and 1.35 GB (benchmarks/RESULTS.md, "N = 13 and 14")
BICGSTAB_FROM_N = 12


def resolve_krylov(krylov: str, n: int) -> str:
    """The Krylov method that ``krylov`` names at N (``"auto"``: BiCGStab from :data:`BICGSTAB_FROM_N`)."""
    if krylov not in KRYLOV:
        raise InvalidOptionError(f"krylov must be 'auto', 'gmres' or 'bicgstab', got {krylov!r}")
    if krylov == "auto":
        return "bicgstab" if n >= BICGSTAB_FROM_N else "gmres"
    return krylov


def estimate_memory(n: int, kind: str = "sector", solver: str = "iterative", restart: int | None = None,
                    mirror: bool = False, krylov: str = "auto") -> float:
    """Estimated peak bytes (resident, the whole process) of the exact solver.

    Parameters
    ----------
    n : int
        Number of dipoles.
    kind : {"sector", "full", "sector_matrix", "sector_free"}
        ``"sector"``: steady state in the balanced sector; ``"full"``: the 4^N
        Liouvillian; ``"sector_matrix"``: the sparse sector Liouvillian (``evolve``);
        ``"sector_free"``: ``evolve(operator="free")`` (``restart`` is its Krylov dimension).
    solver : {"direct", "iterative"}
        For ``kind="sector"``.
    restart : int, optional
        GMRES restart length (Krylov vectors kept); default :func:`default_restart`.
    mirror : bool
        Iterative sector solve with the mirror reduction (half the unknowns).
    krylov : {"auto", "gmres", "bicgstab"}
        The Krylov method (:func:`resolve_krylov`): GMRES keeps ``restart`` + 1 basis
        vectors, BiCGStab none.

    Notes
    -----
    The iterative solve stores no jump matrix (they are applied from index tables), so its
    peak is ``(restart + 19)`` vectors of the reduced sector with GMRES (``restart + 16`` of
    the whole sector without ``mirror``), 22 (19) with BiCGStab, plus the interpreter:
    within 6 % of the measured peak RSS at N = 9-14 (benchmarks/RESULTS.md, "N = 13 and 14").
    With the mirror reduction: GMRES 5.0 GB at N = 13 and 12.6 GB at N = 14 (restart 20),
    BiCGStab 1.9 GB and 7.1 GB.
    """
    entry = _COMPLEX + 2 * _INDEX  # COO triplets before conversion dominate the peak
    if kind == "full":
        return 2.5 * entry * nnz_estimate_full(n) + 8 * _COMPLEX * 4 ** n
    size = comb(2 * n, n)
    if kind == "sector_matrix":
        return 2.5 * entry * nnz_estimate_sector(n) + 8 * _COMPLEX * size
    if kind == "sector_free":
        # evolve's matrix-free Krylov exponential: its basis of restart + 1 vectors and
        # FREE_EVOLVE_VECTORS more of the (reduced) sector, FREE_EVOLVE_FULL_VECTORS of the full one
        m = 30 if restart is None else int(restart)
        reduced = _mirror_size(n) if mirror else size
        return (_BASE_BYTES + (m + 1 + FREE_EVOLVE_VECTORS) * _COMPLEX * reduced
                + FREE_EVOLVE_FULL_VECTORS * _COMPLEX * size)
    if solver == "direct":
        # LU fill-in measured on dipolar chains: 6.1e5, 9.5e6, 1.4e8 nonzeros at N = 6, 7, 8
        lu_nnz = 6.1e5 * (size / 924.0) ** 2.05
        return 2.5 * entry * nnz_estimate_sector(n) + (_COMPLEX + _INDEX) * 1.5 * lu_nnz
    krylov = resolve_krylov(krylov, n)
    if krylov == "bicgstab":
        vectors = BICGSTAB_VECTORS[bool(mirror)]
    else:
        vectors = (default_restart(n) if restart is None else int(restart)) + _EXTRA_VECTORS[bool(mirror)]
    if mirror:
        size = _mirror_size(n)
    return _BASE_BYTES + vectors * _COMPLEX * size


def _plan(system, solver="auto", restart=None, symmetry="auto", krylov="auto"):
    """What a steady-state solve of ``system`` will run: (solver, restart, mirror, krylov).

    The one place that resolves the defaults, so the memory estimate made before a solve
    (here and in :mod:`mpsync.solvers.applicability`) is the one of the solve that runs.
    """
    n = system.n
    restart = default_restart(n) if restart is None else int(restart)
    if solver == "auto":
        solver = "direct" if comb(2 * n, n) <= DIRECT_MAX_SECTOR else "iterative"
    if solver not in ("direct", "iterative"):
        raise InvalidOptionError(f"unknown solver {solver!r}; use 'auto', 'direct' or 'iterative'")
    if symmetry not in ("auto", "mirror", "none"):
        raise InvalidOptionError(f"symmetry must be 'auto', 'mirror' or 'none', got {symmetry!r}")
    from .mirror import is_mirror_symmetric

    symmetric = is_mirror_symmetric(system)
    if symmetry == "mirror" and not symmetric:
        raise InvalidOptionError("symmetry='mirror' needs f, g and delta invariant under site a -> "
                                 "N - 1 - a, and this system's are not; use symmetry='auto' or 'none'")
    mirror = symmetry != "none" and symmetric and solver == "iterative" and system.W > 0 and n > 1
    return solver, restart, mirror, resolve_krylov(krylov, n)


def steady_state_memory(system, solver="auto", restart=None, symmetry="auto", krylov="auto") -> float:
    """Estimated peak bytes of :func:`steady_state` on ``system`` with these options
    (:func:`estimate_memory` for the solver, restart, mirror reduction and Krylov method
    that the solve will use)."""
    solver, restart, mirror, krylov = _plan(system, solver, restart, symmetry, krylov)
    return estimate_memory(system.n, "sector", solver, restart, mirror, krylov)


def _evolve_plan(system, initial="down", space="auto", operator="auto"):
    """Resolve :func:`evolve`'s defaults: (product states, space, operator, mirror, memory kind).

    Bad values raise here, before any heavy work."""
    if space not in ("auto", "sector", "full"):
        raise InvalidOptionError(f"space must be 'auto', 'sector' or 'full', got {space!r}")
    if operator not in ("auto", "matrix", "free"):
        raise InvalidOptionError(f"operator must be 'auto', 'matrix' or 'free', got {operator!r}")
    n = system.n
    states = product_state(initial, n)
    coh = has_coherences(states)
    if space == "auto":
        space = "full" if coh else "sector"
    if space == "sector" and coh:
        raise NotApplicableError("the initial state has coherences; use space='full' in method='exact'")
    if space == "full":
        if operator == "free":
            raise InvalidOptionError("operator='free' works in the balanced sector (an initial state without "
                                     "coherences, space='sector'); use operator='matrix' in the full space")
        return states, space, "matrix", False, "full"
    if operator == "auto":
        operator = ("matrix" if n < FREE_EVOLVE_FROM_N and fits_in_memory(estimate_memory(n, "sector_matrix"))
                    else "free")
    mirror = False
    if operator == "free":
        from .mirror import is_mirror_symmetric

        mirror = n > 1 and is_mirror_symmetric(system) and all(
            np.array_equal(states[a], states[n - 1 - a]) for a in range(n))
    return states, space, operator, mirror, "sector_free" if operator == "free" else "sector_matrix"


def evolve_memory(system, initial="down", space="auto", operator="auto", krylov_dim=30) -> float:
    """Estimated peak bytes of :func:`evolve` on ``system`` with these options (the space,
    operator and mirror reduction that the evolution will use, :func:`estimate_memory`)."""
    *_, mirror, kind = _evolve_plan(system, initial, space, operator)
    return estimate_memory(system.n, kind, restart=int(krylov_dim), mirror=mirror)


def _check(system, kind="sector", solver="iterative", restart=None, mirror=False, krylov="auto"):
    """The memory check before any allocation; a refusal names the largest N that fits."""
    system.check_lindblad("method='exact'")
    nbytes = estimate_memory(system.n, kind, solver, restart, mirror, krylov)
    try:
        what = f"{kind}, {solver}" if kind == "sector" else kind
        check_memory(nbytes, f"N={system.n} in the exact solver ({what})",
                     _alternatives(system, "evolve" if kind != "sector" else "steady_state"))
    except TooLargeError as err:
        largest = next((m for m in range(system.n - 1, 0, -1)
                        if fits_in_memory(estimate_memory(m, kind, solver, restart, mirror, krylov))), 0)
        fit = (f"the largest N that fits here is {largest}" if largest
               else "no N fits here")
        raise TooLargeError(f"{err} ({fit} in the exact solver, {what})") from None
    return nbytes


# ---------------------------------------------------------------------- Liouvillians
def liouvillian(system, ordering: str = "interleaved"):
    """The full 4^N x 4^N Liouvillian as a sparse CSR matrix.

    Parameters
    ----------
    system : DipoleSystem
    ordering : {"interleaved", "ket_bra"}
        ``"interleaved"``: per-site index ``s_a = 2 i_a + j_a`` (ket i, bra j,
        0 = down, 1 = up), total index ``sum_a s_a 4**(N-1-a)`` (site 0 most
        significant). ``"ket_bra"``: row-major vec of rho, index ``i * 2**N + j``
        with site 0 the most significant bit of i and j.

    Returns
    -------
    scipy.sparse.csr_matrix, complex, shape (4^N, 4^N)
        d vec(rho)/dt = L vec(rho); units of Gamma.

    Examples
    --------
    >>> from mpsync import DipoleSystem
    >>> L = liouvillian(DipoleSystem.chain(3, 0.1, "magic", W=2.0))
    >>> L.shape
    (64, 64)
    """
    if ordering not in ("interleaved", "ket_bra"):
        raise ValueError(f"unknown ordering {ordering!r}; use 'interleaved' or 'ket_bra'")
    _check(system, "full")
    n = system.n
    dim = 2 ** n
    ket = np.repeat(np.arange(dim, dtype=np.int64), dim)
    bra = np.tile(np.arange(dim, dtype=np.int64), dim)
    if ordering == "ket_bra":
        index = lambda k, b: k * dim + b  # noqa: E731
        return assemble(system, ket, bra, index)
    index = lambda k, b: 2 * spread_bits(k, n) + spread_bits(b, n)  # noqa: E731
    mat = assemble(system, ket, bra, index).tocoo()
    perm = index(ket, bra)  # column c of the ket_bra order is this interleaved index
    return sparse.csr_matrix((mat.data, (mat.row, perm[mat.col])), shape=mat.shape)


def sector_liouvillian(system, basis: SectorBasis | None = None):
    """The Liouvillian restricted to the balanced sector n_ket = n_bra.

    Returns
    -------
    L : scipy.sparse.csr_matrix, shape (C(2N,N), C(2N,N))
    basis : SectorBasis
        Its ordering (blocks k = 0..N, each row-major over ket, bra configurations).
    """
    basis = basis or SectorBasis(system.n)
    ket, bra = basis.ket_bra()
    return assemble(system, ket, bra, basis.index), basis


class SectorOperator:
    """The sector Liouvillian in block form: D (Sylvester, per k) plus jumps J.

    ``D X_k = K_k X_k + X_k K_k^+`` with ``K_k = -i H_eff`` on k excitations;
    ``J`` holds the cross channels, decay and pump: with ``jumps="free"`` (default)
    applied from index tables and one small sparse matrix per site and block
    (:meth:`_free_tables`), with ``jumps="stored"`` as assembled sparse matrices
    (20 bytes a nonzero: 1.1 GB at N = 12, 23 GB at N = 14 with ``mirror``).
    ``solve_D`` inverts D blockwise through the eigen-decomposition of each K_k.

    With ``mirror=True`` (a mirror-symmetric system, :mod:`.mirror`) the operator
    acts on mirror-invariant states in the parity-adapted basis: vectors are
    reduced (:meth:`reduce`, :meth:`expand` convert), about half as long, and
    each Sylvester solve runs on two half-size blocks.
    """

    def __init__(self, system, basis: SectorBasis | None = None, factorize: bool = True,
                 mirror: bool = False, jumps: str = "free"):
        if jumps not in ("free", "stored"):
            raise InvalidOptionError(f"jumps must be 'free' or 'stored', got {jumps!r}")
        self.system = system
        n = system.n
        self.basis = basis = basis or SectorBasis(n)
        self.parity = None
        self.jumps = jumps
        if mirror:
            from .mirror import ParityBlock

            self.parity = [ParityBlock(basis.configs[k], basis.rank, n) for k in range(n + 1)]
            sizes = [p.size for p in self.parity]
        else:
            sizes = [int(m) ** 2 for m in basis.m]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        # W enters only as a factor of the pump jumps and a shift -W (N - k)/2 of K_k, so
        # everything is built at W = 0 (pump jumps at unit rate) and moved to W by
        # _set_pump: a fresh operator and one moved there by with_pump are the same bits
        # lower[k] maps X_{k+1} -> k (decay, cross channels), raise_[k] maps X_{k-1} -> k
        # (pump, W = 1); "stored": sparse matrices assembled block by block; "free": applied
        # without being stored (:meth:`_free_tables`, a few index tables per block)
        if jumps == "stored":
            unit_pump = system.replace(W=1.0)
            self.lower, self.raise_ = [], []
            for k in range(n + 1):
                self.lower.append(self._jump_block(system, k, k + 1, dict(parts=("local", "cross"),
                                                                          local_jumps="lower"))
                                  if k < n else None)
                self.raise_.append(self._jump_block(unit_pump, k, k - 1, dict(parts=("local",),
                                                                              local_jumps="raise"))
                                   if k > 0 else None)
            self.nnz_jumps = sum(int(m.nnz) for m in self.lower + self.raise_ if m is not None)
        else:
            self.lower = [self._free_tables("lower", k) if k < n else None for k in range(n + 1)]
            self.raise_ = [self._free_tables("raise", k) if k > 0 else None for k in range(n + 1)]
            # the stored entries of the tables (sparse F_a, index arrays)
            self.nnz_jumps = sum(sum(int(F.nnz) for _, _, F in t) for t in self.lower if t is not None)
            self.nnz_jumps += sum(sum(int(F.nnz) for _, _, F in t) for t in self.raise_ if t is not None)
        self._K0 = [self._ket_generator(k, W=0.0) for k in range(n + 1)]
        self.cond = 1.0
        self.mirror_leak = 0.0
        if self.parity is not None:
            # K_k = U (K_e + K_o) U^T: the even-odd part vanishes for a mirror-symmetric system
            self._K0_parity = []
            for p, K in zip(self.parity, self._K0):
                Ke, Ko, leak = p.parity_blocks(K)
                self.mirror_leak = max(self.mirror_leak, leak)
                self._K0_parity.append((Ke, Ko))
            self._K0 = None  # only the parity blocks are used from here on
        self._factors0 = []
        for k in range(n + 1) if factorize else []:
            if self.parity is None:
                self._factors0.append(self._factor(self._K0[k]))
            else:
                self._factors0.append(tuple(self._factor(K) for K in self._K0_parity[k]))
        self._set_pump(system.W)

    def _set_pump(self, W):
        """K_k, its factors and the pump's rate at pump rate W, from the W = 0 parts."""
        n = self.system.n
        # K_k = K0_k + shift_k (a multiple of the identity)
        self._shifts = shifts = [-0.5 * W * (n - k) for k in range(n + 1)]
        self._raise_scale = float(W)
        self.factors = [tuple(_shift_factor(f, c) for f in fs) if self.parity is not None
                        else _shift_factor(fs, c) for fs, c in zip(self._factors0, shifts)]

    def with_pump(self, W: float) -> "SectorOperator":
        """The operator of the same system at pump rate W, sharing the pump-independent work.

        W enters in two places only: the pump jumps (proportional to W) and
        K_k = -i H_eff, whose diagonal carries -W (N - k)/2. A scalar shift keeps
        the eigenvectors and the Schur vectors of K_k, so only the eigenvalues
        move: no new assembly, no new decomposition. The result has the same bits
        as ``SectorOperator`` built for that W.
        """
        new = copy.copy(self)
        new.system = self.system.replace(W=float(W))
        new._set_pump(float(W))
        return new

    def _jump_block(self, system, k, src, terms):
        """Sparse jump map from block ``src`` into block k (with ``mirror``: between half layouts)."""
        basis, rank = self.basis, self.basis.rank
        kt, br = self._block_ket_bra(src)
        if self.parity is None:
            def index_k(ket, bra):
                return rank[ket] * basis.m[k] + rank[bra]
            return assemble(system, kt, br, index_k, diagonal=False,
                            shape=(int(basis.m[k]) ** 2, len(kt)), **terms)
        p, q = self.parity[k], self.parity[src]
        # rows: only kets that represent their mirror pair (the rest follow by symmetry, a
        # negative index drops the entry); columns: an entry and its mirror image are equal
        # in an invariant input, so they add up
        offset = np.zeros_like(rank)
        offset[basis.configs[k]] = p.row_offsets()
        return assemble(system, kt, br, lambda ket, bra: offset[ket] + rank[bra],
                        diagonal=False, shape=(p.me * p.m, q.me * q.m),
                        columns=q.fold_index(rank[kt], rank[br]), **terms)

    def _factor(self, K):
        """D^{-1} for one block, cheapest stable form first.

        A normal K (e.g. g = 0 and uniform delta, with degenerate eigenvalues) has a
        diagonal Schur form with unitary Q; otherwise eigenvectors when well
        conditioned (gemms only); otherwise Bartels-Stewart with the Schur form
        (LAPACK trsyl), robust for near-defective K.
        """
        if K.shape[0] == 0:
            return ("eig", K, K, K)
        Kh = K.conj().T
        if np.linalg.norm(K @ Kh - Kh @ K) <= 1e-13 * np.linalg.norm(K) ** 2:
            T, Q = schur(K, output="complex")
            lam = np.diag(T).copy()
            return ("eig", Q, Q.conj().T, lam[:, None] + lam.conj()[None, :])
        lam, V = np.linalg.eig(K)
        Vinv = np.linalg.inv(V)
        # Frobenius-norm bound of the 2-norm condition number (no SVD needed)
        cond = float(np.linalg.norm(V) * np.linalg.norm(Vinv))
        self.cond = max(self.cond, cond if np.isfinite(cond) else np.inf)
        if np.isfinite(cond) and cond < EIG_COND_MAX:
            return ("eig", V, Vinv, lam[:, None] + lam.conj()[None, :])
        T, Q = schur(K, output="complex")
        return ("schur", Q, T, None)

    def _block_ket_bra(self, k):
        c = self.basis.configs[k]
        return np.repeat(c, len(c)), np.tile(c, len(c))

    def _ket_generator(self, k, W):
        s = self.system
        n = s.n
        c = self.basis.configs[k]
        rank = self.basis.rank
        m = len(c)
        bits = np.array([(c >> (n - 1 - a)) & 1 for a in range(n)])  # (n, m)
        z = 2 * bits - 1
        diag = (-0.5j * (s.delta @ z) - 0.5 * (np.diag(s.f) @ bits) - 0.5 * W * (n - k))
        K = np.diag(diag.astype(complex))
        ket_coef = -0.5j * s.g - 0.5 * s.f
        for a in range(n):
            for b in range(n):
                if a == b or ket_coef[a, b] == 0:
                    continue
                sel = np.flatnonzero((bits[a] == 0) & (bits[b] == 1))
                tgt = rank[c[sel] ^ (site_bit(n, a) | site_bit(n, b))]
                K[tgt, sel] += ket_coef[a, b]
        return K

    # -- the operator's own vector layout (the sector basis, or its mirror reduction)
    @property
    def size(self):
        return int(self.offsets[-1])

    def blocks(self, vec):
        """Per-k views: (m x m) blocks, or reduced block vectors with ``mirror``."""
        if self.parity is None:
            return self.basis.blocks(vec)
        return [vec[self.offsets[k]:self.offsets[k + 1]] for k in range(len(self.parity))]

    def reduce(self, sector_vec):
        """Sector vector -> this operator's layout (with ``mirror``: its mirror-invariant part)."""
        if self.parity is None:
            return sector_vec
        out = np.empty(self.size, dtype=complex)
        for p, X, Y in zip(self.parity, self.basis.blocks(sector_vec), self.blocks(out)):
            p.from_full(X, out=Y)
        return out

    def expand(self, vec):
        """This operator's layout -> sector vector."""
        if self.parity is None:
            return vec
        out = np.empty(self.basis.size, dtype=complex)
        for p, v, X in zip(self.parity, self.blocks(vec), self.basis.blocks(out)):
            X[...] = p.to_full(v)
        return out

    def _sites(self):
        """(site a, weight) of the jump sums: every site, or with ``mirror`` one site of each
        mirror pair with weight 2 (its image adds the mirror image of its term, and both
        reduce to the same invariant part) and the middle site of an odd chain with weight 1."""
        n = self.system.n
        if self.parity is None:
            return [(a, 1.0) for a in range(n)]
        return [(a, 2.0 if a < n - 1 - a else 1.0) for a in range(n) if a <= n - 1 - a]

    def _free_tables(self, kind, k):
        """Index tables of the jumps into block k, applied without a stored matrix.

        ``"lower"`` (from k + 1): Y[i, j] = sum_ab f_ab [i_b = 0][j_a = 0] X[i + e_b, j + e_a];
        per site a the columns j with j_a = 0, their images j + e_a in block k + 1 and the
        sparse real (m_k x m_{k+1}) F_a[i, i + e_b] = w_a f_ab, so that the term of a is
        F_a @ X[:, j + e_a] (the same multiply-adds as the stored matrix, in the sparse times
        dense-block kernel). ``"raise"`` (from k - 1, unit rate):
        Y[i, j] = sum_a [i_a = 1][j_a = 1] X[i - e_a, j - e_a]; per site a the configurations
        with a occupied and their images without it.
        """
        n = self.system.n
        basis = self.basis
        c, rank = basis.configs[k], basis.rank
        f = np.asarray(self.system.f, dtype=float)
        out = []
        if kind == "lower":
            m = len(c)
            up = [(np.flatnonzero((c & site_bit(n, b)) == 0), b) for b in range(n)]
            for a, w in self._sites():
                bit = site_bit(n, a)
                cols = np.flatnonzero((c & bit) == 0)
                src = rank[c[cols] | bit]
                rows, tgt, vals = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
                for r, b in up:
                    if f[a, b] != 0:
                        rows.append(r)
                        tgt.append(rank[c[r] | site_bit(n, b)])
                        vals.append(np.full(len(r), w * f[a, b]))
                rows, tgt, vals = (np.concatenate(x) for x in (rows, tgt, vals))
                F = sparse.csr_matrix((vals, (rows.astype(np.int32), tgt.astype(np.int32))),
                                      shape=(m, int(basis.m[k + 1])))
                F.sum_duplicates()
                out.append((cols, src, F))
        else:
            # the same form: columns j with j_a = 1, their images j - e_a, and the selection
            # F_a[i, i - e_a] = w_a (rows with i_a = 1)
            for a, w in self._sites():
                bit = site_bit(n, a)
                occ = np.flatnonzero((c & bit) != 0)
                dn = rank[c[occ] ^ bit]
                F = sparse.csr_matrix((np.full(len(occ), w), (occ.astype(np.int32), dn.astype(np.int32))),
                                      shape=(len(c), int(basis.m[k - 1])))
                out.append((occ, dn, F))
        return out

    def _jump(self, J, k, src, x):
        """The jump block J (from block ``src`` into block k) applied to block x of ``src``."""
        if self.jumps == "free":
            return self._jump_free(J, k, src, x)
        if self.parity is None:
            m = int(self.basis.m[k])
            return (J @ x.ravel()).reshape(m, m)
        y = J @ self.parity[src].to_rep_rows(x).ravel()
        return self.parity[k].from_rep_rows(y.reshape(self.parity[k].me, -1))

    def _jump_free(self, tables, k, src, x):
        """Y = sum_a F_a X S_a (:meth:`_free_tables`): per site a, the columns of X that a's
        jump reaches, F_a applied to them (real sparse times the (re, im) pairs) and added to
        the columns they land in, accumulated in Y^T (rows: contiguous)."""
        m = int(self.basis.m[k])
        if self.parity is None:
            X = x.reshape(int(self.basis.m[src]), -1)
        else:
            X = self.parity[src].to_full(x)
        YT = np.zeros((m, m), dtype=complex)
        for cols, srcs, F in tables:
            G = X.take(srcs, axis=1)  # C-ordered; X[:, srcs] is F-ordered and needed a copy (6-16x slower)
            YT[cols] += (F @ G.view(np.float64)).view(np.complex128).T
        if self.parity is None:
            return YT.T
        # the reduced vector of Y^T holds A^T and B^T (U^T Y^T U = (U^T Y U)^T): rows stay contiguous
        out = self.parity[k].from_full(YT)
        for part in self.parity[k].split(out):
            part[...] = part.T.copy()
        return out

    def apply_D(self, vec):
        """D vec, blockwise: K_k X + X K_k^+ = K0_k X + X K0_k^+ + 2 shift_k X."""
        out = np.empty_like(vec)
        for k, (X, Y) in enumerate(zip(self.blocks(vec), self.blocks(out))):
            c = self._shifts[k]
            if self.parity is None:
                Y[...] = self._K0[k] @ X + X @ self._K0[k].conj().T + 2.0 * c * X
            else:
                for K, x, y in zip(self._K0_parity[k], self.parity[k].split(X), self.parity[k].split(Y)):
                    y[...] = K @ x + x @ K.conj().T + 2.0 * c * x
        return out

    def _solve_block(self, k, Y, X):
        if self.parity is None:
            _sylvester(self.factors[k], Y, X)
        else:
            p = self.parity[k]
            for f, y, x in zip(self.factors[k], p.split(Y), p.split(X)):
                _sylvester(f, y, x)

    def solve_D(self, vec):
        """D^{-1} vec, blockwise: X = V [(V^-1 Y V^-+) / (l_i + l_j^*)] V^+ (or via Schur)."""
        out = np.empty_like(vec)
        for k, (Y, X) in enumerate(zip(self.blocks(vec), self.blocks(out))):
            self._solve_block(k, Y, X)
        return out

    def solve_M(self, vec, upward: bool = False):
        """Block Gauss-Seidel: (D + J_lower)^{-1} vec by a sweep from k = N down to 0, or
        with ``upward`` (D + J_raise)^{-1} vec by a sweep from k = 0 up to N."""
        out = np.empty_like(vec)
        Ys, Xs = self.blocks(vec), self.blocks(out)
        n = self.system.n
        for k in (range(n + 1) if upward else range(n, -1, -1)):
            src = k - 1 if upward else k + 1  # the block solved just before, which feeds k
            Y = Ys[k]
            if 0 <= src <= n:
                if upward:
                    Y = Y - self._raise_scale * self._jump(self.raise_[k], k, src, Xs[src])
                else:
                    Y = Y - self._jump(self.lower[k], k, src, Xs[src])
            self._solve_block(k, Y, Xs[k])
        return out

    def _add_neighbours(self, ops, step, vec, out):
        """out_k += ops[k] vec_{k + step} for every excitation block k that has an operator."""
        xs, ys = self.blocks(vec), self.blocks(out)
        for k, Y in enumerate(ys):
            if ops[k] is not None:
                Y += self._jump(ops[k], k, k + step, xs[k + step])
        return out

    def apply_lower(self, vec):
        """The lowering part of J (decay, cross channels: from block k + 1 into block k)."""
        return self._add_neighbours(self.lower, 1, vec, np.zeros_like(vec))

    def apply_jumps(self, vec):
        """J vec (decay, pump and cross channels)."""
        return self.apply_lower(vec) + self.apply_raise(vec)

    def apply_raise(self, vec):
        """The raising part of J applied to vec (from block k - 1 into block k)."""
        out = self._add_neighbours(self.raise_, -1, vec, np.zeros_like(vec))
        out *= self._raise_scale
        return out

    def apply(self, vec):
        """L vec."""
        return self.apply_D(vec) + self.apply_jumps(vec)

    def trace_weights(self):
        """w with w @ vec = tr(rho) (the identity in this layout)."""
        w = np.zeros(self.size)
        for k, v in enumerate(self.blocks(w)):
            if self.parity is None:
                v.reshape(int(self.basis.m[k]), -1)[np.diag_indices(int(self.basis.m[k]))] = 1.0
            else:
                for part in self.parity[k].split(v):
                    part[np.diag_indices(part.shape[0])] = 1.0
        return w

    def trace(self, vec):
        return self.trace_weights() @ vec


def _shift_factor(factor, c):
    """The factor of K + c (c real): eigenvalues, or the Schur form's diagonal, move by c."""
    kind, A, B, den = factor
    if c == 0 or A.shape[0] == 0:
        return factor
    if kind == "eig":
        return (kind, A, B, den + 2.0 * c)
    return (kind, A, B + c * np.eye(len(B)), den)


def _sylvester(factor, Y, X):
    """Solve K X + X K^+ = Y for X in place, with a factor of K from :meth:`SectorOperator._factor`."""
    kind, A, B, den = factor
    if A.shape[0] == 0:
        return
    if kind == "eig":
        X[...] = A @ ((B @ Y @ B.conj().T) / den) @ A.conj().T
    else:
        # K = Q T Q^+: solve T Z + Z T^+ = Q^+ Y Q, X = Q Z Q^+
        Z, scale, info = trsyl(B, B, A.conj().T @ Y @ A, trana="N", tranb="C", isgn=1)
        if info < 0:
            raise RuntimeError(f"trsyl failed (info={info})")
        X[...] = A @ (Z / scale) @ A.conj().T


# ---------------------------------------------------------------------- moments
def _hop_tables(n, configs, rank):
    """For configurations ``configs`` (one popcount): rank of c + e_a - e_b and validity."""
    bits = np.array([site_bit(n, a) for a in range(n)], dtype=np.int64)
    occ = (configs[:, None] & bits[None, :]) != 0  # (m, n)
    valid = (~occ[:, :, None]) & occ[:, None, :]  # a empty, b occupied
    hop = configs[:, None, None] ^ (bits[:, None] | bits[None, :])[None]
    tgt = np.where(valid, rank[np.where(valid, hop, 0)], 0)
    return valid, tgt


def sector_moments(basis: SectorBasis, vec) -> Moments:
    """Moments sz, C_ab = <s+_a s-_b>, zz of a balanced-sector state (vectorised).

    ``vec`` need not be normalised; the trace is divided out.
    """
    if basis.shift != 0:
        raise ValueError("sector_moments needs the balanced sector (shift 0)")
    n = basis.n
    blocks = basis.blocks(vec)
    tr = sum(np.trace(X) for X in blocks)
    p = np.zeros(2 ** n)
    corr = np.zeros((n, n), dtype=complex)
    for k, (c, X) in enumerate(zip(basis.configs, blocks)):
        p[c] = np.real(np.diag(X)) / np.real(tr)
        if 0 < k < n:  # hopping needs an empty and an occupied site
            valid, tgt = _hop_tables(n, c, basis.rank)
            rows = np.arange(len(c))[:, None, None]
            corr += np.sum(np.where(valid, X[rows, tgt], 0), axis=0)
    corr /= tr
    allc = np.arange(2 ** n)
    Z = np.array([2 * ((allc >> (n - 1 - a)) & 1) - 1 for a in range(n)], dtype=float).T
    sz = Z.T @ p
    zz = Z.T @ (p[:, None] * Z)
    np.fill_diagonal(corr, (1 + sz) / 2)
    np.fill_diagonal(zz, 1.0)
    return Moments(sz, corr, zz)


def full_moments(rho) -> Moments:
    """All moments (including sm, zsm, smsm) of a dense 2^N x 2^N density matrix."""
    rho = np.asarray(rho)
    dim = rho.shape[0]
    n = int(round(np.log2(dim)))
    rho = rho / np.trace(rho)
    allc = np.arange(dim, dtype=np.int64)
    bits = np.array([site_bit(n, a) for a in range(n)], dtype=np.int64)
    occ = (allc[:, None] & bits[None, :]) != 0
    Z = 2.0 * occ - 1.0
    p = np.real(np.diag(rho))
    sz = Z.T @ p
    zz = Z.T @ (p[:, None] * Z)
    np.fill_diagonal(zz, 1.0)
    valid, _ = (~occ[:, :, None]) & occ[:, None, :], None
    hop = allc[:, None, None] ^ (bits[:, None] | bits[None, :])[None]
    rows = allc[:, None, None]
    corr = np.sum(np.where(valid, rho[rows, np.where(valid, hop, 0)], 0), axis=0)
    np.fill_diagonal(corr, (1 + sz) / 2)
    # <s-_a> = sum_{i: i_a = 1} rho[i, i - e_a]
    low = allc[:, None] ^ bits[None, :]
    sm = np.sum(np.where(occ, rho[allc[:, None], np.where(occ, low, 0)], 0), axis=0)
    # <sz_a s-_b> = sum_{i: i_b = 1} rho[i, i - e_b] z_a(i - e_b)
    term = np.where(occ, rho[allc[:, None], np.where(occ, low, 0)], 0)  # (dim, b)
    zlow = 2.0 * ((low[:, None, :] & bits[None, :, None]) != 0) - 1.0  # (dim, a, b)
    zsm = np.einsum("iab,ib->ab", zlow, term)
    # <s-_a s-_b> = sum_{i: i_a = i_b = 1} rho[i, i - e_a - e_b]
    both = occ[:, :, None] & occ[:, None, :]
    smsm = np.sum(np.where(both, rho[rows, np.where(both, hop, 0)], 0), axis=0)
    np.fill_diagonal(zsm, 0)
    np.fill_diagonal(smsm, 0)
    return Moments(sz, corr, zz, sm=sm, zsm=zsm, smsm=smsm)


def _sector_to_dense(basis: SectorBasis, vec):
    n = basis.n
    rho = np.zeros((2 ** n, 2 ** n), dtype=complex)
    for c, X in zip(basis.configs, basis.blocks(vec)):
        rho[np.ix_(c, c)] = X
    return rho


def density_matrix(obj, **options):
    """Dense 2^N x 2^N density matrix of the exact steady state (N <= 12).

    Parameters
    ----------
    obj : SteadyState or DipoleSystem
        A result of this solver (its ``extras["sector_vector"]`` is used) or a
        system, whose steady state is then computed with ``**options``.

    Returns
    -------
    (2^N, 2^N) complex ndarray, unit trace; basis of :mod:`mpsync.observables`
    (site 0 the most significant bit, 0 = down).
    """
    if not isinstance(obj, SteadyState):
        obj = steady_state(obj, **options)
    if "sector_vector" not in obj.extras:
        raise NotApplicableError("density_matrix needs a steady state of method='exact'")
    n = obj.n
    check_memory(2 * _COMPLEX * 4 ** n, f"the dense density matrix of N={n}", "the moments instead")
    basis = obj.extras.get("basis") or SectorBasis(n)
    rho = _sector_to_dense(basis, obj.extras["sector_vector"])
    return rho / np.trace(rho)


# ---------------------------------------------------------------------- steady state
def _solve_direct(system, basis):
    L, basis = sector_liouvillian(system, basis)
    size = L.shape[0]
    # replace the equation of <<0|L|rho>> (ground-state population) by the trace
    ket, bra = basis.ket_bra()
    trace_row = (ket == bra).astype(complex)
    A = L.tolil()
    r0 = 0
    A.rows[r0] = list(np.flatnonzero(trace_row))
    A.data[r0] = [1.0 + 0j] * len(A.rows[r0])
    A = A.tocsc()
    rhs = np.zeros(size, dtype=complex)
    rhs[r0] = 1.0
    lu = spla.splu(A, permc_spec="COLAMD")
    vec = lu.solve(rhs)
    info = {"nnz": int(L.nnz), "lu_nnz": int(lu.L.nnz + lu.U.nnz)}
    return vec, (lambda v: L @ v), info


#: the last iterative operator built in this process, kept for a solve that differs only in W
_LAST_OPERATOR = {"key": None, "op": None}
_OPERATOR_LOCK = threading.Lock()


def _operator_key(system, mirror):
    h = hashlib.blake2b(digest_size=16)
    for a in (system.f, system.g, system.delta):
        h.update(np.ascontiguousarray(a, dtype=float).tobytes())
    return (system.n, bool(mirror), h.hexdigest())


def clear_operator_cache():
    """Release the operator that ``steady_state(..., reuse=True)`` keeps for the next call."""
    with _OPERATOR_LOCK:
        _LAST_OPERATOR.update(key=None, op=None)


def _release_unless_reusable(system, mirror, reuse):
    """Free the kept operator before a memory check when this solve will not reuse it."""
    with _OPERATOR_LOCK:
        if not reuse or _LAST_OPERATOR["key"] != _operator_key(system, mirror):
            _LAST_OPERATOR.update(key=None, op=None)


def _sector_operator(system, basis, mirror, reuse):
    """(operator, reused): the kept operator moved to this W when only W differs, else a new one.

    :func:`_release_unless_reusable` has freed a kept operator that does not fit (before the
    memory check, so that it is not counted).
    """
    key = _operator_key(system, mirror) if reuse else None
    # a lock: Dask workers run tasks in threads of one process (they then share, and may
    # evict, the one kept operator; a wrong system's operator is never used)
    with _OPERATOR_LOCK:
        kept = _LAST_OPERATOR["op"] if reuse and _LAST_OPERATOR["key"] == key else None
    if kept is not None:
        return kept.with_pump(system.W), True
    op = SectorOperator(system, basis, mirror=mirror)
    if reuse:
        with _OPERATOR_LOCK:
            _LAST_OPERATOR.update(key=key, op=op)
    return op, False


def _solve_iterative(system, basis, tol, maxiter, restart, x0, progress, preconditioner, mirror,
                     reuse=False, krylov="gmres"):
    op, reused = _sector_operator(system, basis, mirror, reuse)
    size = op.size
    w = op.trace_weights()
    # v: any vector with <<1|v> != 0; the solution sigma then has <<1|sigma> = 1
    v = w / w.sum()
    # right preconditioning, rho = P sigma: L P = 1 + J P (Jacobi, P = D^-1), or
    # 1 + J_raise P (Gauss-Seidel down, P = (D + J_lower)^-1), or 1 + J_lower P (up,
    # P = (D + J_raise)^-1); the rank-one term removes the null space (<<1| L = 0 makes
    # the system nonsingular, see the module docstring)
    if preconditioner == "jacobi":
        P, rest = op.solve_D, op.apply_jumps
    elif preconditioner == "gauss-seidel-down":
        P, rest = op.solve_M, op.apply_raise
    else:
        def P(vec):
            return op.solve_M(vec, upward=True)
        rest = op.apply_lower

    def matvec(sig):
        sig = np.asarray(sig).ravel()
        return sig + rest(P(sig)) + v * (w @ sig)

    A = spla.LinearOperator((size, size), matvec=matvec, dtype=complex)
    if x0 is not None:
        x0 = op.reduce(np.asarray(x0, dtype=complex))
        # sigma = P^-1 rho: D rho (Jacobi), or L rho minus the part P leaves out (Gauss-Seidel)
        guess = op.apply_D(x0) if preconditioner == "jacobi" else op.apply(x0) - rest(x0)
        guess /= w @ guess
    else:
        guess = v.astype(complex)
    iters = [0]
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(desc=f"exact GMRES N={system.n}", unit="it")

    def cb(_res):
        iters[0] += 1
        if bar is not None:
            bar.update(1)
            if np.isscalar(_res):
                bar.set_postfix(res=f"{_res:.2e}")

    if krylov == "bicgstab":
        # two matvecs an iteration, ~10 vectors, no orthogonalisation (maxiter: iterations)
        sig, info = spla.bicgstab(A, v.astype(complex), x0=guess, rtol=tol, atol=0.0,
                                  maxiter=maxiter, callback=cb)
    else:
        sig, info = spla.gmres(A, v.astype(complex), x0=guess, rtol=tol, atol=0.0, restart=restart,
                               maxiter=maxiter, callback=cb, callback_type="pr_norm")
    if bar is not None:
        bar.close()
    vec = op.expand(P(sig))
    factors = [f for fs in op.factors for f in (fs if mirror else (fs,))]
    diag = {"nnz_jumps": op.nnz_jumps, "preconditioner": preconditioner, "iterations": iters[0],
            "krylov": krylov, "restart": int(restart) if krylov == "gmres" else None, "jumps": op.jumps,
            "matvecs": 2 * iters[0] if krylov == "bicgstab" else iters[0],
            "gmres_info": int(info), "mirror": bool(mirror), "reused_operator": reused,
            "eig_cond": float(op.cond), "schur_blocks": sum(f[0] == "schur" for f in factors)}
    if mirror:
        diag["mirror_leak"] = op.mirror_leak

    def apply_L(vec):
        # L of a sector vector (for a mirror-invariant one, through the reduced operator)
        return op.expand(op.apply(op.reduce(vec)))

    return vec, apply_L, diag


#: pump rate (units of gamma) above which ``preconditioner="gauss-seidel"`` sweeps upward: the
#: block Gauss-Seidel sweep keeps one of the two excitation-changing parts exactly, and
#: keeping the stronger one saves iterations (N = 10 chains and ensembles, tol 1e-9: down
#: 17-22 vs up 21-27 iterations for W <= Gamma, up 14-19 vs down 18-21 for W >= 5 Gamma)
UPWARD_SWEEP_FROM_W = 2.0

PRECONDITIONERS = ("gauss-seidel", "gauss-seidel-down", "gauss-seidel-up", "jacobi")


def _resolve_preconditioner(preconditioner, system):
    if preconditioner not in PRECONDITIONERS:
        raise InvalidOptionError(f"preconditioner must be one of {', '.join(map(repr, PRECONDITIONERS))}, "
                                 f"got {preconditioner!r}")
    if preconditioner == "gauss-seidel":
        up = system.W > UPWARD_SWEEP_FROM_W * system.gamma
        return "gauss-seidel-up" if up else "gauss-seidel-down"
    return preconditioner


def _start_vector(x0, n):
    """The sector vector of an ``x0`` option (None, a SteadyState of the exact solver, an array)."""
    if x0 is None:
        return None
    if hasattr(x0, "extras"):
        vec = x0.extras.get("sector_vector")
        if vec is None or x0.system.n != n:
            raise InvalidOptionError(f"x0 must be an exact steady state of {n} dipoles (method 'exact'), "
                                     f"got one of method {x0.method!r} with N = {x0.system.n}")
        return vec
    vec = np.asarray(x0, dtype=complex).ravel()
    if vec.size != comb(2 * n, n):
        raise InvalidOptionError(f"x0 must be a balanced-sector vector of length C(2N, N) = "
                                 f"{comb(2 * n, n)} for N = {n}, got length {vec.size}")
    return vec


def steady_state(system, solver: str = "auto", tol: float = 1e-12, maxiter: int | None = None,
                 restart: int | None = None, x0=None, progress: bool = False, hermitize: bool = True,
                 preconditioner: str = "gauss-seidel", symmetry: str = "auto", reuse: bool = True,
                 krylov: str = "auto"):
    """Exact steady state of the master equation in the balanced U(1) sector.

    Parameters
    ----------
    system : DipoleSystem
        f must be positive semidefinite (Lindblad form).
    solver : {"auto", "direct", "iterative"}
        ``"direct"``: sparse LU (COLAMD) of the sector Liouvillian with one row
        replaced by the trace; ``"iterative"``: GMRES or BiCGStab (``krylov``) preconditioned with the
        blockwise Sylvester inverse of the k-conserving part (module docstring).
        ``"auto"`` factorises when the sector has at most
        :data:`DIRECT_MAX_SECTOR` unknowns (N <= 5) and iterates beyond. The
        LU fill-in explodes (N = 8: 1.4e8 nonzeros, 7 minutes); GMRES takes
        ~25-40 iterations for dipolar chains (N = 10 in seconds).
    tol : float
        Relative residual of GMRES (iterative only).
    maxiter : int, optional
        Number of GMRES restarts (default: enough for 4000 iterations), or of BiCGStab
        iterations (default 2000).
    restart : int, optional
        GMRES restart length (Krylov vectors kept): by default 40 up to N = 13 and 20
        beyond (:func:`default_restart`; the basis is most of the memory, and the
        iteration count hardly depends on it).
    krylov : {"auto", "gmres", "bicgstab"}
        The Krylov method on the right-preconditioned system: restarted GMRES
        (``restart`` + 1 basis vectors, one matvec an iteration) or BiCGStab (no basis,
        two matvecs an iteration, no orthogonalisation; the same number of matvecs
        within 10 %). ``"auto"``: BiCGStab from N = 12 (:data:`BICGSTAB_FROM_N`; at
        N = 12 10 % faster in 0.4 of the memory), GMRES below. An unconverged run is
        retried once from where it stopped with GMRES.
    preconditioner : {"gauss-seidel", "gauss-seidel-down", "gauss-seidel-up", "jacobi"}
        Block preconditioner of the iterative solver (module docstring).
        ``"gauss-seidel"`` sweeps down (keeping decay) for W <= 2 Gamma and up
        (keeping the pump) above (:data:`UPWARD_SWEEP_FROM_W`); the diagnostics
        name the one used.
    symmetry : {"auto", "mirror", "none"}
        ``"mirror"`` solves the iterative system among mirror-invariant states
        (R rho R = rho, R: site a -> N - 1 - a; :mod:`.mirror`): half the
        unknowns, a quarter of the dense work per iteration, the same answer
        (the steady state is unique, so it is mirror-invariant when the system
        is). It requires f, g and delta to be mirror-symmetric, as in every
        equally spaced chain without detunings. ``"auto"``: mirror when the
        system is mirror-symmetric and the solver iterative; ``"none"``: the
        whole sector.
    reuse : bool
        Keep the iterative solver's operator (sparse jumps, eigen-decompositions
        of K_k) after the call, one per process, and reuse it when the next
        system differs only in W: a pump scan (or a sweep with W innermost and
        ``group``) then skips the assembly, about a third of a solve at N = 12.
        The kept operator holds its memory (~0.5 GB at N = 12) until a solve of
        another system (or one with ``reuse=False``) replaces it, or
        :func:`clear_operator_cache` releases it.
    x0 : SteadyState or array, optional
        Where the iterative solver starts: an exact steady state of a system with
        the same N (e.g. the neighbouring point of a sweep over W), or a sector
        vector (``extras["sector_vector"]``). Saves ~10-15 % of the iterations
        between pump rates 1.5 times apart.
    progress : bool
        tqdm progress bar of GMRES iterations (one step for the direct solver).
    hermitize : bool
        Return (rho + rho^+)/2 (removes round-off anti-Hermitian parts).

    Returns
    -------
    SteadyState
        Moments sz, correlations (C_ab = <s+_a s-_b>), zz; ``diagnostics`` with
        ``seconds``, ``residual`` (||L rho|| / ||rho||, 2-norms of the sector
        vector), ``sector_size``, ``nnz``, ``solver``; ``extras["sector_vector"]``
        (unit trace) and ``extras["basis"]``. :func:`density_matrix` gives the
        dense rho.

    Examples
    --------
    >>> from mpsync import DipoleSystem
    >>> ss = steady_state(DipoleSystem.chain(1, 0.1, "magic", W=3.0))
    >>> round(float(ss.sz[0]), 12)   # (W - 1) / (W + 1)
    0.5
    """
    t0 = time.perf_counter()
    n = system.n
    tol = float(tol)
    maxiter = None if maxiter is None else int(maxiter)
    size = comb(2 * n, n)
    solver, restart, mirror, krylov = _plan(system, solver, restart, symmetry, krylov)
    preconditioner = _resolve_preconditioner(preconditioner, system)
    x0 = _start_vector(x0, n)
    _release_unless_reusable(system, mirror, reuse and solver == "iterative")
    nbytes = _check(system, "sector", solver, restart, mirror, krylov)
    basis = SectorBasis(n)
    extra = {}
    if system.W == 0:
        # no pump: the ground state is steady (unique unless f has dark modes); the
        # k = 0 block of D vanishes, so neither GMRES preconditioner nor LU row choice applies
        solver = "ground state (W = 0)"
        vec = np.zeros(basis.size, dtype=complex)
        vec[0] = 1.0
        op = SectorOperator(system, basis, factorize=False)
        apply_L, info = op.apply, {"nnz_jumps": op.nnz_jumps}
        if system.lindblad_decomposition("method='exact'").rates.min() <= 1e-12 * system.gamma:
            extra["warning"] = ("f has a zero eigenvalue (dark state): with W = 0 the steady state "
                                "is not unique; this is the ground state")
    elif solver == "direct":
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=1, desc=f"exact N={n}: sparse LU of {size} unknowns")
        vec, apply_L, info = _solve_direct(system, basis)
        if bar is not None:
            bar.update(1)
            bar.close()
    else:
        its_max = maxiter or (2000 if krylov == "bicgstab" else max(1, 4000 // restart))
        vec, apply_L, info = _solve_iterative(system, basis, tol, its_max, restart, x0, progress,
                                              preconditioner, mirror, reuse, krylov)
        if info["gmres_info"] != 0:
            # one retry from where it stopped with GMRES, with a longer Krylov space (restarted
            # GMRES can stagnate when the restart length is too short) if that fits
            its, matvecs = info["iterations"], info["matvecs"]
            longer = 2 * restart if krylov == "gmres" else restart
            if not fits_in_memory(estimate_memory(n, "sector", solver, longer, mirror)):
                longer = restart
            vec, apply_L, info = _solve_iterative(system, basis, tol, maxiter or max(1, 4000 // longer),
                                                  longer, vec, progress, preconditioner, mirror, reuse)
            info["iterations"] += its
            info["matvecs"] += matvecs
            info["retried"] = True
    tr = sum(np.trace(X) for X in basis.blocks(vec))
    vec = vec / tr
    if hermitize:
        for X in basis.blocks(vec):
            X[...] = 0.5 * (X + X.conj().T)
    residual = float(np.linalg.norm(apply_L(vec)) / np.linalg.norm(vec))
    moments = sector_moments(basis, vec)
    diagnostics = {"seconds": time.perf_counter() - t0, "solver": solver, "residual": residual,
                   "sector_size": size, "memory_estimate": format_bytes(nbytes), **info}
    if "nnz" not in diagnostics:
        diagnostics["nnz"] = int(info.get("nnz_jumps", 0)) + sum(int(b) ** 2 for b in basis.m)
    diagnostics.update(extra)
    diagnostics["converged"] = True
    if solver == "iterative" and info["gmres_info"] != 0:
        diagnostics["converged"] = False
        diagnostics["warning"] = (f"GMRES did not reach tol={tol:g} (info={info['gmres_info']}); "
                                  f"residual {residual:.2g}")
        warnings.warn(f"exact steady state N={n}: {diagnostics['warning']}", ConvergenceWarning,
                      stacklevel=2)
    return SteadyState(system, moments, METHOD, diagnostics,
                       extras={"sector_vector": vec, "basis": basis})


# ---------------------------------------------------------------------- time evolution
def evolve(system, times, initial="down", progress: bool = False, space: str = "auto",
           operator: str = "auto", krylov_dim: int = 30, krylov_tol: float = 1e-10):
    """Exact time evolution from a product state.

    Integrates d rho/dt = L rho (times in 1/Gamma) in the balanced sector when the
    initial state has no coherence between down and up, in the full 4^N space otherwise
    (then the moments include sm, zsm, smsm). With the stored sparse Liouvillian
    (``operator="matrix"``) the step is :func:`scipy.sparse.linalg.expm_multiply`;
    matrix-free (``operator="free"``, sector only) it is a Krylov exponential
    (:func:`mpsync.solvers.krylov.expm_krylov`) of the operator the steady-state solver
    applies (:class:`SectorOperator`, jumps from index tables), on the mirror-reduced
    vector when system and initial state are mirror symmetric.

    Parameters
    ----------
    times : array_like
        Increasing output times >= 0.
    initial : "down", "up", "x" or list of 2 x 2 density matrices
    progress : bool
        tqdm bar over output times.
    space : {"auto", "sector", "full"}
        Force the full space (always valid) or the sector (needs no coherences).
    operator : {"auto", "matrix", "free"}
        How the sector Liouvillian is applied. The stored matrix takes 2.5 x 20 bytes
        a nonzero (1.2 GB at N = 10, 25 GB at N = 12, 112 GB at N = 13) and is the faster
        only below N = 8; the free operator needs ``krylov_dim + 9`` vectors of the
        (reduced) sector and 11 of the full one (5.2 GB at N = 13 with the mirror
        reduction, 20 GB at N = 14). ``"auto"``: the matrix below
        :data:`FREE_EVOLVE_FROM_N` when it fits in memory, else the free operator.
    krylov_dim, krylov_tol : int, float
        Krylov dimension and relative accuracy of each sub-step of the free operator's
        exponential (sub-steps are split until the a-posteriori error estimate meets it).

    Returns
    -------
    TimeSeries
        ``diagnostics``: ``space``, ``operator``, ``dimension``, ``nnz`` (stored matrix)
        or ``matvecs`` and ``mirror`` (free operator), ``seconds``.

    Examples
    --------
    >>> from mpsync import DipoleSystem
    >>> s = DipoleSystem.chain(4, 0.1, "magic", W=2.0)
    >>> a = evolve(s, [0.0, 0.5, 1.0])
    >>> b = evolve(s, [0.0, 0.5, 1.0], operator="free")
    >>> bool(abs(a.ZQ2 - b.ZQ2).max() < 1e-10)
    True
    """
    t0 = time.perf_counter()
    krylov_dim, krylov_tol = int(krylov_dim), float(krylov_tol)
    times = check_times(times)
    n = system.n
    states, space, operator, mirror, kind = _evolve_plan(system, initial, space, operator)
    diagnostics = {"space": space, "operator": operator}
    if space == "sector":
        _check(system, kind, restart=krylov_dim, mirror=mirror)
        basis = SectorBasis(n)
        ket, bra = basis.ket_bra()
        vec = np.ones(basis.size, dtype=complex)
        for a in range(n):
            ia = (ket >> (n - 1 - a)) & 1
            ja = (bra >> (n - 1 - a)) & 1
            vec *= states[a][ia, ja]
        if operator == "free":
            op = SectorOperator(system, basis, factorize=False, mirror=mirror)
            vec = op.reduce(vec)
            del ket, bra
            matvecs = [0]

            def apply_L(v):
                matvecs[0] += 1
                return op.apply(v)

            step = lambda v, dt: expm_krylov(apply_L, v, dt, tol=krylov_tol, m_max=krylov_dim)  # noqa: E731
            moments_of = lambda v: sector_moments(basis, op.expand(v))  # noqa: E731
            diagnostics.update(dimension=int(op.size), mirror=bool(mirror))
        else:
            L = sector_liouvillian(system, basis)[0].tocsr()
            moments_of = lambda v: sector_moments(basis, v)  # noqa: E731
    else:
        L = liouvillian(system, ordering="ket_bra")
        rho0 = states[0]
        for m in states[1:]:
            rho0 = np.kron(rho0, m)
        vec = rho0.reshape(-1).astype(complex)
        dim = 2 ** n
        moments_of = lambda v: full_moments(v.reshape(dim, dim))  # noqa: E731
    if diagnostics["operator"] == "matrix":
        L = L.tocsr()
        step = lambda v, dt: spla.expm_multiply(L * dt, v)  # noqa: E731
        diagnostics.update(dimension=int(L.shape[0]), nnz=int(L.nnz))
    snaps = []
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(times), desc=f"exact evolve N={n}")
    t_prev = 0.0
    for t in times:
        if t > t_prev:
            vec = step(vec, t - t_prev)
            t_prev = t
        snaps.append(moments_of(vec))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if diagnostics["operator"] == "free":
        diagnostics.update(matvecs=int(matvecs[0]), krylov_dim=krylov_dim)
    diagnostics["seconds"] = time.perf_counter() - t0
    return TimeSeries.from_snapshots(system, times, snaps, METHOD, diagnostics=diagnostics)


# ---------------------------------------------------------------------- two-time functions
def _regression(system, steady, taus, collective: bool, progress: bool, label: str):
    """Quantum regression in the sector n_ket - n_bra = -1.

    Evolves Y_b = s-_b rho_ss for every b (and, if ``collective``, J- rho_ss) with the
    sector's Liouvillian and reads Tr[s+_a Y(tau)] for every a.

    Returns
    -------
    R : (T, N, N [+ 1]) complex ndarray
        ``R[t, a, b] = <s+_a(tau_t) s-_b(0)>``; column N (when ``collective``) holds
        ``<s+_a(tau) J-(0)>``.
    matvecs : int
        Products with the sector Liouvillian.
    """
    n = system.n
    b0, vec = steady.extras["basis"], steady.extras["sector_vector"]
    b1 = SectorBasis(n, shift=-1)
    ket, bra = b1.ket_bra()
    L = assemble(system, ket, bra, b1.index)
    kb = popcount(bra)
    bits = [site_bit(n, a) for a in range(n)]
    # Y_b = s-_b rho: Y_b[i, j] = rho[i + e_b, j] where i_b = 0
    Y = np.zeros((b1.size, n), dtype=complex)
    for b, bit in enumerate(bits):
        sel = np.flatnonzero((ket & bit) == 0)
        src = b0.offsets[kb[sel]] + b0.rank[ket[sel] | bit] * b0.m[kb[sel]] + b0.rank[bra[sel]]
        Y[sel, b] = vec[src]
    # Tr[s+_a Y] = sum over i with i_a = 0 of Y[i, i + e_a]
    pick = [np.flatnonzero(((ket & bit) == 0) & (bra == (ket | bit))) for bit in bits]
    del ket, bra, kb
    L = L.tocsr()

    def observe(block):  # (k, size) Krylov vectors -> (k, N) traces with s+_a
        return np.stack([block[:, p].sum(axis=1) for p in pick], axis=1)

    out = np.empty((len(taus), n, n + int(collective)), dtype=complex)
    # A mirror-symmetric system has a mirror-symmetric steady state and dynamics, so
    # G_ab = G_{N-1-a, N-1-b}: half the columns are propagated
    from .mirror import is_mirror_symmetric

    mirror = n > 1 and is_mirror_symmetric(system)
    columns = range((n + 1) // 2) if mirror else range(n)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(columns), desc=label, unit="column")
    matvecs = [0]

    def apply_L(x):
        matvecs[0] += 1
        return L @ x

    # one Krylov exponential per column b, with every delay read off its bases
    # (krylov.expm_krylov_series): ~10x fewer matvecs than expm_multiply from delay to delay
    for b in columns:
        out[:, :, b] = expm_krylov_series(apply_L, Y[:, b], taus, observe, tol=_REGRESSION_TOL)
        if bar is not None:
            bar.update(1)
    if mirror:
        for b in range((n + 1) // 2, n):
            out[:, :, b] = out[:, ::-1, n - 1 - b]
    if bar is not None:
        bar.close()
    if collective:  # J- rho = sum_b s-_b rho, and the propagation is linear
        out[:, :, n] = out[:, :, :n].sum(axis=2)
    return out, matvecs[0]


#: relative accuracy of each Krylov sub-step of the regression: at N = 10 (201 delays) 1e-10
#: and 1e-11 give Z_ab equal to 2e-15, in 57 and 65 s (benchmarks/RESULTS.md, issue 20)
_REGRESSION_TOL = 1e-10


def _check_two_time_memory(system):
    from ..applicability import alternatives

    n = system.n
    size = comb(2 * n, n - 1) if n > 0 else 0
    # the sector matrix, the N starting vectors, the Krylov basis (31) and ~4 temporaries
    check_memory(estimate_memory(n, "sector_matrix") + (n + 35) * _COMPLEX * size,
                 f"N={n} two-time functions in the exact solver", alternatives(
                     system, exclude=("exact", "meanfield", "trajectories"), entry="two_time"))


def correlation_function(system, taus, steady: SteadyState | None = None, progress: bool = False,
                         **options):
    """Steady-state two-time functions G_ab(tau) = <s+_a(tau) s-_b(0)> (quantum regression).

    G_ab(tau) = Tr[s+_a exp(L tau)(s-_b rho_ss)]. The operator s-_b rho_ss has one
    excitation fewer in the ket than in the bra, and L keeps that difference, so the
    propagation runs in the sector n_ket - n_bra = -1 (C(2N, N-1) elements), for all
    b at once. The pair function of docs/physics.md#two-time is
    Z_ab(tau) = G_aa + G_ab + G_ba + G_bb; :func:`two_time` (and
    :func:`mpsync.two_time`) returns it with fits and the spectrum.

    Parameters
    ----------
    system : DipoleSystem
    taus : array_like
        Increasing delays >= 0 (units of 1/Gamma).
    steady : SteadyState, optional
        This solver's steady state of ``system`` (computed with ``**options`` if absent).
    progress : bool
        tqdm bar over the delays.

    Returns
    -------
    (T, N, N) complex ndarray
        ``G[t, a, b]``; ``G[0]`` equals the correlations C_ab when ``taus[0] == 0``.
    """
    taus = np.asarray(taus, dtype=float)
    if taus.ndim != 1 or taus.size == 0 or np.any(np.diff(taus) < 0) or taus[0] < 0:
        raise InvalidSystemError("taus must be a non-empty increasing array of values >= 0")
    n = system.n
    system.check_lindblad("method='exact'")
    _check_two_time_memory(system)
    if steady is None:
        steady = steady_state(system, **options)
    if "sector_vector" not in steady.extras:
        raise NotApplicableError("correlation_function needs a steady state of method='exact'")
    return _regression(system, steady, taus, False, progress, f"exact two-time N={n}")[0]


def two_time(system, taus, pairs=None, steady: SteadyState | None = None, *, progress: bool = False):
    """Steady-state two-time functions by quantum regression in the U(1) sectors.

    For every pair (a, b) (docs/physics.md#two-time)::

        G_ab(tau) = Tr[s+_a exp(L tau)(s-_b rho_ss)],   Z_ab = G_aa + G_ab + G_ba + G_bb,
        <J+(tau) J-(0)> = Tr[J+ exp(L tau)(J- rho_ss)],

    exact up to the Krylov tolerance of ``expm_multiply`` (round-off). s-_b rho_ss lives
    in the sector n_ket - n_bra = -1 (C(2N, N-1) amplitudes), propagated for all b and
    J- at once (N + 1 vectors of that size).

    Parameters
    ----------
    system : DipoleSystem
    taus : array_like
        Strictly increasing delays >= 0 (units of 1/Gamma).
    pairs : None, int or list of (a, b)
        See :func:`mpsync.solvers.correlations.resolve_pairs` (default: the central
        dipole against every other).
    steady : SteadyState, optional
        This solver's steady state of ``system`` (computed with default options if absent).
    progress : bool
        tqdm bar over the delays.

    Returns
    -------
    TwoTimeResult

    Examples
    --------
    >>> import numpy as np
    >>> from mpsync import DipoleSystem
    >>> r = two_time(DipoleSystem.chain(4, spacing=0.1, theta="magic", W=2.0), np.linspace(0, 4, 41))
    >>> r.Z.shape
    (3, 41)
    """
    import time as _time

    from ..correlations import assemble as assemble_two_time, check_taus, resolve_pairs, steady_of

    t0 = _time.perf_counter()
    taus = check_taus(taus)
    n = system.n
    pairs = resolve_pairs(pairs, n)
    system.check_lindblad("method='exact'")
    _check_two_time_memory(system)
    steady = steady_of(steady, system, METHOD, steady_state, needs=("basis", "sector_vector"))
    R, matvecs = _regression(system, steady, taus, True, progress, f"exact two-time N={n}")
    J = R[:, :, n].sum(axis=1)
    diagnostics = {"seconds": _time.perf_counter() - t0, "N": n, "matvecs": matvecs,
                   "sector_size": comb(2 * n, n - 1), "steady_seconds": steady.diagnostics.get("seconds")}
    return assemble_two_time(system, METHOD, taus, pairs, lambda a, b: R[:, a, b], J,
                             diagnostics=diagnostics, J_sites=R[:, :, n].T)
