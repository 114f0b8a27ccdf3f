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

from ..errors import ConvergenceError

__all__ = ["expm_krylov", "expm_krylov_series", "NonFiniteKrylov"]


class NonFiniteKrylov(ConvergenceError, FloatingPointError):
    """The vector or the generator's action on it is not finite (nan or inf).

    Raised at once: a nan Hessenberg matrix makes every error estimate nan, so the sub-step
    would be halved down to 1e-8 of the step and the exponential would crawl through some
    1e8 sub-steps. Measured: an MPO rung (chain N = 70, chi = 64) whose state went nan ran
    25 minutes until its time budget stopped it. The caller undoes the step
    (:func:`.mpo.relax.relax` treats it as an unstable step)."""


def _fnorm(x) -> float:
    return float(to_numpy(do("linalg.norm", do("reshape", x, (-1,)))))


def _exp_and_error(tau, H, m, hn):
    """``exp(tau H_m) e_1`` and the leading term of its error, ``|tau h_{m+1,m} [phi_1(tau H_m)]_{m,1}|``.

    Both from one exponential of the augmented matrix ``[[tau H_m, 0], [tau h e_m^T, 0]]``
    (its last row holds ``tau h e_m^T phi_1(tau H_m)``; Saad 1992, Sidje 1998). The cheaper
    ``|tau h [exp(tau H_m)]_{m,1}|`` is not an error bound for a dissipative generator: a state
    decaying at rate N W (all dipoles down under a pump) makes ``exp(tau H_1)`` underflow, and
    a one-vector space whose answer has lost the conserved trace was accepted (found at N = 7-11,
    one step of t = 2); ``phi_1`` decays only like ``1 / (tau |H|)``.
    """
    aug = np.zeros((m + 1, m + 1), dtype=complex)
    aug[:m, :m] = tau * H[:m, :m]
    aug[m, m - 1] = tau * hn
    F = scipy.linalg.expm(aug)
    return F[:m, 0], abs(F[m, 0])


