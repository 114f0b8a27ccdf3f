"""What every method's ``two_time`` shares: the pairs, the delays and the assembled result.

A method's ``two_time(system, taus, pairs, steady, *, <its options>)`` computes
G_ab(tau) = <s+_a(tau) s-_b(0)> for the sites the pairs need and hands them to
:func:`assemble`, which forms Z_ab(tau) = G_aa + G_ab + G_ba + G_bb
(docs/physics.md#two-time) the same way for every method and returns the one
:class:`~mpsync.result.TwoTimeResult`.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import InvalidSiteError, NotApplicableError
from ..result import SteadyState, TwoTimeResult
from ..states import check_times

__all__ = ["resolve_pairs", "pair_sites", "check_taus", "assemble", "steady_of"]


def _site(x, n, what):
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Integral):
        raise InvalidSiteError(f"pairs: {what} {x!r} is not an integer site index")
    if not 0 <= int(x) < n:
        raise InvalidSiteError(f"pairs: site {int(x)} is out of range for N = {n} dipoles (0 .. {n - 1})")
    return int(x)


def resolve_pairs(pairs, n: int) -> np.ndarray:
    """The requested pairs as an (P, 2) int array.

    Parameters
    ----------
    pairs : None, int, or sequence of (a, b)
        ``None``: the central dipole ``c = N // 2`` against every other, ``(a, c)`` for
        ``a != c`` (a single dipole: ``(0, 0)``); an int ``b``: ``(a, b)`` for every
        ``a != b``; else the listed pairs (``a == b`` allowed: Z_aa = 4 G_aa).
    n : int
        Number of dipoles.

    Raises
    ------
    InvalidSiteError
        A site that is not an integer in ``0 .. N - 1``, or a malformed list.
    """
    if pairs is None:
        if n == 1:
            return np.zeros((1, 2), int)
        c = n // 2
        return np.array([(a, c) for a in range(n) if a != c], int)
    if isinstance(pairs, numbers.Integral) and not isinstance(pairs, (bool, np.bool_)):
        b = _site(pairs, n, "site")
        if n == 1:
            return np.zeros((1, 2), int)
        return np.array([(a, b) for a in range(n) if a != b], int)
    if isinstance(pairs, str):
        raise InvalidSiteError(f"pairs must be None, a site index or a list of (a, b), got {pairs!r}")
    try:
        items = list(pairs)
    except TypeError:
        raise InvalidSiteError(f"pairs must be None, a site index or a list of (a, b), got {pairs!r}") from None
    if not items:
        return np.zeros((0, 2), int)
    out = []
    for p in items:
        try:
            a, b = p
        except (TypeError, ValueError):
            raise InvalidSiteError(f"pairs: each pair must be two site indices (a, b), got {p!r}") from None
        out.append((_site(a, n, "site"), _site(b, n, "site")))
    return np.array(out, int)


def pair_sites(pairs) -> np.ndarray:
    """The distinct sites the pairs involve, ascending."""
    return np.unique(np.asarray(pairs, int).ravel())


def check_taus(taus) -> np.ndarray:
    """Delays (units of 1/Gamma): a non-empty, strictly increasing 1D array of finite values >= 0."""
    return check_times(taus, "taus", strictly_increasing=True)


def _same_system(a, b) -> bool:
    """Whether two systems have the same N, f, g, detunings, pump and Gamma."""
    if a is b:
        return True
    return (a.n == b.n and float(a.W) == float(b.W) and float(a.gamma) == float(b.gamma)
            and all(np.array_equal(np.asarray(getattr(a, k)), np.asarray(getattr(b, k)))
                    for k in ("f", "g", "delta")))


def steady_of(steady, system, method, solve, needs=()):
    """``steady`` if it is this method's steady state of ``system``, else ``solve(system)``.

    ``needs``: the ``extras`` keys the method's regression reads (a steady state loaded
    from a file keeps its moments but not its state vector, so it is refused with one line).
    """
    if steady is None:
        return solve(system)
    if not isinstance(steady, SteadyState):
        raise NotApplicableError(f"steady must be a SteadyState, got {type(steady).__name__}")
    if steady.method != method:
        raise NotApplicableError(f"the steady state given was computed with method='{steady.method}'; "
                                 f"two-time functions of method='{method}' need its own steady state "
                                 f"(pass the system, or a steady state of method='{method}')")
    if not _same_system(steady.system, system):
        raise NotApplicableError("the steady state given belongs to another system (N, f, g, delta, W "
                                 "or Gamma differ); pass the system, or its own steady state")
    missing = [k for k in needs if k not in (steady.extras or {})]
    if missing:
        raise NotApplicableError(f"the steady state given has no {missing[0]!r} (one loaded from a file "
                                 f"keeps only its moments); pass the system to method='{method}' and "
                                 "its steady state is computed again")
    return steady


def assemble(system, method, taus, pairs, G, J=None, errors=None, diagnostics=None,
             G_error=None, G_lower=None, J_lower=None, J_sites=None, J_sites_lower=None) -> TwoTimeResult:
    """The :class:`~mpsync.result.TwoTimeResult` from a method's G_ab(tau).

    Parameters
    ----------
    G : callable (a, b) -> (T,) complex array
        G_ab(tau) = <s+_a(tau) s-_b(0)>; called for (a, a), (a, b), (b, a), (b, b).
    J : (T,) complex array, optional
        <J+(tau) J-(0)>.
    G_error : callable (a, b) -> (T,) array, optional
        Error bar of G_ab(tau); ``errors["Z"]`` is then the sum of the four terms' bars.
    G_lower : callable (a, b) -> (T,) complex array, optional
        G_ab(tau) at a lower accuracy (the MPO's lower bond dimension), giving ``Z_lower``.
    J_lower : (T,) complex array, optional
        J(tau) at that lower accuracy.
    J_sites, J_sites_lower : (N, T) complex arrays, optional
        <s+_a(tau) J-(0)> for every a (and at the lower accuracy).
    """
    pairs = np.asarray(pairs, int).reshape(-1, 2)
    T = np.asarray(taus).size
    Gab = np.empty((len(pairs), T), complex)
    Gba = np.empty_like(Gab)
    Z = np.empty_like(Gab)
    errors = dict(errors or {})
    Zerr = np.empty((len(pairs), T)) if G_error is not None else None
    for p, (a, b) in enumerate(pairs):
        Gab[p], Gba[p] = G(a, b), G(b, a)
        Z[p] = G(a, a) + Gab[p] + Gba[p] + G(b, b)
        if Zerr is not None:
            Zerr[p] = G_error(a, a) + G_error(a, b) + G_error(b, a) + G_error(b, b)
    if Zerr is not None:
        errors["Z"] = Zerr
    Z_lower = None
    if G_lower is not None:
        Z_lower = np.array([G_lower(a, a) + G_lower(a, b) + G_lower(b, a) + G_lower(b, b)
                            for a, b in pairs], complex).reshape(Z.shape)
    return TwoTimeResult(system, method, taus, pairs, Gab, Gba, Z, J, errors, diagnostics,
                         Z_lower, J_lower, J_sites, J_sites_lower)
