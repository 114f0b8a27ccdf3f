r"""The vectorised density matrix and the Liouvillian as quimb tensor networks.

The MPO solver returns its state as a :class:`quimb.tensor.MatrixProductState`
of physical dimension 4 (``result.state``), so that anything quimb does (compress,
contract, save, hand to another algorithm) works on it. The convention:

* site ``a`` (0 ... N-1, in chain order) carries the physical index ``k{a}``
  (quimb's default ``site_ind_id``) and the tag ``I{a}``;
* the value of ``k{a}`` is ``s = 2 i + j`` for the matrix element
  ``|i><j|`` of dipole ``a`` (ket ``i``, bra ``j``; 0 = down, 1 = up), so that

  .. math:: \rho = \sum_{s_0 \dots s_{N-1}} \psi_{s_0 \dots s_{N-1}}
            \bigotimes_a |i_a\rangle\langle j_a| ;

* the state is normalised to unit trace, ``Tr rho = sum_s psi[s] t[s]`` with the
  trace covector ``t = (1, 0, 0, 1)`` on every site.

The Liouvillian is a :class:`quimb.tensor.MatrixProductOperator` with upper index
``k{a}`` (output) and lower index ``b{a}`` (input): ``L.apply(state)`` is
``|L rho>>``. See ``docs/physics.md`` (conventions) for the vectorisation.

The solver's own loops keep plain ``(Dl, 4, Dr)`` arrays (left bond, physical,
right bond) and contract them with explicit :func:`autoray.do` calls: quimb's
tensor-network layer costs a few hundred microseconds per contraction in index
bookkeeping, more than the contraction itself at chi <= 32 (measured in
``benchmarks/RESULTS.md``). :func:`to_quimb` and :func:`from_quimb` convert.

Examples
--------
>>> import numpy as np
>>> from mpsync.solvers.mpo.state import to_quimb, density_matrix
>>> down = np.array([1.0, 0, 0, 0]).reshape(1, 4, 1)          # |0><0|: s = 2 * 0 + 0
>>> psi = to_quimb([down, down])
>>> float(density_matrix(psi)[0, 0].real)
1.0
"""

from __future__ import annotations

import numpy as np
from autoray import do, to_numpy

from ...errors import InvalidSiteError, TooLargeError

__all__ = [
    "to_quimb",
    "from_quimb",
    "mpo_to_quimb",
    "density_matrix",
    "reduced_density_matrix",
    "operator_entanglement",
]

_TRACE = np.array([1.0, 0.0, 0.0, 1.0])


def to_quimb(tensors):
    """A :class:`quimb.tensor.MatrixProductState` from ``(Dl, 4, Dr)`` arrays (any backend).

    Parameters
    ----------
    tensors : list of arrays
        Site tensors, left bond, physical (``s = 2 i + j``), right bond; the outer
        bonds have dimension 1.

    Returns
    -------
    quimb.tensor.MatrixProductState
        Physical indices ``k0 ... k{N-1}``, site tags ``I0 ...``.
    """
    import quimb.tensor as qtn

    arrays = list(tensors)
    n = len(arrays)
    if n == 1:
        # quimb needs two sites for an MPS; a single dipole is a plain tensor network
        return qtn.TensorNetwork([qtn.Tensor(do("reshape", arrays[0], (4,)), inds=("k0",),
                                             tags={"I0"})])
    squeezed = []
    for a, x in enumerate(arrays):
        if a == 0:
            x = x[0]                       # (4, Dr)
        elif a == n - 1:
            x = x[:, :, 0]                 # (Dl, 4)
        squeezed.append(x)
    return qtn.MatrixProductState(squeezed, shape="lpr")


def from_quimb(state) -> list:
    """The ``(Dl, 4, Dr)`` site arrays of a quimb MPS made by :func:`to_quimb` (or any MPS
    with physical indices ``k{a}`` and tags ``I{a}``)."""
    import quimb.tensor as qtn

    if not isinstance(state, qtn.MatrixProductState):
        t = state.tensors[0]
        return [do("reshape", t.data, (1, 4, 1))]
    n = state.L
    out = []
    for a in range(n):
        t = state[a]
        left = [state.bond(a - 1, a)] if a > 0 else []
        right = [state.bond(a, a + 1)] if a < n - 1 else []
        t = t.transpose(*left, state.site_ind(a), *right)
        x = t.data
        if a == 0:
            x = do("reshape", x, (1,) + tuple(x.shape))
        if a == n - 1:
            x = do("reshape", x, tuple(x.shape) + (1,))
        out.append(x)
    return out


def mpo_to_quimb(tensors):
    """A :class:`quimb.tensor.MatrixProductOperator` from ``(Dl, Dr, 4_out, 4_in)`` arrays.

    Upper indices ``k{a}`` are the output, lower ``b{a}`` the input, so
    ``mpo.apply(state)`` is the Liouvillian applied to the vectorised state.
    """
    import quimb.tensor as qtn

    arrays = list(tensors)
    n = len(arrays)
    if n == 1:
        raise ValueError("a one-site Liouvillian is a 4 x 4 matrix; quimb's MPO needs two sites")
    squeezed = []
    for a, w in enumerate(arrays):
        if a == 0:
            w = w[0]                       # (Dr, 4, 4)
        elif a == n - 1:
            w = w[:, 0]                    # (Dl, 4, 4)
        squeezed.append(w)
    return qtn.MatrixProductOperator(squeezed, shape="lrud")


