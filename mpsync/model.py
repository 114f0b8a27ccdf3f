"""The dipole system: N two-level dipoles with couplings f, g, detunings and pump.

The master equation (Gamma = 1 by default, lengths in units of lambda,
hbar = 1)::

    d rho/dt = -i [H, rho] + L_f[rho] + L_W[rho]
    H     = 1/2 sum_a delta_a sz_a + 1/2 sum_{a != b} g_ab s+_a s-_b
    L_f   = 1/2 sum_{a,b} f_ab (2 s-_b rho s+_a - s+_a s-_b rho - rho s+_a s-_b),   f_aa = Gamma
    L_W   = W/2 sum_a (2 s+_a rho s-_a - s-_a s+_a rho - rho s-_a s+_a)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import couplings as _c
from .errors import InvalidSystemError

__all__ = ["DipoleSystem", "LindbladDecomposition"]

#: Relative size below which a negative eigenvalue of f counts as round-off.
PSD_RTOL = 1e-9


def _readonly(a):
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class LindbladDecomposition:
    """f = V diag(rates) V^T with the round-off negatives clipped to zero.

    Jump operators of the collective decay: L_k = sqrt(rates[k]) sum_b V[b, k] s-_b.
    """

    rates: np.ndarray
    vectors: np.ndarray
    min_eigenvalue: float


@dataclass(frozen=True, eq=False)
class DipoleSystem:
    """N two-level dipoles with collective decay f, exchange g, detunings and pump.

    Instances are immutable; use :meth:`replace` to derive a modified system.
    Prefer the constructors :meth:`chain`, :meth:`from_positions`,
    :meth:`all_to_all`, :meth:`power_law` and :meth:`from_matrices`.

    Parameters
    ----------
    f : (N, N) array
        Collective decay matrix, real symmetric, ``f_aa = gamma``.
    g : (N, N) array
        Coherent exchange matrix, real symmetric, ``g_aa = 0``.
    delta : (N,) array
        Detunings delta_a (units of Gamma).
    W : float
        Incoherent pump rate, W >= 0.
    gamma : float
        Single-atom decay rate Gamma > 0 (the unit of rates).
    positions : (N, 3) array, optional
        Positions in units of lambda.
    dipole : (3,) array, optional
        Unit dipole orientation.
    lattice_shape : tuple of int, optional
        ``(rows, cols)`` when the sites form a row-major lattice (used by
        :meth:`~mpsync.result.SteadyState.cluster_ZQ`); ``(N,)`` for a chain.
    label : str
        A short description used in outputs.
    """

    f: np.ndarray
    g: np.ndarray
    delta: np.ndarray
    W: float
    gamma: float = 1.0
    positions: Optional[np.ndarray] = None
    dipole: Optional[np.ndarray] = None
    lattice_shape: Optional[tuple] = None
    label: str = "custom"
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        f = np.asarray(self.f)
        g = np.asarray(self.g)
        if f.ndim != 2 or f.shape[0] != f.shape[1] or f.shape[0] < 1:
            raise InvalidSystemError(f"f must be a square N x N matrix, got shape {f.shape}")
        n = f.shape[0]
        if g.shape != (n, n):
            raise InvalidSystemError(f"g must have the shape of f, {(n, n)}, got {g.shape}")
        for name, m in (("f", f), ("g", g)):
            if np.iscomplexobj(m):
                if np.any(np.abs(m.imag) > 0):
                    raise InvalidSystemError(f"{name} must be real, got complex entries")
                m = m.real
            if not np.all(np.isfinite(m)):
                raise InvalidSystemError(f"{name} has non-finite entries (nan or inf)")
            asym = np.max(np.abs(m - m.T)) if n > 1 else 0.0
            if asym > 1e-12 * max(1.0, np.max(np.abs(m))):
                raise InvalidSystemError(f"{name} must be symmetric: max |{name} - {name}^T| = {asym:.3g}")
        f = np.real(f).astype(float)
        g = np.real(g).astype(float)
        gamma = float(self.gamma)
        if not np.isfinite(gamma) or gamma <= 0:
            raise InvalidSystemError(f"gamma must be a positive finite rate, got {self.gamma}")
        W = float(self.W)
        if not np.isfinite(W) or W < 0:
            raise InvalidSystemError(f"the pump W must be finite and >= 0, got {self.W}")
        if not np.allclose(np.diag(f), gamma, rtol=1e-12, atol=1e-12):
            raise InvalidSystemError(f"the diagonal of f must equal gamma = {gamma} (f_aa = Gamma)")
        if np.any(np.diag(g) != 0):
            raise InvalidSystemError("the diagonal of g must be zero")
        delta = np.zeros(n) if self.delta is None else np.asarray(self.delta, dtype=float)
        if delta.ndim == 0:
            delta = np.full(n, float(delta))
        if delta.shape != (n,):
            raise InvalidSystemError(f"delta must have shape ({n},), got {delta.shape}")
        if not np.all(np.isfinite(delta)):
            raise InvalidSystemError("delta has non-finite entries (nan or inf)")
        pos = None
        if self.positions is not None:
            pos = np.asarray(self.positions, dtype=float)
            if pos.ndim != 2 or pos.shape[0] != n or pos.shape[1] > 3:
                raise InvalidSystemError(f"positions must have shape ({n}, 3), got {pos.shape}")
            pos = np.pad(pos, ((0, 0), (0, 3 - pos.shape[1])))
        set_ = object.__setattr__
        set_(self, "f", _readonly((f + f.T) / 2))
        set_(self, "g", _readonly((g + g.T) / 2))
        set_(self, "delta", _readonly(delta))
        set_(self, "W", W)
        set_(self, "gamma", gamma)
        set_(self, "positions", None if pos is None else _readonly(pos))
        if self.dipole is not None:
            set_(self, "dipole", _readonly(np.asarray(self.dipole, dtype=float)))
        if self.lattice_shape is not None:
            shape = tuple(int(s) for s in np.atleast_1d(self.lattice_shape))
            if int(np.prod(shape)) != n:
                raise InvalidSystemError(f"lattice_shape {shape} does not hold N = {n} sites")
            set_(self, "lattice_shape", shape)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def chain(cls, n, spacing, theta, W, delta=None, gamma=1.0):
        """Equally spaced chain of dipoles with full dipolar f and g.

        Parameters
        ----------
        n : int
            Number of dipoles.
        spacing : float
            Lattice spacing in units of lambda.
        theta : float or "magic"
            Angle between the dipole moment and the chain axis, in radians;
            ``"magic"`` is arccos(1/sqrt 3), where the near-field terms vanish.
        W : float
            Incoherent pump rate.
        delta : float or (N,) array, optional
            Detunings.
        gamma : float
            Single-atom decay rate.

        Examples
        --------
        >>> sys = DipoleSystem.chain(6, spacing=0.1, theta="magic", W=2.0)
        >>> sys.n
        6
        """
        n = _check_n(n)
        spacing = float(spacing)
        if not np.isfinite(spacing) or spacing <= 0:
            raise InvalidSystemError(f"spacing must be > 0 (units of lambda), got {spacing}")
        th = _c.parse_theta(theta)
        pos = _c.chain_positions(n, spacing)
        dipole = np.array([np.cos(th), np.sin(th), 0.0])
        f, g = _c.dipolar_matrices(pos, dipole, gamma)
        return cls(f, g, delta, W, gamma, positions=pos, dipole=dipole, lattice_shape=(n,),
                   label=f"chain(n={n}, spacing={spacing:g}, theta={th:.6g})")

    @classmethod
    def from_positions(cls, positions, dipole, W, delta=None, gamma=1.0):
        """Any 1D/2D/3D arrangement; each pair's angle follows from the geometry.

        Parameters
        ----------
        positions : (N, d) array, d <= 3
            Positions in units of lambda.
        dipole : (3,) array
            Common dipole orientation.
        """
        try:
            f, g = _c.dipolar_matrices(positions, dipole, gamma)
        except ValueError as exc:
            raise InvalidSystemError(str(exc)) from None
        d = np.asarray(dipole, dtype=float)
        return cls(f, g, delta, W, gamma, positions=np.asarray(positions, float),
                   dipole=d / np.linalg.norm(d), label=f"positions(n={len(f)})")

    @classmethod
    def all_to_all(cls, n, f_eff, W, g_eff=0.0, delta=None, gamma=1.0):
        """All-to-all ensemble: f_ab = f_eff / N, g_ab = g_eff / N for a != b."""
        n = _check_n(n)
        for name, v in (("f_eff", f_eff), ("g_eff", g_eff)):
            if not np.isfinite(float(v)):
                raise InvalidSystemError(f"{name} must be finite, got {v}")
        f, g = _c.all_to_all_matrices(n, float(f_eff), float(g_eff), gamma)
        return cls(f, g, delta, W, gamma,
                   label=f"all_to_all(n={n}, f_eff={float(f_eff):g}, g_eff={float(g_eff):g})")

    @classmethod
    def power_law(cls, shape, alpha, W, f0=0.25, gamma=1.0, delta=None):
        """Power-law decay f_ab = f0 * gamma * r_ab^-alpha, g = 0, unit spacing.

        Parameters
        ----------
        shape : int or (rows, cols)
            A chain of ``shape`` sites or a row-major square lattice.
        alpha : float
            Power-law exponent.
        """
        if np.ndim(shape) == 0:
            n = _check_n(shape)
            pos, lshape = _c.chain_positions(n, 1.0), (n,)
        else:
            rows, cols = (int(s) for s in shape)
            _check_n(rows * cols)
            pos, lshape = _c.lattice_positions(rows, cols), (rows, cols)
        alpha = float(alpha)
        if not np.isfinite(alpha) or alpha < 0:
            raise InvalidSystemError(f"alpha must be finite and >= 0, got {alpha}")
        f = _c.power_law_matrix(pos, alpha, f0, gamma)
        return cls(f, np.zeros_like(f), delta, W, gamma, positions=pos, lattice_shape=lshape,
                   label=f"power_law(shape={lshape}, alpha={alpha:g})")

    @classmethod
    def from_matrices(cls, f, g, W, delta=None, gamma=None):
        """Arbitrary real symmetric f and g; gamma defaults to the diagonal of f."""
        f = np.asarray(f)
        if gamma is None:
            if f.ndim != 2 or f.shape[0] == 0:
                raise InvalidSystemError(f"f must be a square N x N matrix, got shape {f.shape}")
            gamma = float(np.real(f[0, 0]))
        return cls(f, g, delta, W, gamma)

    # ------------------------------------------------------------------ properties
    @property
    def n(self) -> int:
        """Number of dipoles N."""
        return self.f.shape[0]

    @property
    def f_eff(self) -> float:
        """f_eff = sum_{a != b} f_ab / (N - 1) (seed supplement)."""
        if self.n == 1:
            return 0.0
        return float((self.f.sum() - np.trace(self.f)) / (self.n - 1))

    @property
    def g_eff(self) -> float:
        """g_eff = sum_{a != b} g_ab / (N - 1)."""
        if self.n == 1:
            return 0.0
        return float(self.g.sum() / (self.n - 1))

    @property
    def is_permutation_symmetric(self) -> bool:
        """True when off-diagonal f and g are each uniform and delta is uniform."""
        n = self.n
        if n == 1:
            return True
        off = ~np.eye(n, dtype=bool)
        fo, go = self.f[off], self.g[off]
        tol = 1e-12 * max(1.0, np.abs(fo).max(), np.abs(go).max())
        return bool(np.ptp(fo) <= tol and np.ptp(go) <= tol and np.ptp(self.delta) <= 1e-12)

    def replace(self, **changes) -> "DipoleSystem":
        """A copy with some fields changed, e.g. ``system.replace(W=3.0)``."""
        changes.setdefault("_cache", {})
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ checks
    def lindblad_decomposition(self, method: str = "this method") -> LindbladDecomposition:
        """Eigen-decomposition f = V diag(l) V^T, checking that f is positive semidefinite.

        Round-off negatives (|l| <= 1e-9 max|l|) are clipped to zero. A clearly
        negative eigenvalue raises :class:`InvalidSystemError` naming it: the
        master equation is then not of Lindblad form. Mean-field and cumulant
        equations do not need Lindblad form and remain available.
        """
        if "lindblad" not in self._cache:
            lam, vec = np.linalg.eigh(self.f)
            self._cache["lindblad"] = (lam, vec)
        lam, vec = self._cache["lindblad"]
        scale = max(np.max(np.abs(lam)), self.gamma)
        lmin = float(lam[0])
        if lmin < -PSD_RTOL * scale:
            raise InvalidSystemError(
                f"f is not positive semidefinite (smallest eigenvalue {lmin:.6g}), so the master "
                f"equation is not of Lindblad form and {method} cannot be used; "
                "method='meanfield' or 'cumulant' do not need Lindblad form"
            )
        return LindbladDecomposition(np.clip(lam, 0.0, None), vec, lmin)

    def check_lindblad(self, method: str = "this method") -> None:
        """Raise if f is not positive semidefinite (see :meth:`lindblad_decomposition`)."""
        self.lindblad_decomposition(method)

    def describe(self) -> dict:
        """Small JSON-friendly summary."""
        return {
            "label": self.label,
            "N": self.n,
            "W": self.W,
            "gamma": self.gamma,
            "f_eff": self.f_eff,
            "g_eff": self.g_eff,
            "delta_spread": float(np.ptp(self.delta)),
        }

    def __repr__(self):
        return f"DipoleSystem({self.label}, N={self.n}, W={self.W:g}, gamma={self.gamma:g})"


def _check_n(n) -> int:
    try:
        n_int = int(n)
    except (TypeError, ValueError):
        raise InvalidSystemError(f"N must be a positive integer, got {n!r}") from None
    if n_int != n or n_int < 1:
        raise InvalidSystemError(f"N must be a positive integer, got {n!r}")
    return n_int
