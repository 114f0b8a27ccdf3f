r"""Two-site TDVP for a non-Hermitian generator acting on a vectorised density matrix.

The density matrix of N dipoles is a matrix-product state of local dimension 4,
``|rho>> = sum A[0][s0] A[1][s1] ... A[N-1][s_{N-1}] |s0 s1 ...>>`` with per-site
index ``s = 2 i + j`` (ket i, bra j; docs/physics.md#conventions). It obeys the linear,
non-Hermitian equation

.. math::  \frac{d}{dt} |\rho\rangle\rangle = \mathcal{L} |\rho\rangle\rangle ,

with :math:`\mathcal{L}` given as an MPO (units: Gamma = 1, times in 1/Gamma).
The time-dependent variational principle projects the right-hand side onto the
tangent space of MPS of the current bond dimensions (Haegeman et al., PRB 94,
165116 (2016)); in the Euclidean geometry of the vectorised operator space the
projector is the usual sum of one- and two-site terms built from the mixed
canonical form, so the symmetric (second-order) splitting reads, for one step dt:

* left to right, for each bond (i, i+1):
  ``theta <- exp(+dt/2 L2_eff(i)) theta``, SVD (truncated by ``max_bond`` and
  ``cutoff``), keep the left isometry at i, then, unless i + 1 is the last site,
  ``C(i+1) <- exp(-dt/2 L1_eff(i+1)) C(i+1)`` (the backward one-site step);
* right to left, the mirror image, with the backward step on site i.

:meth:`TDVP.step1` is the one-site variant (forward one-site, backward zero-site
steps): it keeps the bond dimensions, has no truncation, and its fixed points obey
``P1 L |rho>> = 0``, so the steady-state driver switches to it once the two-site
steps have grown the bonds. :func:`expand_basis` (one explicit Euler step through
an exact MPO application) seeds the bonds of a product initial state with
``L|rho>>``; without it, the tangent space of a product state misses the pair
terms between non-adjacent sites, an error of first order in dt.

``L2_eff`` and ``L1_eff`` are the generator contracted with the left and right
environments ``<<psi| L |psi>>`` of the sites outside the block. The local
exponentials use an Arnoldi (Krylov) approximation with sub-stepping
(:func:`expm_krylov`), which is needed because the effective generators are not
Hermitian. Nothing here forms an effective matrix: every application contracts
environments, MPO tensors and the block in an order of cost
``O(d^2 chi^3 D + d^3 chi^2 D^2)`` (d = 4, MPO bond D).

Rescaling the state never changes the projected flow (the tangent space does not
depend on the norm), so the engine keeps the orthogonality centre at unit 2-norm
for numerical safety; the physical normalisation is the trace ``<<1|rho>>``
(:func:`trace`), applied only when observables are taken.

Every array operation goes through :mod:`autoray`, so the tensors may be numpy,
cupy or torch arrays; the small Krylov matrices are numpy.

Conventions
-----------
MPS tensor ``A[a]``: shape ``(Dl, 4, Dr)``. MPO tensor ``M[a]``: shape
``(Dl, Dr, 4_out, 4_in)``. Environments ``(chi_bra, D, chi_ket)``.
"""

from __future__ import annotations

import math
import time

import numpy as np
from autoray import do, to_numpy

# One implementation of the state utilities for the whole MPO package: the trace,
# trace normalisation and Hermitian conjugate live in vectorized.py, the residual in
# liouvillian.py (both rescale as they sweep, so long chains stay in range).
from ..krylov import expm_krylov  # noqa: F401  (re-exported: the local exponentials of TDVP)
from .liouvillian import residual_norm
from ...channels import ID2, SM, SP, SZ
from .vectorized import covector, hermitian_conjugate, normalize_trace as trace_normalized, trace

__all__ = [
    "TDVP",
    "DeadlineReached",
    "expm_krylov",
    "right_canonicalize",
    "trace",
    "trace_normalized",
    "norm",
    "zq2_sum",
    "antihermitian_norm",
    "residual_norm",
    "hermitian_conjugate",
    "overlap",
    "distance",
    "expand_basis",
]