def _arrays(state) -> list:
    if isinstance(state, (list, tuple)):
        return [np.asarray(to_numpy(x)) for x in state]
    return [np.asarray(to_numpy(x)) for x in from_quimb(state)]


def _trace_envs(A):
    """Left and right partial traces ``l[a]`` (sites < a) and ``r[a]`` (sites > a), each
    rescaled to unit max so that long chains stay in range (scales returned as logs)."""
    n = len(A)
    left = [np.ones(1, dtype=complex)]
    for a in range(n - 1):
        v = left[-1] @ np.tensordot(_TRACE, A[a], axes=([0], [1]))
        left.append(v / max(np.abs(v).max(), 1e-300))
    right = [np.ones(1, dtype=complex)]
    for a in range(n - 1, 0, -1):
        v = np.tensordot(_TRACE, A[a], axes=([0], [1])) @ right[-1]
        right.append(v / max(np.abs(v).max(), 1e-300))
    return left, right[::-1]


def reduced_density_matrix(state, sites) -> np.ndarray:
    r"""Reduced density matrix of a block of up to 4 dipoles, unit trace.

    Every other dipole is traced out (a transfer sweep, O(N chi^2)).

    Parameters
    ----------
    state : quimb MatrixProductState or list of (Dl, 4, Dr) arrays
    sites : sequence of int
        Distinct sites, at most 4; the returned matrix orders them as given
        (first site most significant, ``0`` = down).

    Returns
    -------
    (2^k, 2^k) complex ndarray
    """
    A = _arrays(state)
    n = len(A)
    sites = list(sites)
    if not 1 <= len(sites) <= 4:
        raise InvalidSiteError(f"reduced_density_matrix takes 1 to 4 sites, got {len(sites)}; "
                               "for the whole state use density_matrix (N <= 10)")
    for s in sites:
        if not isinstance(s, (int, np.integer)) or not 0 <= s < n:
            raise InvalidSiteError(f"site {s!r} is not an integer in 0..{n - 1}")
    if len(set(sites)) != len(sites):
        raise InvalidSiteError(f"sites must be distinct, got {sites}")
    order = sorted(sites)
    k = len(order)
    # contract left to right; the open physical indices of the block accumulate
    env = np.ones((1,), dtype=complex)       # (open..., bond)
    opened = 0
    for a in range(n):
        if a in order:
            env = np.tensordot(env, A[a], axes=([env.ndim - 1], [0]))   # (..., 4, Dr)
            opened += 1
        else:
            env = np.tensordot(env, np.tensordot(_TRACE, A[a], axes=([0], [1])),
                               axes=([env.ndim - 1], [0]))
        scale = np.abs(env).max()
        if scale > 0:
            env = env / scale
    psi = env.reshape((4,) * k)
    # reorder sites as asked, then split s = 2 i + j
    perm = [order.index(s) for s in sites]
    psi = np.transpose(psi, perm).reshape((2, 2) * k)
    rho = np.transpose(psi, list(range(0, 2 * k, 2)) + list(range(1, 2 * k, 2)))
    rho = rho.reshape(2 ** k, 2 ** k)
    tr = np.trace(rho)
    return rho / tr


def density_matrix(state, max_n: int = 10) -> np.ndarray:
    """The dense ``2^N x 2^N`` density matrix (unit trace), for N <= ``max_n``.

    The row index is ``sum_a i_a 2^(N-1-a)`` (site 0 most significant, 0 = down),
    as in the exact solver.
    """
    A = _arrays(state)
    n = len(A)
    if n > max_n:
        raise TooLargeError(f"density_matrix of N = {n} dipoles would have 4^{n} entries; it is "
                            f"limited to N <= {max_n}. Use reduced_density_matrix for a block, or "
                            "the moments of the result")
    psi = A[0]
    for x in A[1:]:
        psi = np.tensordot(psi, x, axes=([psi.ndim - 1], [0]))
    psi = psi.reshape((2, 2) * n)
    rho = np.transpose(psi, list(range(0, 2 * n, 2)) + list(range(1, 2 * n, 2))).reshape(2 ** n, 2 ** n)
    return rho / np.trace(rho)


def operator_entanglement(state) -> np.ndarray:
    r"""Operator-space entanglement entropy at each of the N - 1 cuts, in bits.

    With ``|rho>> / ||rho||_2 = sum_k s_k |L_k>> |R_k>>`` (Schmidt decomposition of the
    vectorised density matrix across the cut), ``S = -sum_k p_k log2 p_k`` with
    ``p_k = s_k^2 / sum s^2``. It is the log of the bond dimension a product of the two
    halves needs; the MPO solver's bond dimension has to exceed ``2^S``.

    Returns
    -------
    (N - 1,) float ndarray
    """
    from .tdvp import right_canonicalize

    # right-canonical, then sweep left to right taking SVDs of the centre
    A = right_canonicalize(_arrays(state))
    n = len(A)
    out = []
    for a in range(n - 1):
        Dl, d, Dr = A[a].shape
        u, s, vh = np.linalg.svd(A[a].reshape(Dl * d, Dr), full_matrices=False)
        p = s ** 2 / np.sum(s ** 2)
        p = p[p > 1e-300]
        out.append(float(-np.sum(p * np.log2(p))))
        A[a] = u.reshape(Dl, d, -1)
        A[a + 1] = np.tensordot(s[:, None] * vh, A[a + 1], axes=([1], [0]))
    return np.array(out)
