"""Result types shared by every solver.

A solver produces :class:`Moments` (one- and two-point functions); every
observable of the paper follows from them through :mod:`mpsync.observables`,
so it is written once, not once per solver.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from . import observables as obs

__all__ = ["Moments", "SteadyState", "TimeSeries", "TwoTimeResult", "Spectrum"]


@dataclass
class Moments:
    """One- and two-point moments of N dipoles.

    Attributes
    ----------
    sz : (N,) float
        <sz_a>.
    correlations : (N, N) complex
        C_ab = <s+_a s-_b>; the diagonal is (1 + sz_a) / 2.
    zz : (N, N) float
        <sz_a sz_b>; the diagonal is 1.
    sm : (N,) complex, optional
        <s-_a>; zero (omitted) for U(1)-symmetric states.
    zsm : (N, N) complex, optional
        <sz_a s-_b> (a != b); omitted for U(1)-symmetric states.
    smsm : (N, N) complex, optional
        <s-_a s-_b> (a != b); omitted for U(1)-symmetric states.
    """

    sz: np.ndarray
    correlations: np.ndarray
    zz: np.ndarray
    sm: Optional[np.ndarray] = None
    zsm: Optional[np.ndarray] = None
    smsm: Optional[np.ndarray] = None

    def __post_init__(self):
        self.sz = np.asarray(self.sz, dtype=float)
        self.correlations = np.asarray(self.correlations, dtype=complex)
        self.zz = np.asarray(np.real(self.zz), dtype=float)
        for name in ("sm", "zsm", "smsm"):
            v = getattr(self, name)
            if v is not None:
                setattr(self, name, np.asarray(v, dtype=complex))

    @property
    def n(self) -> int:
        return self.sz.shape[-1]

    @classmethod
    def of_product_state(cls, sz, sm) -> "Moments":
        """Moments of a product state from <sz_a> and <s-_a>: for a != b,
        C_ab = <s+_a><s-_b>, zz_ab = sz_a sz_b, <sz_a s-_b> = sz_a <s-_b>, <s-_a s-_b> = <s-_a><s-_b>."""
        sz = np.asarray(sz, dtype=float)
        m = np.asarray(sm, dtype=complex)
        C = np.outer(np.conj(m), m)
        np.fill_diagonal(C, 0.5 * (1 + sz))
        zz = np.outer(sz, sz)
        np.fill_diagonal(zz, 1.0)
        zsm = np.outer(sz, m)
        np.fill_diagonal(zsm, 0.0)
        smsm = np.outer(m, m)
        np.fill_diagonal(smsm, 0.0)
        return cls(sz, C, zz, sm=m, zsm=zsm, smsm=smsm)


class _Observables:
    """Observables from moments; mixed into both result types.

    Subclasses provide ``moments`` (possibly with a leading time axis) and
    ``system``.
    """

    moments: Moments

    @property
    def n(self) -> int:
        return self.moments.n

    @property
    def sz(self) -> np.ndarray:
        """<sz_a>."""
        return self.moments.sz

    @property
    def correlations(self) -> np.ndarray:
        """C_ab = <s+_a s-_b>."""
        return self.moments.correlations

    @property
    def zz(self) -> np.ndarray:
        """<sz_a sz_b>."""
        return self.moments.zz

    @property
    def sm(self) -> np.ndarray:
        """<s-_a> (zero for U(1)-symmetric states)."""
        m = self.moments
        return m.sm if m.sm is not None else np.zeros(m.sz.shape, dtype=complex)

    @property
    def ZQ2(self):
        """Signed Z_Q^2: mean over ordered pairs a != b of Re C_ab."""
        return obs.ZQ2_from_correlations(self.correlations)

    @property
    def ZQ(self):
        """Z_Q = sqrt(max(Z_Q^2, 0)); its maximum is 1/sqrt(8)."""
        return np.sqrt(np.maximum(self.ZQ2, 0.0))

    @property
    def Z(self):
        """Mean-field order parameter Z = |(1/N) sum_a <s+_a>| (0 in the U(1) sector)."""
        return np.abs(np.mean(np.conj(self.sm), axis=-1))

    @property
    def total_excitation(self):
        """<J_z> + N/2 = number of excitations."""
        return np.sum((1 + self.sz) / 2, axis=-1)


class SteadyState(_Observables):
    """Steady state of a dipole system, as produced by any solver.

    Attributes
    ----------
    system : DipoleSystem
    moments : Moments
    method : str
    diagnostics : dict
        Solver-specific: time taken (``seconds``), residual, sizes, ...
    errors : dict
        Error estimates: standard errors of stochastic estimates (``sz``,
        ``correlations``, ``ZQ2``), or for ``method="mpo"`` the difference between the
        last two rungs of the bond-dimension ladder (``ZQ``, ``ZQ2``, ``sz``); empty
        for exact solvers.
    extras : dict
        Solver-specific objects (e.g. the density matrix or the MPS).
    """

    def __init__(self, system, moments: Moments, method: str, diagnostics: dict | None = None,
                 errors: dict | None = None, extras: dict | None = None):
        self.system = system
        self.moments = moments
        self.method = method
        self.diagnostics = dict(diagnostics or {})
        self.errors = dict(errors or {})
        self.extras = dict(extras or {})

    @property
    def state(self):
        """The solver's own representation of the state, where it has one: for
        ``method="mpo"`` a :class:`quimb.tensor.MatrixProductState` of the unit-trace
        vectorised density matrix (site ``a`` has index ``k{a}`` of dimension 4, value
        ``2 i + j`` for ``|i><j|``; see :mod:`mpsync.solvers.mpo.state`). None otherwise."""
        return self.extras.get("state")

    def __repr__(self):
        return (f"SteadyState(method={self.method!r}, N={self.n}, ZQ={self.ZQ:.6g}, "
                f"ZQ2={self.ZQ2:.6g}, mean sz={np.mean(self.sz):.6g})")

    # ---------------------------------------------------------------- pair quantities
    def pair_density_matrix(self, a: int, b: int) -> np.ndarray:
        """4 x 4 reduced density matrix of dipoles a and b (basis dd, du, ud, uu)."""
        from .errors import InvalidSiteError

        m = self.moments
        for i in (a, b):
            if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
                raise InvalidSiteError(f"pair_density_matrix: site {i!r} is not an integer index")
            if not 0 <= i < self.n:
                raise InvalidSiteError(f"pair_density_matrix: site {i} is out of range for N = {self.n} "
                                       f"dipoles (0 .. {self.n - 1})")
        if a == b:
            raise InvalidSiteError(f"pair_density_matrix needs two different sites, got ({a}, {b})")
        kw = {}
        if m.sm is not None:
            kw.update(sm_a=m.sm[a], sm_b=m.sm[b])
        if m.zsm is not None:
            kw.update(zsm_ab=m.zsm[a, b], zsm_ba=m.zsm[b, a])
        if m.smsm is not None:
            kw.update(smsm_ab=m.smsm[a, b])
        return obs.pair_density_matrix(m.sz[a], m.sz[b], m.correlations[a, b], m.zz[a, b], **kw)

    def mutual_information(self, a: int = 0, b: int = 1) -> float:
        """Mutual information of dipoles a and b, in bits.

        If the pair matrix is not a state (eigenvalue < -``observables.STATE_TOL``):
        raises for exact methods, NaN with an ``UnphysicalStateWarning`` otherwise."""
        return obs.mutual_information(self.pair_density_matrix(a, b),
                                      on_unphysical=obs.unphysical_policy(self.method))

    def discord(self, a: int = 0, b: int = 1) -> float:
        """Quantum discord D_{B|A} of dipoles a and b, in bits."""
        return obs.quantum_discord(self.pair_density_matrix(a, b),
                                   on_unphysical=obs.unphysical_policy(self.method))

    def cluster_ZQ2(self, d: int) -> float:
        """Signed cluster Z_Q^d squared over windows of d sites along lattice rows."""
        return obs.cluster_ZQ2(self.correlations, d, self.system.lattice_shape)

    def cluster_ZQ(self, d: int) -> float:
        """Cluster correlation Z_Q^d = sqrt(max(cluster_ZQ2(d), 0))."""
        return float(np.sqrt(max(self.cluster_ZQ2(d), 0.0)))

    # ---------------------------------------------------------------- export
    def to_dict(self, arrays: bool = False) -> dict:
        """JSON-friendly summary: method, N, ZQ, ZQ2, sz, diagnostics (and full arrays)."""
        out = {
            "method": self.method,
            "N": self.n,
            "system": self.system.describe() if self.system is not None else None,
            "ZQ": float(self.ZQ),
            "ZQ2": float(self.ZQ2),
            "sz": [float(x) for x in self.sz],
            "seconds": float(self.diagnostics.get("seconds", float("nan"))),
            "diagnostics": _jsonable(self.diagnostics),
        }
        if self.errors:
            out["errors"] = _jsonable(self.errors)
        if arrays:
            out["correlations_real"] = np.real(self.correlations).tolist()
            out["correlations_imag"] = np.imag(self.correlations).tolist()
            out["zz"] = self.zz.tolist()
        return out

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(**kw))

    def save(self, path) -> None:
        """Save the full moment arrays, the system and the diagnostics to a ``.npz`` file
        (read back with :meth:`load`)."""
        _save(path, self)

    @classmethod
    def load(cls, path) -> "SteadyState":
        """A :class:`SteadyState` saved by :meth:`save` (moments, system, diagnostics, errors)."""
        system, moments, method, diagnostics, errors, _ = _load(path, "steady state")
        return cls(system, moments, method, diagnostics, errors)


class TimeSeries(_Observables):
    """Observables over time, shared by every solver's ``evolve``.

    ``moments`` holds arrays with a leading time axis: ``sz`` (T, N),
    ``correlations`` (T, N, N), ``zz`` (T, N, N). ``ZQ2`` and ``ZQ`` are (T,).
    """

    def __init__(self, system, times, moments: Moments, method: str,
                 diagnostics: dict | None = None, errors: dict | None = None,
                 extras: dict | None = None):
        self.system = system
        self.times = np.asarray(times, dtype=float)
        self.moments = moments
        self.method = method
        self.diagnostics = dict(diagnostics or {})
        self.errors = dict(errors or {})
        self.extras = dict(extras or {})

    @classmethod
    def from_snapshots(cls, system, times, snapshots, method, **kw):
        """Stack a list of per-time :class:`Moments` into one time series."""
        def stack(name):
            vals = [getattr(s, name) for s in snapshots]
            return None if any(v is None for v in vals) else np.stack(vals)
        m = Moments(stack("sz"), stack("correlations"), stack("zz"),
                    stack("sm"), stack("zsm"), stack("smsm"))
        return cls(system, times, m, method, **kw)

    def __len__(self):
        return len(self.times)

    def __repr__(self):
        return f"TimeSeries(method={self.method!r}, N={self.n}, T={len(self.times)}, t_final={self.times[-1]:g})"

    def at(self, index: int) -> SteadyState:
        """The snapshot at a time index, as a :class:`SteadyState`-like object."""
        m = self.moments
        pick = lambda v: None if v is None else v[index]  # noqa: E731
        snap = Moments(m.sz[index], m.correlations[index], m.zz[index],
                       pick(m.sm), pick(m.zsm), pick(m.smsm))
        diag = dict(self.diagnostics, time=float(self.times[index]))
        return SteadyState(self.system, snap, self.method, diag)

    @property
    def n(self) -> int:
        return self.moments.sz.shape[-1]

    def to_dict(self) -> dict:
        """JSON-friendly summary: method, N, times, ZQ2 and sz_mean per time, seconds, diagnostics."""
        return {
            "method": self.method,
            "N": self.n,
            "times": self.times.tolist(),
            "ZQ2": np.atleast_1d(self.ZQ2).tolist(),
            "sz_mean": np.mean(self.sz, axis=-1).tolist(),
            "seconds": float(self.diagnostics.get("seconds", float("nan"))),
            "diagnostics": _jsonable(self.diagnostics),
        }

    def save(self, path) -> None:
        """Save the times, the moment arrays (leading time axis), the system, the diagnostics
        and the standard errors to a ``.npz`` file (read back with :meth:`load`)."""
        _save(path, self, times=self.times)

    @classmethod
    def load(cls, path) -> "TimeSeries":
        """A :class:`TimeSeries` saved by :meth:`save`."""
        system, moments, method, diagnostics, errors, data = _load(path, "time series")
        if "times" not in data:
            from .errors import MpsyncError

            raise MpsyncError(f"{path} holds a steady state, not a time series; use SteadyState.load")
        return cls(system, data["times"], moments, method, diagnostics, errors)


@dataclass
class Spectrum:
    """An emission spectrum and how it was computed (:meth:`TwoTimeResult.spectrum`).

    Attributes
    ----------
    omega : ndarray
        Frequencies (units of Gamma) relative to the frame of H (docs/physics.md#two-time):
        a dipole of detuning delta emits at omega = delta.
    S : ndarray
        S(omega) = (1/pi) Re int_0^tau_max dtau w(tau) exp(-i omega tau) <J+(tau) J-(0)>,
        so that int S domega = <J+ J-> when the window is 1 and the signal has decayed.
    window : str
        ``"none"`` or ``"hann"`` (w(tau) = cos^2(pi tau / (2 tau_max))).
    resolution : float
        2 pi / tau_max: lines closer than this are not resolved.
    error : ndarray or None
        The same transform of the error bar of <J+(tau) J-(0)> (absolute values), where the
        method gives one.
    """

    omega: np.ndarray
    S: np.ndarray
    window: str
    resolution: float
    error: Optional[np.ndarray] = None


class TwoTimeResult:
    """Steady-state two-time functions, as produced by every method's ``two_time``.

    By the quantum regression theorem (docs/physics.md#two-time), for each requested pair
    (a, b)::

        G_ab(tau) = <s+_a(tau) s-_b(0)> = Tr[s+_a exp(L tau)(s-_b rho_ss)]
        Z_ab(tau) = <(s+_a(tau) + s+_b(tau))(s-_a + s-_b)> = G_aa + G_ab + G_ba + G_bb

    and, where the method gives it, the collective J(tau) = <J+(tau) J-(0)>.

    Attributes
    ----------
    system : DipoleSystem
    method : str
    taus : (T,) ndarray
        Delays (units of 1/Gamma).
    pairs : (P, 2) int ndarray
        The pairs (a, b).
    G, G_reverse : (P, T) complex ndarrays
        G_ab(tau) and G_ba(tau) of each pair.
    Z : (P, T) complex ndarray
        Z_ab(tau).
    J : (T,) complex ndarray or None
        <J+(tau) J-(0)>.
    errors : dict
        Error bars where the method is approximate (``"Z"``: (P, T), ``"J"``: (T,)); empty
        for the exact methods.
    diagnostics : dict
        ``seconds`` and what the method reports.
    Z_lower, J_lower : ndarray or None
        The MPO's Z_ab(tau) and J(tau) at its lower bond dimension (``errors`` are built
        from their differences to ``Z`` and ``J``); None for the other methods. For any
        quantity derived from the curves (a fit, a tail rate, a spectrum), its value on
        these minus its value on ``Z``/``J`` is its error bar by the ladder's rule.
    J_sites : (N, T) complex ndarray or None
        <s+_a(tau) J-(0)> for every dipole a (row a), whose sum over a is ``J``: each
        dipole's field against the total one, read off the same propagation of
        J- rho_ss (exact, MPO, permutational); their frequencies give
        :attr:`frequency_spread`. None where the method does not give it.
    J_sites_lower : (N, T) complex ndarray or None
        The same at the MPO's lower bond dimension.
    """

    def __init__(self, system, method, taus, pairs, G, G_reverse, Z, J=None, errors=None,
                 diagnostics=None, Z_lower=None, J_lower=None, J_sites=None, J_sites_lower=None):
        self.system = system
        self.method = method
        self.taus = np.asarray(taus, float)
        self.pairs = np.asarray(pairs, int).reshape(-1, 2)
        self.G = np.asarray(G, complex).reshape(len(self.pairs), self.taus.size)
        self.G_reverse = np.asarray(G_reverse, complex).reshape(self.G.shape)
        self.Z = np.asarray(Z, complex).reshape(self.G.shape)
        self.J = None if J is None else np.asarray(J, complex)
        self.errors = dict(errors or {})
        self.diagnostics = dict(diagnostics or {})
        self.Z_lower = None if Z_lower is None else np.asarray(Z_lower, complex).reshape(self.G.shape)
        self.J_lower = None if J_lower is None else np.asarray(J_lower, complex)
        self.J_sites = None if J_sites is None else np.asarray(J_sites, complex).reshape(-1, self.taus.size)
        self.J_sites_lower = (None if J_sites_lower is None
                              else np.asarray(J_sites_lower, complex).reshape(-1, self.taus.size))
        self._fits = None

    def __repr__(self):
        return (f"TwoTimeResult(method={self.method!r}, N={self.n}, pairs={len(self.pairs)}, "
                f"T={self.taus.size}, tau_max={self.taus[-1]:g}, J={'yes' if self.J is not None else 'no'})")

    @property
    def n(self) -> int:
        return self.system.n if self.system is not None else int(self.diagnostics.get("N", 0))

    def pair(self, a: int, b: int) -> np.ndarray:
        """Z_ab(tau) of the pair (a, b) (or (b, a): Z is symmetric in its sites)."""
        from .errors import InvalidSiteError

        hit = np.flatnonzero(((self.pairs[:, 0] == a) & (self.pairs[:, 1] == b))
                             | ((self.pairs[:, 0] == b) & (self.pairs[:, 1] == a)))
        if hit.size == 0:
            raise InvalidSiteError(f"the pair ({a}, {b}) was not computed; pairs are "
                                   f"{[tuple(map(int, p)) for p in self.pairs[:6]]}"
                                   f"{' ...' if len(self.pairs) > 6 else ''}")
        return self.Z[hit[0]]

    # ---------------------------------------------------------------- fits
    @property
    def fits(self) -> dict:
        """Fit of A cos(nu tau) exp(-gamma tau) to Re Z_ab(tau) for each pair
        (:func:`mpsync.observables.fit_damped_cosine`): arrays ``A``, ``nu``, ``gamma``
        (units of Gamma) and their standard errors ``A_err``, ``nu_err``, ``gamma_err``,
        shape (P,); NaN where fewer than 4 delays are given."""
        if self._fits is None:
            keys = ("A", "nu", "gamma")
            out = {k: np.full(len(self.pairs), np.nan) for k in keys}
            out.update({f"{k}_err": np.full(len(self.pairs), np.nan) for k in keys})
            if self.taus.size >= 4:
                for p, z in enumerate(self.Z):
                    *fit, err = obs.fit_damped_cosine(self.taus, z, with_errors=True)
                    for k, v, e in zip(keys, fit, err):
                        out[k][p], out[f"{k}_err"][p] = v, e
            self._fits = out
        return self._fits

    @property
    def linewidth(self) -> tuple:
        """(gamma, its standard error) of <J+(tau) J-(0)>: the fit of A cos(nu tau)
        exp(-gamma tau) to its real part (units of Gamma; the FWHM of the line is 2 gamma).

        The standard error is the fit's; an approximate method's own error of gamma, where
        it has one, is ``errors["linewidth"]`` (MPO: the difference of the fits at its two
        bond dimensions)."""
        if self.J is None or self.taus.size < 4:
            return float("nan"), float("nan")
        _, _, gamma, err = obs.fit_damped_cosine(self.taus, self.J, with_errors=True)
        return gamma, err[2]

    @property
    def frequency_spread(self) -> tuple:
        """(sigma_nu, its error bound from the fits): the standard deviation over the dipoles
        of the rotation rate nu_a of <s+_a(tau) J-(0)> (:attr:`J_sites`; the slope of its
        phase, :func:`mpsync.observables.phase_frequency`), units of Gamma. Zero when every dipole
        oscillates at one frequency (synchronized; identical all-to-all dipoles by
        symmetry). An approximate method's own error, where it has one, is
        ``errors["frequency_spread"]`` (MPO: the difference at its two bond
        dimensions). NaN where the method gives no ``J_sites`` or fewer than 4 delays."""
        if self.J_sites is None or self.taus.size < 4:
            return float("nan"), float("nan")
        spread, err, _, _ = obs.frequency_spread(self.taus, self.J_sites)
        return spread, err

    # ---------------------------------------------------------------- spectrum
    def spectrum(self, omega=None, window: str = "auto") -> Spectrum:
        """Emission spectrum S(omega), the Fourier transform of <J+(tau) J-(0)>.

        S(omega) = (1/pi) Re int_0^tau_max dtau w(tau) exp(-i omega tau) J(tau), by the
        trapezoidal rule on the delays (which must start at 0).

        Parameters
        ----------
        omega : array_like, optional
            Frequencies (Gamma). Default: 1001 points within the Nyquist range
            +-pi/dtau (dtau the median spacing), at most +-40 times the resolution
            beyond the fitted line.
        window : {"auto", "none", "hann"}
            ``"auto"``: no window when |J(tau_max)| < 1e-3 |J(0)| (the signal has
            decayed), else ``"hann"`` (less ringing from the cut, a broader line).

        Returns
        -------
        Spectrum
        """
        from .errors import InvalidOptionError, NotApplicableError

        if self.J is None:
            raise NotApplicableError(f"method='{self.method}' gave no <J+(tau) J-(0)> here, so no spectrum; "
                                     "use method='exact' (small N), 'permutational' (identical "
                                     "all-to-all dipoles), 'cumulant' or 'mpo' (chains)")
        if window not in ("auto", "none", "hann"):
            raise InvalidOptionError(f"window must be 'auto', 'none' or 'hann', got {window!r}")
        t = self.taus
        if t.size < 2 or t[0] != 0.0:
            raise NotApplicableError("the spectrum needs delays that start at tau = 0 (at least two)")
        tmax = float(t[-1])
        if window == "auto":
            window = "none" if abs(self.J[-1]) < 1e-3 * max(abs(self.J[0]), 1e-300) else "hann"
        w = np.ones_like(t) if window == "none" else np.cos(0.5 * np.pi * t / tmax) ** 2
        resolution = 2.0 * np.pi / tmax
        if omega is None:
            nyquist = np.pi / float(np.median(np.diff(t)))
            nu, gamma, _ = (0.0, 0.0, None)
            try:
                _, nu, gamma = obs.fit_damped_cosine(t, self.J)
            except (RuntimeError, ValueError, TypeError):
                pass
            span = min(nyquist, abs(nu) + 10.0 * abs(gamma) + 40.0 * resolution)
            omega = np.linspace(-span, span, 1001)
        omega = np.asarray(omega, float)
        from scipy.integrate import trapezoid

        def transform(signal):
            kernel = np.exp(-1j * np.outer(omega, t)) * (w * signal)[None, :]
            return trapezoid(kernel, t, axis=1).real / np.pi

        S = transform(self.J)
        err = self.errors.get("J")
        err_S = None
        if err is not None:
            kernel = np.abs(np.exp(-1j * np.outer(omega, t))) * (w * np.abs(err))[None, :]
            err_S = trapezoid(kernel, t, axis=1) / np.pi
        return Spectrum(omega, S, window, resolution, err_S)

    # ---------------------------------------------------------------- export
    def to_dict(self) -> dict:
        """JSON-friendly summary: method, N, taus, pairs, Z (real, imag), J, the fits,
        the linewidth, errors and diagnostics."""
        out = {
            "method": self.method,
            "N": self.n,
            "system": self.system.describe() if self.system is not None else None,
            "taus": self.taus.tolist(),
            "pairs": self.pairs.tolist(),
            "Z": _jsonable(self.Z),
            "J": _jsonable(self.J) if self.J is not None else None,
            "fits": _jsonable(self.fits),
            "seconds": float(self.diagnostics.get("seconds", float("nan"))),
            "diagnostics": _jsonable(self.diagnostics),
        }
        if self.J is not None:
            out["linewidth"] = list(self.linewidth)
        if self.J_sites is not None:
            out["frequency_spread"] = list(self.frequency_spread)
        if self.errors:
            out["errors"] = _jsonable(self.errors)
        return out

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(**kw))

    def save(self, path) -> None:
        """Save the delays, pairs, G, Z, J, J_sites (and the lower bond dimension's), the
        system, errors and diagnostics to a ``.npz`` file (read back with :meth:`load`)."""
        arrays = dict(taus=self.taus, pairs=self.pairs, G=self.G, G_reverse=self.G_reverse, Z=self.Z)
        for key in ("J", "Z_lower", "J_lower", "J_sites", "J_sites_lower"):
            if getattr(self, key) is not None:
                arrays[key] = getattr(self, key)
        arrays.update(_system_arrays(self.system))
        arrays.update(_error_arrays(self.errors))
        np.savez(path, format=_FORMAT, format_version=_FORMAT_VERSION, kind="two-time",
                 method=self.method, diagnostics=json.dumps(_jsonable(self.diagnostics)), **arrays)

    @classmethod
    def load(cls, path) -> "TwoTimeResult":
        """A :class:`TwoTimeResult` saved by :meth:`save`."""
        from .errors import MpsyncError

        data = _read_npz(path, "two-time")
        if str(data.get("kind", "")) != "two-time" or "Z" not in data:
            raise MpsyncError(f"{path} is not an mpsync two-time file (a steady state or time series? "
                              "use SteadyState.load or TimeSeries.load)")
        errors = {k[4:]: v for k, v in data.items() if k.startswith("err_")}
        return cls(_system_from(data), str(data.get("method", "unknown")), data["taus"], data["pairs"],
                   data["G"], data["G_reverse"], data["Z"], data.get("J"), errors,
                   _diagnostics_from(data), data.get("Z_lower"), data.get("J_lower"),
                   data.get("J_sites"), data.get("J_sites_lower"))


_FORMAT = "mpsync-result"
_FORMAT_VERSION = 1


def _system_arrays(s) -> dict:
    """The arrays that rebuild a :class:`~mpsync.DipoleSystem` (:func:`_system_from`)."""
    if s is None:
        return {}
    arrays = dict(f=s.f, g=s.g, delta=s.delta, W=s.W, gamma=s.gamma, label=s.label)
    if s.positions is not None:
        arrays["positions"] = s.positions
    if s.dipole is not None:
        arrays["dipole"] = s.dipole
    if s.lattice_shape is not None:
        arrays["lattice_shape"] = np.asarray(s.lattice_shape)
    return arrays


def _system_from(data):
    """The system saved by :func:`_system_arrays`, or None."""
    from .model import DipoleSystem

    if "f" not in data:
        return None
    kw = {}
    if "positions" in data:
        kw["positions"] = data["positions"]
    if "dipole" in data:
        kw["dipole"] = data["dipole"]
    if "lattice_shape" in data:
        kw["lattice_shape"] = tuple(int(x) for x in data["lattice_shape"])
    if "label" in data:
        kw["label"] = str(data["label"])
    return DipoleSystem(data["f"], data["g"], data["delta"], float(data["W"]), float(data["gamma"]), **kw)


def _error_arrays(errors) -> dict:
    out = {}
    for k, v in (errors or {}).items():
        a = np.asarray(v)
        if a.dtype.kind in "fciu":
            out[f"err_{k}"] = a
    return out


def _read_npz(path, what):
    import zipfile

    from .errors import MpsyncError

    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise MpsyncError(f"{path} not found") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise MpsyncError(f"{path} is not an mpsync {what} file ({type(exc).__name__})") from None


def _diagnostics_from(data) -> dict:
    try:
        return json.loads(str(data.get("diagnostics", "{}")))
    except ValueError:
        return {}


def _save(path, result, **extra):
    m = result.moments
    arrays = {k: v for k, v in (("sm", m.sm), ("zsm", m.zsm), ("smsm", m.smsm)) if v is not None}
    arrays.update(_system_arrays(result.system))
    arrays.update(_error_arrays(result.errors))
    np.savez(path, format=_FORMAT, format_version=_FORMAT_VERSION, sz=m.sz, correlations=m.correlations,
             zz=m.zz, method=result.method, diagnostics=json.dumps(_jsonable(result.diagnostics)),
             **arrays, **extra)


def _load(path, what):
    from .errors import MpsyncError

    data = _read_npz(path, what)
    if "sz" not in data or "correlations" not in data or "zz" not in data:
        raise MpsyncError(f"{path} is not an mpsync {what} file (no moments in it)")
    opt = {k: data.get(k) for k in ("sm", "zsm", "smsm")}
    moments = Moments(data["sz"], data["correlations"], data["zz"], **opt)
    errors = {k[4:]: v for k, v in data.items() if k.startswith("err_")}
    return (_system_from(data), moments, str(data.get("method", "unknown")), _diagnostics_from(data),
            errors, data)


def _jsonable(obj: Any):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        if np.iscomplexobj(obj):
            return {"real": obj.real.tolist(), "imag": obj.imag.tolist()}
        return obj.tolist()
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, complex):
        return {"real": obj.real, "imag": obj.imag}
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)
