"""Krylov (Arnoldi) exponential ``exp(t A) v`` of a linear map given only by its action.

One implementation for every solver that exponentiates a non-Hermitian generator
it does not store: the local generators of TDVP (:mod:`.mpo.tdvp`) and the exact
solver's matrix-free sector Liouvillian (:func:`.exact.evolve` beyond the sizes
where the sparse matrix fits). Array calls go through :mod:`autoray`, so ``v`` may
be a numpy, cupy or torch array; the small Hessenberg matrix lives on the host.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from autoray import do, to_numpy

__all__ = ["expm_krylov"]


def _fnorm(x) -> float:
    return float(to_numpy(do("linalg.norm", do("reshape", x, (-1,)))))


def expm_krylov(matvec, v, t, tol: float = 1e-10, m_max: int = 30):
    r"""``exp(t A) v`` for a (non-Hermitian) linear map ``A`` given by ``matvec``.

    Arnoldi with classical Gram-Schmidt and one re-orthogonalisation (CGS2, as
    stable as modified Gram-Schmidt) builds ``A V_m = V_m H_m + h_{m+1,m} v_{m+1} e_m^T``;
    then ``exp(t A) v ~ |v| V_m exp(t H_m) e_1`` with the a-posteriori error estimate
    ``|t h_{m+1,m} [exp(t H_m)]_{m,1}|`` (Saad 1992). When ``m_max`` vectors do
    not reach ``tol`` (relative to ``|v|``), the step is split (as in Expokit)
    and the Krylov space rebuilt from the partial result.

    The basis is one ``(m_max + 1, size)`` array of the backend of ``v``, so each
    orthogonalisation is two matrix-vector products on the device, not ``2 j``
    small operations; only the small Hessenberg matrix lives on the host.

    Parameters
    ----------
    matvec : callable
        Array -> array of the same shape.
    v : array
    t : float
        Time; negative values give backward steps.
    tol : float
        Relative error target of each sub-step.
    m_max : int
        Largest Krylov dimension.

    Returns
    -------
    array
        Of the shape of ``v`` (the number of matvecs is counted by the caller).
    """
    shape = tuple(v.shape)
    size = int(np.prod(shape))
    m_max = max(1, min(m_max, size))
    out = do("reshape", v, (size,))
    done = 0.0  # fraction of t already applied
    V = None
    while done < 1.0 - 1e-14:
        beta = _fnorm(out)
        if beta == 0.0:
            break
        if V is None:
            V = do("zeros", (m_max + 1, size), dtype=out.dtype, like=out)
        V[0] = out / beta
        H = np.zeros((m_max + 1, m_max), dtype=complex)
        frac = 1.0 - done
        coeffs = None
        m = 0
        for j in range(m_max):
            w = do("reshape", matvec(do("reshape", V[j], shape)), (size,))
            Vj = V[: j + 1]
            for _ in range(2):
                h = do("tensordot", do("conj", Vj), w, axes=([1], [0]))         # V^H w
                w = w - do("tensordot", h, Vj, axes=([0], [0]))                 # w - V h
                H[: j + 1, j] += to_numpy(h)
            hn = _fnorm(w)
            H[j + 1, j] = hn
            m = j + 1
            scale = max(1.0, np.abs(H[: m + 1, :m]).max())
            breakdown = hn <= 1e-13 * scale
            E = scipy.linalg.expm(frac * t * H[:m, :m])[:, 0]
            err = abs(frac * t * hn * E[m - 1])
            if breakdown or err <= tol * max(1.0, np.abs(E).max()):
                coeffs = E
                break
            if j + 1 < m_max:
                V[j + 1] = w / hn
        if coeffs is None:
            # the full space did not converge for the remaining time: shrink the sub-step
            m = m_max
            while True:
                frac *= 0.5
                E = scipy.linalg.expm(frac * t * H[:m, :m])[:, 0]
                err = abs(frac * t * H[m, m - 1] * E[m - 1])
                if err <= tol * max(1.0, np.abs(E).max()) or frac < 1e-8:
                    coeffs = E
                    break
        c = do("asarray", (beta * coeffs).astype(complex), like=out)
        out = do("tensordot", c, V[: len(coeffs)], axes=([0], [0]))
        done += frac
    return do("reshape", out, shape)