# Tr(rho o) = sum_s v_o[s] psi[s] with v_o[2 i + j] = o[j, i]
_V_ID, _V_SP, _V_SM, _V_SZ = (covector(o) for o in (ID2, SP, SM, SZ))
# s = 2 i + j -> 2 j + i: the vectorised Hermitian conjugate (with a complex conjugation)
_SWAP = [0, 2, 1, 3]


def _like(x, a):
    """``a`` (numpy) as an array of the backend and dtype of ``x``."""
    return do("asarray", np.asarray(a, dtype=complex), like=x)


def _fnorm(x) -> float:
    return float(to_numpy(do("linalg.norm", do("reshape", x, (-1,)))))


def _inner(a, b) -> complex:
    return complex(to_numpy(do("sum", do("conj", a) * b)))


# ---------------------------------------------------------------------- environments
def _update_left(E, A, M):
    """Left environment of sites <= a from that of sites < a."""
    T = do("tensordot", E, A, axes=([2], [0]))                 # (x, w, t, Y)
    T = do("tensordot", T, M, axes=([1, 2], [0, 3]))           # (x, Y, v, s)
    T = do("tensordot", do("conj", A), T, axes=([0, 1], [0, 3]))  # (X, Y, v)
    return do("transpose", T, (0, 2, 1))                      # (X, v, Y)


def _update_right(E, A, M):
    """Right environment of sites >= a from that of sites > a."""
    T = do("tensordot", A, E, axes=([2], [2]))                 # (y, t, X, v)
    T = do("tensordot", T, M, axes=([1, 3], [3, 1]))           # (y, X, w, s)
    T = do("tensordot", do("conj", A), T, axes=([1, 2], [3, 1]))  # (x, y, w)
    return do("transpose", T, (0, 2, 1))                      # (x, w, y)


def _apply2(LE, M1, M2, RE, theta):
    """Two-site effective generator applied to ``theta`` (y, t1, t2, Y)."""
    T = do("tensordot", LE, theta, axes=([2], [0]))            # (x, w, t1, t2, Y)
    T = do("tensordot", T, M1, axes=([1, 2], [0, 3]))          # (x, t2, Y, v, s1)
    T = do("tensordot", T, M2, axes=([3, 1], [0, 3]))          # (x, Y, s1, u, s2)
    return do("tensordot", T, RE, axes=([3, 1], [1, 2]))       # (x, s1, s2, X)


def _apply1(LE, M, RE, C):
    """One-site effective generator applied to ``C`` (y, t, Y)."""
    T = do("tensordot", LE, C, axes=([2], [0]))                # (x, w, t, Y)
    T = do("tensordot", T, M, axes=([1, 2], [0, 3]))           # (x, Y, v, s)
    return do("tensordot", T, RE, axes=([2, 1], [1, 2]))       # (x, s, X)


def _op1(LE, M, RE):
    """The one-site effective generator as a function, in the cheaper contraction order.

    Direct order: ``O(8 chi^3 D + 16 chi^2 D^2)`` per application. When the MPO
    bond D exceeds chi (long-range couplings, small chi) it pays to contract the
    left environment with the MPO tensor once, ``LM = LE . M`` (``16 chi^2 D^2``,
    amortised over the Krylov iterations), and then ``O(20 chi^3 D)`` per application.
    """
    chi = max(LE.shape[0], RE.shape[0])
    D = max(M.shape[0], M.shape[1])
    if 2 * chi >= D:
        return lambda C: _apply1(LE, M, RE, C)
    LM = do("tensordot", LE, M, axes=([1], [0]))               # (x, y, v, s, t)

    def apply(C):
        T = do("tensordot", LM, C, axes=([1, 4], [0, 1]))      # (x, v, s, Y)
        return do("tensordot", T, RE, axes=([1, 3], [1, 2]))   # (x, s, X)
    return apply


