"""What every MPO run needs first: the checks, the Liouvillian MPO, the initial MPS, the
memory estimate, and the moments of a final state."""

from __future__ import annotations

import numpy as np
from autoray import do, to_numpy

from ...errors import InvalidOptionError, check_memory
from ...result import Moments
from ...states import product_state
from .vectorized import moments as _vectorized_moments
from .vectorized import normalize_trace

__all__ = ["check_chain", "build_mpo", "initial_mps", "estimate_memory", "check_fits",
           "full_bond", "moments_of", "to_backend", "positive"]


def check_chain(system) -> None:
    """Raise :class:`~mpsync.errors.NotApplicableError` unless ``system`` is a 1D chain (see
    :func:`.liouvillian.check_chain`; systems without positions are taken in index order)."""
    from .liouvillian import check_chain as _check

    _check(system)


def positive(name: str, value, integer: bool = False, allow_zero: bool = False):
    """``value`` as a float (or int) after checking it is finite and > 0 (>= 0 with
    ``allow_zero``); otherwise :class:`~mpsync.errors.InvalidOptionError` naming it."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InvalidOptionError(f"method='mpo': option {name} must be a number, got {value!r}") from None
    ok = np.isfinite(x) and (x >= 0 if allow_zero else x > 0)
    if integer:
        ok = ok and float(x).is_integer()
    if not ok:
        kind = "an integer" if integer else "a number"
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidOptionError(f"method='mpo': option {name} must be {kind} {bound}, got {value!r}")
    return int(x) if integer else x


def to_backend(x, like):
    """A complex numpy array as an array of the autoray backend ``like``."""
    x = np.asarray(x, dtype=complex)
    if like in (None, "numpy"):
        return x
    return do("asarray", x, like=like)


def build_mpo(system, mpo_cutoff=1e-10, like="numpy"):
    """Liouvillian MPO tensors ``(Dl, Dr, 4, 4)`` as arrays of the backend ``like``, and
    the MPO bond dimensions."""
    from .liouvillian import liouvillian_mpo

    mpo = liouvillian_mpo(system, cutoff=mpo_cutoff)
    tensors = [np.asarray(to_numpy(M), dtype=complex) for M in mpo.tensors]
    return [to_backend(M, like) for M in tensors], list(mpo.bond_dims)


def initial_mps(initial, n, like):
    """The product state ``initial`` as ``(1, 4, 1)`` site tensors."""
    states = product_state(initial, n)
    return [to_backend(np.asarray(rho, dtype=complex).reshape(1, 4, 1), like) for rho in states]


def full_bond(n: int) -> int:
    """The largest bond any state of n sites needs: ``max_k 4^min(k, n - k)``."""
    return 4 ** (n // 2)


def estimate_memory(n: int, max_bond: int, mpo_bond: int, krylov_dim: int = 30) -> float:
    """Peak bytes of a TDVP run: 2 N environments (chi^2 D), the Krylov basis of
    two-site blocks (16 chi^2 each) and the precomputed env-MPO products (16 chi^2 D)."""
    chi, D = int(max_bond), int(mpo_bond)
    return 16.0 * (2 * n * chi * chi * D + (krylov_dim + 4) * 16 * chi * chi + 2 * 16 * chi * chi * D)


def check_fits(n, chi, mpo_dims, krylov_dim) -> None:
    """Raise :class:`~mpsync.errors.TooLargeError` if bond dimension ``chi`` will not fit."""
    need = estimate_memory(n, min(chi, full_bond(n)), max(mpo_dims or [1]), krylov_dim)
    check_memory(need, f"method='mpo' with N={n}, max_bond={chi}",
                 "a smaller max_bond (or the default ladder, which stops at the memory limit)")


def moments_of(mps) -> Moments:
    """Moments of the unit-trace, Hermitian part of the state: real ``sz`` and ``zz``,
    Hermitian ``C`` (removes round-off anti-Hermitian parts)."""
    mps = normalize_trace([np.asarray(to_numpy(A)) for A in mps])
    m = _vectorized_moments(mps)
    C = np.asarray(m.correlations)
    C = 0.5 * (C + C.conj().T)
    extra = {}
    for name in ("sm", "zsm", "smsm"):
        v = getattr(m, name, None)
        if v is not None:
            extra[name] = v
    return Moments(np.real(m.sz), C, np.real(m.zz), **extra)