def expm_krylov(matvec, v, t, tol: float = 1e-10, m_max: int = 30):
    r"""``exp(t A) v`` for a (non-Hermitian) linear map ``A`` given by ``matvec``.

    Arnoldi with classical Gram-Schmidt and one re-orthogonalisation (CGS2, as
    stable as modified Gram-Schmidt) builds ``A V_m = V_m H_m + h_{m+1,m} v_{m+1} e_m^T``;
    then ``exp(t A) v ~ |v| V_m exp(t H_m) e_1`` with the a-posteriori error estimate
    ``|t h_{m+1,m} [phi_1(t H_m)]_{m,1}|``, the leading term of the error series (Saad 1992). When ``m_max`` vectors do
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
    out = None
    for step in _substeps(matvec, v, t, tol, m_max):
        out = step["advance"]()
    if out is None:  # v = 0
        return v
    return do("reshape", out, shape)


def expm_krylov_series(matvec, v, times, observe, tol: float = 1e-10, m_max: int = 30):
    r"""Linear observables of ``exp(t A) v`` at many times, from few Krylov spaces.

    The Arnoldi basis ``V_m`` built for one sub-step of :func:`expm_krylov` gives
    ``exp(s A) v ~ |v| V_m exp(s H_m) e_1`` for every ``s`` up to that sub-step, so the
    output times inside it cost no matvec; and ``observe`` (linear) is applied to the basis
    once per sub-step, not to a vector per time. A dense grid of delays (two-time
    functions) thus costs what the longest delay costs alone.

    Parameters
    ----------
    matvec : callable
        Array -> array of the same shape.
    v : array
    times : array_like
        Increasing times >= 0.
    observe : callable
        Linear map from a ``(k, size)`` block of vectors (rows) to a ``(k, q)`` array.
    tol, m_max
        As in :func:`expm_krylov`: the error estimate is checked at each sub-step's end
        and at every output time inside it; a time whose estimate fails (rare: it is in
        practice below the end's) is propagated on its own Krylov spaces from the
        sub-step's start.

    Returns
    -------
    ndarray
        ``(len(times), q)``: ``observe(exp(t_i A) v)``.

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[-1.0, 2.0], [0.0, -3.0]])
    >>> times = [0.0, 0.5, 1.0]
    >>> got = expm_krylov_series(lambda x: A @ x, np.array([1.0, 1.0]), times, lambda V: V)
    >>> import scipy.linalg
    >>> ref = [scipy.linalg.expm(t * A) @ [1.0, 1.0] for t in times]
    >>> bool(np.allclose(got, ref, atol=1e-12))
    True
    """
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or np.any(np.diff(times) < 0) or (times.size and times[0] < 0):
        raise ValueError("times must be increasing and >= 0")
    size = int(np.prod(tuple(v.shape)))
    flat = do("reshape", v, (size,))
    first = np.asarray(to_numpy(observe(do("reshape", flat, (1, size)))))
    out = np.zeros((times.size,) + first.shape[1:], dtype=complex)
    k = 0
    while k < times.size and times[k] == 0.0:
        out[k] = first[0]
        k += 1
    t_end = float(times[-1]) if times.size else 0.0
    if k == times.size or t_end == 0.0:
        return out
    for step in _substeps(matvec, flat, t_end, tol, m_max):
        t0, t1 = step["start"] * t_end, step["stop"] * t_end
        inside = []
        while k < times.size and times[k] <= t1 * (1 + 1e-14):
            inside.append(k)
            k += 1
        if inside:
            obs = np.asarray(to_numpy(observe(step["basis"])))  # (m, q)
            for j in inside:
                E, err = _exp_and_error(times[j] - t0, step["H"], step["m"], step["h"])
                if err <= tol * max(1.0, np.abs(E).max()):
                    out[j] = step["beta"] * (E @ obs)
                else:
                    # rare: this time's estimate fails where the sub-step's end passed;
                    # propagate the sub-step's start vector to it on its own Krylov spaces
                    x = expm_krylov(matvec, step["beta"] * step["basis"][0], times[j] - t0, tol, m_max)
                    out[j] = np.asarray(to_numpy(observe(do("reshape", x, (1, size)))))[0]
        step["advance"]()
    return out


def _substeps(matvec, v, t, tol, m_max):
    """The accepted sub-steps of the Krylov exponential of ``t A`` applied to ``v``.

    Yields, per sub-step, a dict: ``start`` and ``stop`` (fractions of ``t``), ``basis``
    (the ``(m, size)`` Arnoldi vectors), ``H`` (the Hessenberg matrix), ``m``, ``h``
    (``h_{m+1,m}``), ``beta`` (``|v|`` at the start) and ``advance``: a callable that moves
    to the sub-step's end and returns the flat vector there (call it before the next one).
    """
    shape = tuple(v.shape)
    size = int(np.prod(shape))
    m_max = max(1, min(m_max, size))
    state = {"out": do("reshape", v, (size,))}
    done = 0.0  # fraction of t already applied
    V = None
    while done < 1.0 - 1e-14:
        out = state["out"]
        beta = _fnorm(out)
        if beta == 0.0:
            break
        if not np.isfinite(beta):
            raise NonFiniteKrylov(f"the Krylov exponential's vector has norm {beta}")
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
                # V^H w as conj(V^T conj(w)): conjugating the vector, not the basis, spares a
                # copy of the whole basis per step (its memory and a pass over it)
                h = do("conj", do("tensordot", Vj, do("conj", w), axes=([1], [0])))
                w = w - do("tensordot", h, Vj, axes=([0], [0]))                 # w - V h
                H[: j + 1, j] += to_numpy(h)
            hn = _fnorm(w)
            if not np.isfinite(hn):
                raise NonFiniteKrylov(f"the generator's action has norm {hn} (Krylov vector {j + 1})")
            H[j + 1, j] = hn
            m = j + 1
            scale = max(1.0, np.abs(H[: m + 1, :m]).max())
            breakdown = hn <= 1e-13 * scale
            E, err = _exp_and_error(frac * t, H, m, hn)
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
                E, err = _exp_and_error(frac * t, H, m, H[m, m - 1])
                if err <= tol * max(1.0, np.abs(E).max()) or frac < 1e-8:
                    coeffs = E
                    break
        basis = V[: len(coeffs)]

        def advance(coeffs=coeffs, beta=beta, basis=basis):
            c = do("asarray", (beta * coeffs).astype(complex), like=state["out"])
            state["out"] = do("tensordot", c, basis, axes=([0], [0]))
            return state["out"]

        yield {"start": done, "stop": done + frac, "basis": basis, "H": H, "m": len(coeffs),
               "h": H[len(coeffs), len(coeffs) - 1], "beta": beta, "advance": advance}
        done += frac