def _op2(LE, M1, M2, RE):
    """The two-site effective generator as a function, in the cheaper contraction order.

    Direct: ``O(32 chi^3 D + 64 chi^2 D^2)``; with ``LM1 = LE . M1`` and
    ``M2R = M2 . RE`` precomputed: ``O(128 chi^3 D)``, better when D > 1.5 chi.
    """
    chi = max(LE.shape[0], RE.shape[0])
    D = max(M1.shape[1], 1)
    if 3 * chi >= 2 * D:
        return lambda x: _apply2(LE, M1, M2, RE, x)
    LM = do("tensordot", LE, M1, axes=([1], [0]))              # (x, y, v, s1, t1)
    MR = do("tensordot", M2, RE, axes=([1], [1]))              # (v, s2, t2, X, Y)

    def apply(theta):
        T = do("tensordot", LM, theta, axes=([1, 4], [0, 1]))  # (x, v, s1, t2, Y)
        T = do("tensordot", T, MR, axes=([1, 3, 4], [0, 2, 4]))  # (x, s1, s2, X)
        return T
    return apply


def _apply0(LE, RE, R):
    """Zero-site (bond) effective generator applied to ``R`` (y, Y)."""
    T = do("tensordot", LE, R, axes=([2], [0]))                # (x, w, Y)
    return do("tensordot", T, RE, axes=([1, 2], [1, 2]))       # (x, X)


def _ones_env(like):
    return do("ones", (1, 1, 1), dtype=like.dtype, like=like)


# ---------------------------------------------------------------------- canonical forms
def right_canonicalize(mps):
    """Right-canonical copy of ``mps`` (sites 1..N-1 right isometries), centre at 0."""
    A = list(mps)
    for a in range(len(A) - 1, 0, -1):
        Dl, d, Dr = A[a].shape
        Q, R = do("linalg.qr", do("transpose", do("reshape", A[a], (Dl, d * Dr))))
        k = Q.shape[1]
        A[a] = do("reshape", do("transpose", Q), (k, d, Dr))
        A[a - 1] = do("tensordot", A[a - 1], do("transpose", R), axes=([2], [0]))
    return A


def _split(theta, max_bond, cutoff, absorb):
    """SVD of a two-site block, truncated; returns (left, right, discarded weight)."""
    Dl, d1, d2, Dr = theta.shape
    U, S, Vh = do("linalg.svd", do("reshape", theta, (Dl * d1, d2 * Dr)), full_matrices=False)
    s = to_numpy(S).real.astype(float)
    total = float(np.sum(s ** 2))
    k = len(s)
    if total > 0:
        # keep singular values above cutoff * the largest (quimb's "rel" mode): the
        # state's error is then O(cutoff), and the residual floor O(cutoff ||L||)
        k = max(1, int(np.sum(s > cutoff * s[0])))
    if max_bond is not None:
        k = min(k, int(max_bond))
    discarded = float(np.sum(s[k:] ** 2) / total) if total > 0 else 0.0
    U, S, Vh = U[:, :k], S[:k], Vh[:k, :]
    if absorb == "right":
        Vh = S[:, None] * Vh
    else:
        U = U * S[None, :]
    return do("reshape", U, (Dl, d1, k)), do("reshape", Vh, (k, d2, Dr)), discarded


# ---------------------------------------------------------------------- the engine
class DeadlineReached(Exception):
    """A step was stopped because the engine's ``deadline`` passed."""


