"""Observables of the seed paper, computed from moments or small density matrices.

Every function here is solver independent: solvers produce one- and two-point
moments (:class:`mpsync.result.Moments`), and these functions turn them into
the paper's quantities (defined in docs/physics.md#observables).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import optimize

from .channels import SM, SP, SZ, ID2
from .errors import InvalidOptionError, UnphysicalStateError, UnphysicalStateWarning, user_stacklevel

__all__ = [
    "ZQ2_from_correlations",
    "cluster_ZQ2",
    "pair_density_matrix",
    "von_neumann_entropy",
    "mutual_information",
    "quantum_discord",
    "collective_spin_operators",
    "frequency_spread",
    "phase_frequency",
    "phase_frequency_sensitivity",
    "qfi",
    "qfi_from_operators",
    "qfi_from_moments",
    "entanglement_witness_bounds",
    "fit_decay",
    "fit_damped_cosine",
    "ZQ_MAX",
    "STATE_TOL",
    "EXACT_METHODS",
    "unphysical_policy",
    "check_state",
]

#: The maximum of Z_Q, reached by the large-N all-to-all ensemble at W = f_eff / 2.
ZQ_MAX = 1.0 / np.sqrt(8.0)

#: Tolerance of the physical-state check: a (trace-one) matrix whose smallest eigenvalue is
#: below ``-STATE_TOL`` is not a density matrix, and no entropy, mutual information, discord
#: or QFI is computed from it. Round-off of exact solvers stays orders of magnitude below
#: (1e-12 for the exact and permutational steady states); a second-order cumulant pair matrix
#: outside its range of validity can be off by 0.1-0.3.
STATE_TOL = 1e-8

#: Methods whose moments are exact up to round-off: an unphysical state from them is a bug
#: and raises. Every other method is approximate: the observable is NaN with a warning.
EXACT_METHODS = ("exact", "permutational")


def unphysical_policy(method) -> str:
    """``"raise"`` for the exact methods (:data:`EXACT_METHODS`), ``"nan"`` otherwise."""
    return "raise" if method in EXACT_METHODS else "nan"


def check_state(rho, what: str = "state", on_unphysical: str = "raise", tol: float = STATE_TOL):
    """Eigenvalues of a density matrix, or None when it is not one.

    Parameters
    ----------
    rho : (d, d) array
        Hermitian (its Hermitian part is used), trace one.
    what : str
        Name used in the message, e.g. ``"pair density matrix"``.
    on_unphysical : {"raise", "nan"}
        When the smallest eigenvalue is below ``-tol``: raise
        :class:`~mpsync.errors.UnphysicalStateError` (``"raise"``), or warn with
        :class:`~mpsync.errors.UnphysicalStateWarning` and return None (``"nan"``).
    tol : float
        Default :data:`STATE_TOL`.

    Returns
    -------
    ndarray or None
        The eigenvalues, clipped at 0 (round-off above ``-tol``), ascending.
    """
    if on_unphysical not in ("raise", "nan"):
        raise InvalidOptionError(f"on_unphysical must be 'raise' or 'nan', got {on_unphysical!r}")
    r = np.asarray(rho)
    w = np.linalg.eigvalsh(0.5 * (r + np.conj(r.T)))
    if not np.all(np.isfinite(w)) or w[0] < -tol:
        msg = (f"the {what} is not a density matrix: smallest eigenvalue {w[0]:.3g} < -{tol:g} "
               "(the moments it is built from are outside the physical range)")
        if on_unphysical == "raise":
            raise UnphysicalStateError(msg)
        warnings.warn(msg + "; returning NaN", UnphysicalStateWarning, stacklevel=user_stacklevel())
        return None
    return np.clip(w, 0.0, None)


def ZQ2_from_correlations(correlations) -> float:
    """Signed Z_Q^2: mean of Re <s+_a s-_b> over ordered pairs a != b.

    Works on the last two axes, so a (T, N, N) stack gives (T,).
    """
    c = np.asarray(correlations)
    n = c.shape[-1]
    if n < 2:
        return np.zeros(c.shape[:-2]) if c.ndim > 2 else 0.0
    tot = np.real(c).sum(axis=(-2, -1)) - np.real(np.trace(c, axis1=-2, axis2=-1))
    return tot / (n * (n - 1))


def cluster_ZQ2(correlations, d: int, lattice_shape=None) -> float:
    """Signed cluster Z_Q^d squared: the Z_Q^2 average restricted to pairs inside
    windows of ``d`` contiguous sites along a lattice row, averaged over all windows.

    Parameters
    ----------
    correlations : (N, N) array
        C_ab = <s+_a s-_b>.
    d : int
        Window length, 2 <= d <= row length.
    lattice_shape : tuple, optional
        ``(N,)`` for a chain (default) or ``(rows, cols)`` for a row-major lattice.
    """
    c = np.real(np.asarray(correlations))
    n = c.shape[-1]
    shape = (n,) if lattice_shape is None else tuple(lattice_shape)
    cols = shape[-1]
    rows = n // cols
    d = int(d)
    if d < 2 or d > cols:
        raise ValueError(f"cluster size d must be between 2 and the row length {cols}, got {d}")
    # Window sums via 2D prefix sums over each row block.
    vals = []
    for r in range(rows):
        blk = c[r * cols:(r + 1) * cols, r * cols:(r + 1) * cols]
        ps = np.zeros((cols + 1, cols + 1))
        ps[1:, 1:] = blk.cumsum(0).cumsum(1)
        diag = np.concatenate([[0.0], np.cumsum(np.diag(blk))])
        i = np.arange(cols - d + 1)
        j = i + d
        s = ps[j, j] - ps[i, j] - ps[j, i] + ps[i, i] - (diag[j] - diag[i])
        vals.append(s / (d * (d - 1)))
    return float(np.mean(np.concatenate(vals)))


def _single_site_ops():
    p0 = np.diag([1.0, 0.0])
    p1 = np.diag([0.0, 1.0])
    return p0, p1


def pair_density_matrix(sz_a, sz_b, c_ab, zz_ab, sm_a=0.0, sm_b=0.0,
                        zsm_ab=0.0, zsm_ba=0.0, smsm_ab=0.0):
    """Two-site reduced density matrix from one- and two-point moments.

    The basis is |down down>, |down up>, |up down>, |up up> (site a first).
    With U(1) symmetry only sz, C_ab = <s+_a s-_b> and <sz_a sz_b> are needed;
    the optional arguments carry <s-_a>, <sz_a s-_b>, <sz_b s-_a> and <s-_a s-_b>.

    Uses rho_{(ij),(kl)} = < |k><i|_a  |l><j|_b > with
    |0><0| = (1 - sz)/2, |1><1| = (1 + sz)/2, |1><0| = s+, |0><1| = s-.
    """
    # Expectations of products X_a Y_b with X, Y in {1, sz, s+, s-}.
    sp_a, sp_b = np.conj(sm_a), np.conj(sm_b)
    E = {
        ("1", "1"): 1.0, ("z", "1"): sz_a, ("1", "z"): sz_b,
        ("+", "1"): sp_a, ("-", "1"): sm_a, ("1", "+"): sp_b, ("1", "-"): sm_b,
        ("z", "z"): zz_ab,
        ("z", "-"): zsm_ab, ("z", "+"): np.conj(zsm_ab),
        ("-", "z"): zsm_ba, ("+", "z"): np.conj(zsm_ba),
        ("+", "-"): c_ab, ("-", "+"): np.conj(c_ab),
        ("-", "-"): smsm_ab, ("+", "+"): np.conj(smsm_ab),
    }
    # |k><i| in terms of {1, z, +, -}: list of (coefficient, symbol).
    def expand(k, i):
        if k == i:
            return [(0.5, "1"), (-0.5 if k == 0 else 0.5, "z")]
        return [(1.0, "+" if k == 1 else "-")]

    rho = np.zeros((4, 4), dtype=complex)
    for i in range(2):
        for j in range(2):
            for k in range(2):
                for l in range(2):
                    val = 0.0
                    for ca, xa in expand(k, i):
                        for cb, xb in expand(l, j):
                            val += ca * cb * E[(xa, xb)]
                    rho[2 * i + j, 2 * k + l] = val
    return rho


def _entropy_of_eigenvalues(w, base=2.0) -> float:
    w = w[w > 1e-14]
    return float(-np.sum(w * np.log(w)) / np.log(base))


def von_neumann_entropy(rho, base=2.0, on_unphysical: str = "raise") -> float:
    """S(rho) = -Tr rho log rho, in bits by default.

    Eigenvalues in [-:data:`STATE_TOL`, 0] are round-off and count as 0; a smaller one
    means ``rho`` is not a state (see :func:`check_state`: raise, or NaN with a warning
    when ``on_unphysical="nan"``).
    """
    w = check_state(rho, "matrix", on_unphysical)
    return float("nan") if w is None else _entropy_of_eigenvalues(w, base)


def _partial_traces(rho):
    r = np.asarray(rho).reshape(2, 2, 2, 2)
    rho_a = np.einsum("ijkj->ik", r)
    rho_b = np.einsum("ijil->jl", r)
    return rho_a, rho_b


def mutual_information(rho_ab, on_unphysical: str = "raise") -> float:
    """Quantum mutual information I(A:B) = S(A) + S(B) - S(AB), in bits.

    ``rho_ab`` must be a state (eigenvalues >= -:data:`STATE_TOL`); otherwise this
    raises :class:`~mpsync.errors.UnphysicalStateError`, or with
    ``on_unphysical="nan"`` warns (:class:`~mpsync.errors.UnphysicalStateWarning`)
    and returns NaN.

    Examples
    --------
    >>> import numpy as np
    >>> bell = np.zeros(4); bell[[0, 3]] = 2 ** -0.5
    >>> round(mutual_information(np.outer(bell, bell)), 10)
    2.0
    """
    w = check_state(rho_ab, "pair density matrix", on_unphysical)
    if w is None:
        return float("nan")
    rho_a, rho_b = _partial_traces(rho_ab)
    # the marginals of a state are states
    return (von_neumann_entropy(rho_a) + von_neumann_entropy(rho_b) - _entropy_of_eigenvalues(w))


def _conditional_entropy_after_measuring_a(rho, theta, phi):
    """sum_k p_k S(rho_B|k) for a projective measurement on A along (theta, phi)."""
    n = np.array([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
    sx = SP + SM
    sy = 1j * (SM - SP)
    nsig = n[0] * sx + n[1] * sy + n[2] * SZ
    r = rho.reshape(2, 2, 2, 2)
    total = 0.0
    for sign in (1.0, -1.0):
        proj = 0.5 * (ID2 + sign * nsig)
        # rho_B|k = Tr_A[(P_k x 1) rho] / p_k
        rb = np.einsum("ki,ijkl->jl", proj, r)
        p = float(np.real(np.trace(rb)))
        if p > 1e-14:
            # rho is checked by the caller; round-off of rb / p at tiny p is not a physics error
            total += p * _entropy_of_eigenvalues(np.linalg.eigvalsh(0.5 * (rb + rb.conj().T) / p))
    return total


def quantum_discord(rho_ab, n_starts: int = 6, on_unphysical: str = "raise") -> float:
    """Quantum discord D_{B|A} in bits, minimised over projective measurements on A.

    ``rho_ab`` must be a state: see :func:`mutual_information` for ``on_unphysical``.
    Values in [-1e-9, 0) from the numerical minimisation are reported as 0.

    D = I(A:B) - J(B|A), J(B|A) = S(B) - min_{Pi_A} sum_k p_k S(rho_B|k)
    (seed supplement). The minimum over measurement directions on the Bloch
    sphere is found by a coarse grid followed by local refinement.

    Examples
    --------
    >>> import numpy as np
    >>> bell = np.zeros(4); bell[[0, 3]] = 2 ** -0.5
    >>> round(quantum_discord(np.outer(bell, bell)), 6)
    1.0
    """
    rho = np.asarray(rho_ab, dtype=complex)
    w = check_state(rho, "pair density matrix", on_unphysical)
    if w is None:
        return float("nan")
    rho = 0.5 * (rho + rho.conj().T)
    rho_a, rho_b = _partial_traces(rho)
    s_ab = _entropy_of_eigenvalues(w)
    s_a = von_neumann_entropy(rho_a)

    def cost(x):
        return _conditional_entropy_after_measuring_a(rho, x[0], x[1])

    grid = [(t, p) for t in np.linspace(0, np.pi, 7) for p in np.linspace(0, 2 * np.pi, 8, endpoint=False)]
    vals = sorted((cost(x), x) for x in grid)
    best = vals[0][0]
    for _, x0 in vals[:n_starts]:
        res = optimize.minimize(cost, np.array(x0), method="Nelder-Mead",
                                options={"xatol": 1e-7, "fatol": 1e-12, "maxiter": 400})
        best = min(best, res.fun)
    d = s_a - s_ab + best
    # D >= 0 for every state, and the minimisation can only overestimate it: a negative
    # value is round-off (kept visible if it is not)
    return float(max(d, 0.0)) if d > -1e-9 else float(d)


def collective_spin_operators(n: int):
    """Sparse Jx, Jy, Jz (J = sum_a sigma_a / 2) on n qubits, site 0 the most significant bit."""
    from scipy import sparse

    ops = []
    for single in (0.5 * (SP + SM), 0.5j * (SM - SP), 0.5 * SZ):
        total = sparse.csr_matrix((2 ** n, 2 ** n), dtype=complex)
        for a in range(n):
            left = sparse.identity(2 ** a, format="csr")
            right = sparse.identity(2 ** (n - a - 1), format="csr")
            total = total + sparse.kron(sparse.kron(left, sparse.csr_matrix(single)), right, format="csr")
        ops.append(total.tocsr())
    return ops


def qfi_from_operators(state, operators, on_unphysical: str = "raise"):
    """Quantum Fisher information F_Q[state, O] for each operator O.

    For a state vector: F = 4 Var(O). For a density matrix, the spectral formula
    F = 2 sum_{k,l} (p_k - p_l)^2 / (p_k + p_l) |<k|O|l>|^2; a density matrix with an
    eigenvalue below -:data:`STATE_TOL` raises, or with ``on_unphysical="nan"`` gives
    NaN with a warning (:func:`check_state`).

    Returns
    -------
    ndarray of float, one value per operator.
    """
    state = np.asarray(state)
    out = []
    if state.ndim == 1:
        psi = state / np.linalg.norm(state)
        for op in operators:
            opsi = op @ psi
            mean = np.vdot(psi, opsi)
            out.append(4.0 * float(np.real(np.vdot(opsi, opsi) - mean * np.conj(mean))))
        return np.array(out)
    if check_state(state, "matrix", on_unphysical) is None:
        return np.full(len(operators), np.nan)
    p, v = np.linalg.eigh(0.5 * (state + np.conj(state.T)))
    p = np.clip(p.real, 0.0, None)
    num = (p[:, None] - p[None, :]) ** 2
    den = p[:, None] + p[None, :]
    weight = np.where(den > 1e-14, num / np.where(den > 1e-14, den, 1.0), 0.0)
    for op in operators:
        m = v.conj().T @ (op @ v)
        out.append(2.0 * float(np.sum(weight * np.abs(m) ** 2)))
    return np.array(out)


def qfi(state, n: int | None = None, on_unphysical: str = "raise") -> float:
    """Quantum Fisher information averaged over Jx, Jy and Jz.

    Parameters
    ----------
    state : (2^N,) or (2^N, 2^N) array
        A pure state vector or a density matrix of N qubits (site 0 the most
        significant bit, basis 0 = down).
    n : int, optional
        Number of qubits, inferred from the size.
    on_unphysical : {"raise", "nan"}
        A density matrix with an eigenvalue below -:data:`STATE_TOL` raises
        :class:`~mpsync.errors.UnphysicalStateError`, or gives NaN with an
        :class:`~mpsync.errors.UnphysicalStateWarning`.

    Returns
    -------
    float
        F = (F[Jx] + F[Jy] + F[Jz]) / 3. Entanglement is witnessed when
        F > 2N/3 (:func:`entanglement_witness_bounds`).

    Examples
    --------
    >>> import numpy as np
    >>> ghz = np.zeros(8); ghz[[0, 7]] = 2 ** -0.5
    >>> round(qfi(ghz), 10)   # (N^2 + 2N)/3 for N = 3
    5.0
    """
    state = np.asarray(state)
    dim = state.shape[0]
    if n is None:
        n = int(round(np.log2(dim)))
    if 2 ** n != dim:
        raise ValueError(f"state of dimension {dim} is not a register of qubits")
    return float(np.mean(qfi_from_operators(state, collective_spin_operators(n), on_unphysical)))


def qfi_from_moments(sz, C, zz, sm=None) -> float:
    r"""Direction-averaged QFI of a pure state from its moments.

    .. math:: F = \tfrac43 \left[\mathrm{Var} J_x + \mathrm{Var} J_y + \mathrm{Var} J_z\right]
              = \tfrac43 \left[\sum_{a\ne b} \mathrm{Re}\, C_{ab} + \tfrac N2 - |\textstyle\sum_a \langle s^-_a\rangle|^2
                + \tfrac14\big(\sum_{ab} \langle s^z_a s^z_b\rangle - (\sum_a \langle s^z_a\rangle)^2\big)\right]

    using J_x^2 + J_y^2 = (J+J- + J-J+)/2 and <J_x>^2 + <J_y>^2 = |<J->|^2.
    """
    n = len(sz)
    off = float(np.real(np.sum(C) - np.trace(C)))
    jm2 = 0.0 if sm is None else float(abs(np.sum(sm)) ** 2)
    varz = 0.25 * (float(np.sum(zz)) - float(np.sum(sz)) ** 2)
    return 4.0 / 3.0 * (off + 0.5 * n - jm2 + varz)


def entanglement_witness_bounds(n: int):
    """(separable bound 2N/3, maximum (N^2 + 2N)/3) of the direction-averaged QFI."""
    return 2.0 * n / 3.0, (n * n + 2.0 * n) / 3.0


def fit_decay(tau, values):
    """Fit A exp(-gamma tau) to |values|; returns (A, gamma)."""
    tau = np.asarray(tau, float)
    y = np.abs(np.asarray(values))
    mask = y > 1e-12 * max(y.max(), 1e-300)
    slope, icpt = np.polyfit(tau[mask], np.log(y[mask]), 1)
    p0 = (np.exp(icpt), max(-slope, 1e-6))
    try:
        popt, _ = optimize.curve_fit(lambda t, a, g: a * np.exp(-g * t), tau, y, p0=p0, maxfev=5000)
    except RuntimeError:
        popt = p0
    return float(popt[0]), float(popt[1])


def fit_damped_cosine(tau, values, with_errors: bool = False):
    """Fit A cos(nu tau) exp(-gamma tau) to Re(values); returns (A, nu, gamma).

    The initial nu comes from the dominant frequency of the complex signal.

    Parameters
    ----------
    tau : (T,) array
        Delays (1/Gamma).
    values : (T,) array
    with_errors : bool
        Also return the standard errors (dA, dnu, dgamma) of the least-squares fit
        (square roots of the diagonal of its covariance, scaled by the residual
        variance); NaN when the fit fell back to its starting point.
    """
    tau = np.asarray(tau, float)
    v = np.asarray(values)
    y = np.real(v)
    dt = tau[1] - tau[0]
    spec = np.abs(np.fft.fft(v, n=8 * len(v)))
    freqs = np.fft.fftfreq(8 * len(v), d=dt) * 2 * np.pi
    nu0 = abs(freqs[np.argmax(spec)])
    a0, g0 = fit_decay(tau, np.abs(v))
    model = lambda t, a, nu, g: a * np.cos(nu * t) * np.exp(-g * t)  # noqa: E731
    errors = (np.nan, np.nan, np.nan)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            popt, pcov = optimize.curve_fit(model, tau, y, p0=(y[0] if y[0] != 0 else a0, nu0, g0),
                                            maxfev=20000)
        if np.all(np.isfinite(pcov)):
            errors = tuple(float(e) for e in np.sqrt(np.clip(np.diag(pcov), 0.0, None)))
    except RuntimeError:
        popt = (a0, nu0, g0)
    fit = (float(popt[0]), float(abs(popt[1])), float(popt[2]))
    return (*fit, errors) if with_errors else fit


def _phase_fit_weights(tau, values, floor):
    """The delays kept by :func:`phase_frequency` (|G| above ``floor`` max|G|), and there
    |G|, the weights |G|^2 / sum |G|^2, the weighted centre tau_m, sum w (tau - tau_m)^2
    and arg G; None when fewer than 3 delays are kept."""
    tau = np.asarray(tau, float)
    v = np.asarray(values, complex)
    amp = np.abs(v)
    keep = amp > floor * max(amp.max(), 1e-300)
    if keep.sum() < 3:
        return None
    x, amp = tau[keep], amp[keep]
    w = amp ** 2 / np.sum(amp ** 2)
    xm = np.sum(w * x)
    return x, amp, w, xm, np.sum(w * (x - xm) ** 2), np.angle(v[keep])


def phase_frequency(tau, values, floor: float = 1e-8):
    r"""Mean rotation rate of a complex two-time curve: the frequency nu of
    G(tau) ~ |G(tau)| exp(i nu tau).

    nu is the slope of the unwrapped phase arg G(tau) against tau, fitted by least squares
    with weights |G(tau)|^2 (the phase of a curve with absolute noise epsilon is uncertain
    by epsilon/|G|), over the delays where |G| > ``floor`` max|G|. Unlike the real-part fit
    of :func:`fit_damped_cosine`, it is well determined when the curve decays within a
    fraction of a period (nu << gamma, the usual case of a pumped ensemble), and it keeps
    nu's sign (nu > 0: the phase turns as exp(+i nu tau)). The delays must resolve the
    rotation: |nu| dtau < pi.

    Parameters
    ----------
    tau : (T,) array
        Delays (1/Gamma), at least 3 above the floor.
    values : (T,) complex array
    floor : float
        Relative amplitude below which delays are left out.

    Returns
    -------
    nu : float
        Units of Gamma.
    nu_err : float
        Standard error of the weighted slope, from the residual scatter of the phase
        about the line (0 for a pure exponential).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.linspace(0, 3, 31)
    >>> nu, err = phase_frequency(t, np.exp((0.7j - 1.5) * t))
    >>> round(nu, 10), err < 1e-10
    (0.7, True)
    """
    fit = _phase_fit_weights(tau, values, floor)
    if fit is None:
        return float("nan"), float("nan")
    x, _, w, xm, sxx, phase = fit
    y = np.unwrap(phase)
    ym = np.sum(w * y)
    nu = np.sum(w * (x - xm) * (y - ym)) / sxx
    resid = y - ym - nu * (x - xm)
    dof = max(x.size - 2, 1)
    sigma2 = np.sum(w * resid ** 2) * x.size / dof  # per unit weight, w normalized to mean 1/T
    nu_err = np.sqrt(sigma2 / (x.size * sxx))
    return float(nu), float(nu_err)


def phase_frequency_sensitivity(tau, values, floor: float = 1e-8) -> float:
    r"""How far :func:`phase_frequency` can move when the curve moves by at most epsilon:
    ``|delta nu| <= K epsilon`` to first order, and this returns K (units of Gamma per unit
    of the curve).

    A change delta G with |delta G(tau)| <= epsilon turns the phase by at most
    epsilon/|G(tau)|; the weighted slope (weights w = |G|^2 / sum |G|^2, centre tau_m)
    then moves by at most
    ``K epsilon = epsilon sum |G| |tau - tau_m| / (sum |G|^2 sum w (tau - tau_m)^2)``,
    reached when the phase error has the sign of tau - tau_m. Used for a curve assembled
    from parts each known to epsilon (the MPO's mirrored sources, whose error is the steady
    state's mirror asymmetry), where the error is a bound and not noise.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.linspace(0, 3, 31)
    >>> K = phase_frequency_sensitivity(t, np.exp((0.7j - 1.5) * t))
    >>> bool(K > 0)
    True
    """
    fit = _phase_fit_weights(tau, values, floor)
    if fit is None:
        return float("nan")
    x, amp, w, xm, sxx, _ = fit
    return float(np.sum(amp * np.abs(x - xm)) / (np.sum(amp ** 2) * sxx))


def frequency_spread(tau, curves):
    r"""Spread of the frequencies of several two-time curves.

    Each curve (a row of ``curves``, for example <s+_a(tau) J-(0)> of every dipole a) gives
    its frequency nu_a by :func:`phase_frequency`; the spread is their standard deviation,
    ``sigma_nu = sqrt(mean_a (nu_a - mean nu)^2)`` (units of Gamma). Dipoles that turn at
    one common frequency (synchronized) give sigma_nu = 0.

    Parameters
    ----------
    tau : (T,) array
        Delays (1/Gamma).
    curves : (M, T) complex array
        One curve per row.

    Returns
    -------
    spread : float
        sigma_nu.
    spread_err : float
        A bound on sigma_nu's error from the frequencies' standard errors e_a:
        sqrt(mean_a e_a^2), since sigma_nu is the RMS norm of the deviations from the
        mean and so moves by at most the RMS of the shifts of the nu_a.
    nu, nu_err : (M,) ndarrays
        The frequencies and their standard errors.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.linspace(0, 4, 41)
    >>> curves = [np.exp((1j * w - 1.0) * t) for w in (0.9, 1.0, 1.1)]
    >>> spread, err, nu, _ = frequency_spread(t, curves)
    >>> round(spread, 6), np.round(nu, 6).tolist()
    (0.08165, [0.9, 1.0, 1.1])
    """
    curves = np.atleast_2d(np.asarray(curves))
    fits = np.array([phase_frequency(tau, c) for c in curves]).reshape(-1, 2)
    nu, nu_err = fits[:, 0], fits[:, 1]
    return float(np.std(nu)), float(np.sqrt(np.mean(nu_err ** 2))), nu, nu_err