class TDVP:
    r"""Two-site TDVP integrator of ``d|psi>>/dt = L |psi>>`` for an MPO ``L``.

    Parameters
    ----------
    mpo : list of arrays
        ``M[a]`` of shape ``(Dl, Dr, 4, 4)`` (left, right, out, in).
    mps : list of arrays
        ``A[a]`` of shape ``(Dl, 4, Dr)``; copied and brought to right-canonical form.
    max_bond : int, optional
        Largest MPS bond dimension chi.
    cutoff : float
        Singular values below ``cutoff`` times the largest are dropped at each SVD.
    krylov_tol : float
        Relative accuracy of each local exponential.
    krylov_dim : int
        Largest Krylov space.
    canonical : bool
        The MPS is already right-canonical with unit-norm centre at site 0 (as
        left by :meth:`step`, e.g. from a checkpoint): skip the QR sweep, so a
        resumed run continues bit for bit.

    Attributes
    ----------
    mps : list of arrays
        The state (2-norm 1, centre at site 0 between steps).
    matvecs : int
        Effective-generator applications so far.
    deadline : float or None
        A ``time.perf_counter()`` value after which a step raises :class:`DeadlineReached`
        (mid-step: the tensors are then inconsistent, and the caller restores a saved state).
    truncation : float
        Discarded weight summed over all SVDs so far.
    log_norm : float
        log of the 2-norm the state would have without the engine's rescaling: the
        given state's norm times the growth of every local step (the steady-state flow
        ignores it; the two-time functions of :mod:`.regression` need it).

    Examples
    --------
    >>> import numpy as np
    >>> from mpsync.channels import local_generator
    >>> L1 = local_generator(0.0, 1.0, 2.0)
    >>> mpo = [L1.reshape(1, 1, 4, 4)]          # one site: 1x1 bonds
    >>> eng = TDVP(mpo, [np.eye(2).reshape(1, 4, 1) / 2 + 0j])
    >>> _ = eng.step(50.0)
    >>> rho = trace_normalized(eng.mps)[0].reshape(2, 2)
    >>> round(float((rho[1, 1] - rho[0, 0]).real), 8)    # (W - 1) / (W + 1)
    0.33333333
    """

    def __init__(self, mpo, mps, max_bond=None, cutoff: float = 1e-10,
                 krylov_tol: float = 1e-10, krylov_dim: int = 30, canonical: bool = False):
        if len(mpo) != len(mps):
            raise ValueError(f"MPO has {len(mpo)} sites but the MPS has {len(mps)}")
        self.mpo = list(mpo)
        self.n = len(mps)
        self.max_bond = max_bond
        self.cutoff = float(cutoff)
        self.krylov_tol = float(krylov_tol)
        self.krylov_dim = int(krylov_dim)
        self.matvecs = 0
        self.truncation = 0.0
        self.deadline = None
        A = [do("astype", x, "complex128") if "complex" not in str(x.dtype) else x for x in mps]
        self.log_norm = 0.0
        if not canonical:
            A = right_canonicalize(A)
            A[0] = self._unit(A[0])
        self.mps = A
        self._build_right_envs()

    # ------------------------------------------------------------------ helpers
    def _build_right_envs(self):
        A, M, n = self.mps, self.mpo, self.n
        self.RE = [None] * n
        self.LE = [None] * n
        self.RE[n - 1] = self._ones("right")
        self.LE[0] = self._ones("left")
        for a in range(n - 1, 0, -1):
            self.RE[a - 1] = _update_right(self.RE[a], A[a], M[a])

    def state(self) -> list:
        """The MPS as dense ``(Dl, 4, Dr)`` arrays of the engine's backend (centre at site 0)."""
        return list(self.mps)

    @staticmethod
    def _norm(x) -> float:
        return _fnorm(x)

    def _unit(self, x):
        """``x`` scaled to unit 2-norm, the factor added to :attr:`log_norm`."""
        nrm = self._norm(x)
        self.log_norm += math.log(nrm) if nrm > 0 else 0.0
        return x / nrm

    def _ones(self, side):
        """The trivial environment beyond the ``"left"`` or ``"right"`` edge."""
        return _ones_env(self.mps[0])

    def _split(self, theta, absorb):
        return _split(theta, self.max_bond, self.cutoff, absorb)

    def _counted(self, apply):
        """``apply`` counting its calls in :attr:`matvecs` and checking :attr:`deadline`
        (a ``time.perf_counter()`` value) every 16 calls: one stiff step can take minutes
        of Krylov sub-steps, so a time budget checked between steps would overrun."""
        def mv(y):
            self.matvecs += 1
            if self.deadline is not None and self.matvecs % 16 == 0 \
                    and time.perf_counter() > self.deadline:
                raise DeadlineReached(f"deadline passed after {self.matvecs} matvecs")
            return apply(y)
        return mv

    def _exp(self, apply, x, t):
        return expm_krylov(self._counted(apply), x, t, tol=self.krylov_tol, m_max=self.krylov_dim)

    @property
    def bond_dims(self) -> list:
        """MPS bond dimensions between sites."""
        return [int(a.shape[2]) for a in self.mps[:-1]]

    # ------------------------------------------------------------------ certificate
    def projected_residual(self) -> float:
        r"""The two-site projected residual of the current state, relative to its norm.

        .. math:: \eta_2 = \Big(\sum_{i=1}^{N-1} \|P_{i,i+1} \mathcal{L}|\rho\rangle\rangle\|^2
                  \Big)^{1/2} \Big/ \||\rho\rangle\rangle\|

        with :math:`P_{i,i+1}` the orthogonal projector on the two-site space of bond
        (i, i+1) of the mixed-canonical MPS (left basis x two sites x right basis). The
        one-site TDVP flow stops where the *one-site* projection vanishes,
        ``P_1 L |rho>> = 0``; :math:`\eta_2` also sees the directions between two sites
        that the one-site tangent space misses, so a spurious one-site fixed point (a
        wrong state after a bond expansion) shows a large :math:`\eta_2`, while the
        true steady state has a small :math:`\eta_2 \le \sqrt{N-1}\,\|\mathcal{L}\rho\|/\|\rho\|`
        (each projection is at most the full residual; the N - 1 two-site spaces overlap).
        Cost: one two-site matvec and one QR per bond (a fraction of one TDVP sweep).
        The state is not changed (the right environments stay valid).
        """
        A, M, RE, n = list(self.mps), self.mpo, self.RE, self.n
        if n == 1:
            r = _apply1(self.LE[0], M[0], RE[0], A[0])
            return self._norm(r) / self._norm(A[0])
        LE = self._ones("left")
        total = 0.0
        for i in range(n - 1):
            theta = do("tensordot", A[i], A[i + 1], axes=([2], [0]))
            r = _op2(LE, M[i], M[i + 1], RE[i + 1])(theta)
            total += (self._norm(r) / self._norm(theta)) ** 2
            if i + 1 < n - 1:
                # move the centre to i + 1 (QR), keeping the left part isometric
                Dl, d, Dr = A[i].shape
                Q, R = do("linalg.qr", do("reshape", A[i], (Dl * d, Dr)))
                Q = do("reshape", Q, (Dl, d, Q.shape[1]))
                A[i + 1] = do("tensordot", R, A[i + 1], axes=([1], [0]))
                LE = _update_left(LE, Q, M[i])
        return math.sqrt(total)

    # ------------------------------------------------------------------ one step
    def step(self, dt: float) -> float:
        """Advance by ``dt`` (one left-to-right and one right-to-left half sweep).

        Returns the discarded weight of this step (also added to :attr:`truncation`).
        """
        A, M, LE, RE, n = self.mps, self.mpo, self.LE, self.RE, self.n
        h = 0.5 * dt
        disc = 0.0
        if n == 1:
            A[0] = self._exp(lambda C: _apply1(LE[0], M[0], RE[0], C), A[0], dt)
            A[0] = self._unit(A[0])
            return 0.0
        # left to right: centre moves from 0 to n-1
        for i in range(n - 1):
            theta = do("tensordot", A[i], A[i + 1], axes=([2], [0]))
            theta = self._exp(_op2(LE[i], M[i], M[i + 1], RE[i + 1]), theta, h)
            A[i], C, d = self._split(theta, absorb="right")
            disc += d
            C = self._unit(C)
            LE[i + 1] = _update_left(LE[i], A[i], M[i])
            if i + 1 < n - 1:
                C = self._exp(_op1(LE[i + 1], M[i + 1], RE[i + 1]), C, -h)
                C = self._unit(C)
            A[i + 1] = C
        # right to left: centre moves from n-1 to 0
        for i in range(n - 2, -1, -1):
            theta = do("tensordot", A[i], A[i + 1], axes=([2], [0]))
            theta = self._exp(_op2(LE[i], M[i], M[i + 1], RE[i + 1]), theta, h)
            C, A[i + 1], d = self._split(theta, absorb="left")
            disc += d
            C = self._unit(C)
            RE[i] = _update_right(RE[i + 1], A[i + 1], M[i + 1])
            if i > 0:
                C = self._exp(_op1(LE[i], M[i], RE[i]), C, -h)
                C = self._unit(C)
            A[i] = C
        self.truncation += disc
        return disc

    def step1(self, dt: float) -> None:
        """Advance by ``dt`` with one-site TDVP (bond dimensions fixed, no truncation).

        The symmetric splitting: left to right, ``A(i) <- exp(+dt/2 L1_eff(i)) A(i)``,
        QR ``A(i) = Q R``, ``R <- exp(-dt/2 L0_eff(i)) R`` (backward bond step),
        ``A(i+1) <- R A(i+1)``; then the mirror image right to left. Its fixed
        points satisfy ``P1 L |rho>> = 0`` on the manifold of the current bond
        dimensions, so, unlike the two-site step, it settles without truncation
        noise once the bond dimension has saturated.
        """
        A, M, LE, RE, n = self.mps, self.mpo, self.LE, self.RE, self.n
        h = 0.5 * dt
        if n == 1:
            self.step(dt)
            return
        for i in range(n):
            C = self._exp(_op1(LE[i], M[i], RE[i]), A[i], h)
            if i == n - 1:
                A[i] = self._unit(C)
                break
            Dl, d, Dr = C.shape
            Q, R = do("linalg.qr", do("reshape", C, (Dl * d, Dr)))
            A[i] = do("reshape", Q, (Dl, d, Q.shape[1]))
            LE[i + 1] = _update_left(LE[i], A[i], M[i])
            op0 = lambda x, j=i: _apply0(LE[j + 1], RE[j], x)  # noqa: E731
            R = self._exp(op0, R, -h)
            A[i + 1] = do("tensordot", self._unit(R), A[i + 1], axes=([1], [0]))
        for i in range(n - 1, -1, -1):
            C = self._exp(_op1(LE[i], M[i], RE[i]), A[i], h)
            if i == 0:
                A[i] = self._unit(C)
                break
            Dl, d, Dr = C.shape
            Q, R = do("linalg.qr", do("transpose", do("reshape", C, (Dl, d * Dr))))
            A[i] = do("reshape", do("transpose", Q), (Q.shape[1], d, Dr))
            RE[i - 1] = _update_right(RE[i], A[i], M[i])
            R = do("transpose", R)                                  # (Dl, k)
            op0 = lambda x, j=i: _apply0(LE[j], RE[j - 1], x)  # noqa: E731
            R = self._exp(op0, R, -h)
            A[i - 1] = do("tensordot", A[i - 1], self._unit(R), axes=([2], [0]))


# ---------------------------------------------------------------------- basis expansion
def expand_basis(mpo, mps, h: float, max_bond=None):
    r"""One explicit Euler step ``|rho>> + h L|rho>>`` by exact MPO application, compressed.

    TDVP only sees the tangent space of the current MPS. From a product state
    (bond 1) the two-site tangent space misses every pair term between
    non-adjacent sites, which gives an error of first order in dt that never
    goes away. One tiny Euler step (error ``O(h^2 ||L||^2)``) puts ``L|rho>>`` into
    the bond spaces, after which the projection captures all pair channels.
    Singular values down to 1e-13 of the largest are kept, so the new
    directions survive even though their weight is ~h.
    """
    from .liouvillian import mpo_apply
    from .vectorized import add, compress

    Lpsi = mpo_apply(list(mpo), list(mps))
    return compress(add(list(mps), Lpsi, 1.0, h), max_bond=max_bond, cutoff=1e-13)


# ---------------------------------------------------------------------- measurements
def _transfer(v, A):
    """sum_s v[s] A[:, s, :] for a numpy vector v."""
    return do("tensordot", _like(A, v), A, axes=([0], [1]))


def norm(mps) -> float:
    """Euclidean (Hilbert-Schmidt) norm ``||rho||_2`` of the vectorised state."""
    E = None
    for A in mps:
        if E is None:
            E = do("tensordot", do("conj", A), A, axes=([0, 1], [0, 1]))
        else:
            T = do("tensordot", E, A, axes=([1], [0]))
            E = do("tensordot", do("conj", A), T, axes=([0, 1], [0, 1]))
    return math.sqrt(abs(complex(to_numpy(E).reshape(())).real))


def overlap(bra, ket) -> complex:
    """``<<bra|ket>>`` (Euclidean inner product, bra conjugated), O(N chi^3)."""
    E = None
    for A, B in zip(bra, ket):
        if E is None:
            E = do("tensordot", do("conj", A), B, axes=([0, 1], [0, 1]))
        else:
            T = do("tensordot", E, B, axes=([1], [0]))
            E = do("tensordot", do("conj", A), T, axes=([0, 1], [0, 1]))
    return complex(to_numpy(E).reshape(()))


def distance(a, b) -> float:
    """``||a - b||_2 / ||b||_2`` of two vectorised states (as given, no normalisation).

    From overlaps, ``sqrt(|a|^2 + |b|^2 - 2 Re <a|b>)``: its floor is ``sqrt(machine
    epsilon) ~ 1.5e-8``, so distances below ~1e-7 are round-off (compare dense vectors there).
    """
    na, nb = norm(a) ** 2, norm(b) ** 2
    d2 = na + nb - 2 * overlap(a, b).real
    return math.sqrt(max(d2, 0.0) / nb)


def antihermitian_norm(mps) -> float:
    """``||(rho - rho^+)/2||_2 / ||rho||_2`` (0 for a Hermitian state)."""
    E = None
    for A in mps:
        B = A[:, _SWAP, :]  # conj(rho^+ tensor) = A with swapped physical index
        if E is None:
            E = do("tensordot", B, A, axes=([0, 1], [0, 1]))
        else:
            T = do("tensordot", E, A, axes=([1], [0]))
            E = do("tensordot", B, T, axes=([0, 1], [0, 1]))
    overlap = complex(to_numpy(E).reshape(())).real  # <<rho^+|rho>>
    nrm2 = norm(mps) ** 2
    return math.sqrt(max(2 * nrm2 - 2 * overlap, 0.0)) / (2 * math.sqrt(nrm2))


def zq2_sum(mps) -> tuple:
    """``(sum_{a != b} Tr(rho s+_a s-_b), sum_a Tr(rho sz_a), Tr rho)`` in O(N chi^2).

    A four-state automaton (nothing placed, s+ placed, s- placed, both) sweeps
    the chain once, so Z_Q^2 and the mean inversion cost one transfer pass.
    """
    e0 = ep = em = epm = ez = None
    for A in mps:
        I, P, M, Z = (_transfer(v, A) for v in (_V_ID, _V_SP, _V_SM, _V_SZ))
        if e0 is None:
            e0, ep, em, epm, ez = I, P, M, 0 * I, Z
            continue
        dot = lambda x, y: do("tensordot", x, y, axes=([1], [0]))  # noqa: E731
        e0, ep, em, epm, ez = (
            dot(e0, I),
            dot(ep, I) + dot(e0, P),
            dot(em, I) + dot(e0, M),
            dot(epm, I) + dot(ep, M) + dot(em, P),
            dot(ez, I) + dot(e0, Z),
        )
    val = lambda x: complex(to_numpy(x).reshape(()))  # noqa: E731
    return val(epm), val(ez), val(e0)
