r"""Steady-state two-time functions of a chain by quantum regression on the MPS.

For a source site b the operator ``X_b = s-_b rho_ss`` is the steady-state MPS with
``s-`` applied to the ket of site b (one tensor changes; the bond dimensions stay).
It has charge n_ket - n_bra = -1, which the Liouvillian keeps, and evolves by the
same linear equation as a density matrix,

.. math:: \frac{d}{d\tau} |X_b\rangle\rangle = \mathcal{L} |X_b\rangle\rangle ,
          \qquad G_{ab}(\tau) = \mathrm{Tr}[s^+_a X_b(\tau)] ,

so the TDVP of :mod:`.tdvp` propagates it (two-site steps until the bonds saturate,
one-site steps after: :func:`propagate`), on the U(1) blocks of :mod:`.u1`
from bond dimension :data:`.u1.BLOCKS_FROM_CHI` (the right edge carrying the charge
-1; ``symmetry="none"``: dense tensors). The engine keeps the state at unit norm
and records the norm it divided out (:attr:`.tdvp.TDVP.log_norm`), which the
traces need. ``Tr[s+_a X]`` for every a at once is one left-to-right pass of
identity transfer matrices. ``J- rho_ss`` (an MPO of bond dimension 2 applied to the
MPS) gives <J+(tau) J-(0)> in the same way.

The error bar of every curve is the difference between two runs, at the bond
dimension ``max_bond`` from the steady state and at ``max_bond // 2`` from the
steady state of the ladder's rung below (``extras["previous_mps"]`` of the MPO
:class:`~mpsync.result.SteadyState`): the same rule as the steady-state ladder's,
the difference between the last two rungs, so the bar contains the steady state's
own error as well as the propagation's. At each delay the bar is the largest
difference within +-:data:`ENVELOPE_HALF_WIDTH` of it (:func:`envelope`), since the
two curves can cross where the error does not vanish. A steady state without a lower rung (a
single explicit rung, or a ladder that certified only one) starts both runs from the same
state; then the bar misses the steady state's error (it is 0 at tau = 0), which
``diagnostics["error_bar_includes_steady_state"] = False`` and a warning say.
"""

from __future__ import annotations

import inspect
import math
import time
import warnings

import numpy as np
from autoray import do, to_numpy

from ...channels import ID2, SM, SP
from ...errors import InvalidOptionError, NoErrorBarWarning
from . import u1
from .prepare import build_mpo, check_fits, positive
from .tdvp import TDVP, norm
from .vectorized import VEC_IDENTITY, covector

__all__ = ["apply_lowering", "apply_collective_lowering", "raising_traces", "propagate", "envelope",
           "saturated"]

#: with ``symmetry="auto"`` chains shorter than this propagate dense even at chi >= 32: the
#: block bookkeeping costs more than it saves there (pair + J, tau <= 0.5, chi 32: N = 6 0.6x,
#: N = 8 1.2x (loaded), N = 16 2.5x; benchmarks/RESULTS.md)
BLOCKS_FROM_N = 8

#: s- on the ket of one site, in the vectorised basis s = 2 i + j (ket i, bra j)
_LOWER_KET = np.kron(SM, ID2)


def apply_lowering(mps, b: int) -> list:
    """``s-_b rho`` as an MPS: the local tensor of site b times ``s- (x) 1``."""
    out = list(mps)
    out[b] = do("einsum", "ts,lsr->ltr", _LOWER_KET.astype(complex), mps[b])
    return out


def apply_collective_lowering(mps) -> list:
    """``J- rho = sum_b s-_b rho`` as an MPS of twice the bond dimension.

    The MPO ``[[1, s-], [0, 1]]`` on every site (bond 2) applied exactly: site tensors
    ``(2 Dl, 4, 2 Dr)``, first row of the first site and last column of the last kept.
    """
    n = len(mps)
    low = _LOWER_KET.astype(complex)
    out = []
    for a, A in enumerate(mps):
        Dl, d, Dr = A.shape
        lowered = np.einsum("ts,lsr->ltr", low, A)
        T = np.zeros((2, Dl, d, 2, Dr), complex)
        T[0, :, :, 0, :] = A          # nothing lowered yet, nothing here
        T[0, :, :, 1, :] = lowered    # lowered here
        T[1, :, :, 1, :] = A          # lowered to the left
        T = T.reshape(2 * Dl, d, 2 * Dr)
        if a == 0:
            T = T[:Dl]
        if a == n - 1:
            T = T[:, :, Dr:]
        out.append(T)
    return out


def raising_traces(mps) -> np.ndarray:
    """``Tr[s+_a X]`` for every site a of the MPS ``X`` (in the MPS's own scale).

    Left environments of identity transfers times the ``s+`` transfer at a times the
    right environment; each environment is kept with its log-scale so long chains stay
    in range. O(N chi^2).
    """
    n = len(mps)
    eye = [to_numpy(do("tensordot", A, VEC_IDENTITY.astype(complex), axes=([1], [0]))) for A in mps]
    up = [to_numpy(do("tensordot", A, covector(SP).astype(complex), axes=([1], [0]))) for A in mps]
    left, lscale = [None] * n, np.zeros(n)
    x, log = np.ones((1, 1), complex), 0.0
    for a in range(n):
        left[a], lscale[a] = x, log
        x = x @ eye[a]
        s = float(np.max(np.abs(x))) or 1.0
        x, log = x / s, log + math.log(s)
    right, rscale = [None] * n, np.zeros(n)
    y, log = np.ones((1, 1), complex), 0.0
    for a in range(n - 1, -1, -1):
        right[a], rscale[a] = y, log
        y = eye[a] @ y
        s = float(np.max(np.abs(y))) or 1.0
        y, log = y / s, log + math.log(s)
    return np.array([(left[a] @ up[a] @ right[a])[0, 0] * math.exp(lscale[a] + rscale[a])
                     for a in range(n)])


def saturated(bond_dims, max_bond: int) -> bool:
    """Whether every bond is at its ceiling: ``max_bond`` or, near the edges, the largest
    bond an MPS of local dimension 4 can have there (4^(sites to the nearer edge))."""
    n = len(bond_dims) + 1
    return all(D >= min(max_bond, 4 ** min(i + 1, n - 1 - i)) for i, D in enumerate(bond_dims))


#: half-width (1/Gamma) of the window over which a curve's error bar takes the largest
#: difference of the two bond dimensions: where the two runs cross, their difference
#: passes through 0 while the error does not (chain N = 10, pair (5, 3): the pointwise
#: difference fell to 3.0e-4 at tau = 1.0 against a true error of 4.2e-4)
ENVELOPE_HALF_WIDTH = 0.5


def envelope(taus, diff, half_width: float = ENVELOPE_HALF_WIDTH) -> np.ndarray:
    """``max |diff(tau')|`` over the delays with ``|tau' - tau| <= half_width``, for every tau."""
    taus = np.asarray(taus, float)
    diff = np.abs(np.asarray(diff, float))
    lo = np.searchsorted(taus, taus - half_width - 1e-12, side="left")
    hi = np.searchsorted(taus, taus + half_width + 1e-12, side="right")
    return np.array([diff[i:j].max() for i, j in zip(lo, hi)])


def _check_integrator(integrator):
    if integrator not in ("auto", "2site"):
        raise InvalidOptionError(f"option integrator={integrator!r} of method='mpo' (two_time) is not one "
                                 "of 'auto' (two-site steps until the bonds saturate, then one-site) or '2site'")


def propagate(mpo, X0, taus, max_bond: int, dt: float, cutoff: float, krylov_tol: float,
              krylov_dim: int, deadline=None, symmetry: str = "none", integrator: str = "auto"):
    """``Tr[s+_a exp(L tau) X0]`` for every a and tau, by TDVP.

    ``integrator="auto"``: two-site steps for the first step (it refills the bonds that
    the lowering left rank-deficient), while a bond is above ``max_bond`` (``J- rho``, of
    bond 2 chi, is truncated by the first sweep) and while one is below its ceiling
    (:func:`saturated`); one-site steps (fixed bonds, no SVD) from then on, about 2x
    faster (benchmarks/RESULTS.md). ``"2site"``: two-site steps throughout.
    ``symmetry="U1"``: on charge blocks (``X0`` of charge -1) from bond dimension
    :data:`.u1.BLOCKS_FROM_CHI`, where they are the faster.

    Returns
    -------
    values : (T, N) complex ndarray
    info : dict
        ``steps``, ``one_site_steps``, ``matvecs``, ``truncation``, ``bond`` (largest
        reached), ``engine``.
    """
    _check_integrator(integrator)
    n = len(X0)
    log0 = math.log(norm(X0)) if n else 0.0
    opts = dict(max_bond=max_bond, cutoff=cutoff, krylov_tol=krylov_tol, krylov_dim=krylov_dim)
    blocks = symmetry == "U1" and max_bond >= u1.BLOCKS_FROM_CHI and n > 1
    eng = u1.BlockTDVP(mpo, X0, charge=-1, **opts) if blocks else TDVP(mpo, X0, **opts)
    eng.deadline = deadline
    # the engine's log_norm counts from the canonical form; X0's own norm sets the scale
    offset = log0 - eng.log_norm
    out = np.empty((len(taus), n), complex)
    t, steps, one_site, bond = 0.0, 0, 0, max(eng.bond_dims or [1])
    fixed = False  # once the bonds are at their ceilings they stay there: one-site steps
    for k, tau in enumerate(taus):
        while t < tau - 1e-12:
            nsub = max(1, math.ceil((tau - t) / dt - 1e-9))
            h = (tau - t) / nsub
            # never on the first step: s-_b annihilates half of site b's basis, so the bonds
            # beside b lose rank, and one-site steps cannot leave a rank-deficient manifold
            # (edge source at N = 8: 1.4e-2 off exact by tau = 0.5); one two-site step
            # lets the SVD refill them (3.6e-5)
            if not fixed and integrator == "auto" and n > 1 and steps > 0:
                dims = eng.bond_dims
                fixed = max(dims) <= max_bond and saturated(dims, max_bond)
            if fixed:
                eng.step1(h)
                one_site += 1
            else:
                eng.step(h)
            t = t + h if nsub > 1 else float(tau)
            steps += 1
            bond = max(bond, max(eng.bond_dims or [1]))
        out[k] = raising_traces(eng.state()) * math.exp(eng.log_norm + offset)
    return out, {"steps": steps, "one_site_steps": one_site, "matvecs": int(eng.matvecs),
                 "truncation": float(eng.truncation),
                 "bond": int(bond), "engine": "U1 blocks" if blocks else "dense"}


def two_time(system, taus, pairs=None, steady=None, *, max_bond: int | None = None, dt: float = 0.05,
             cutoff: float = 1e-10, mpo_cutoff: float | None = None, krylov_tol: float = 1e-10,
             krylov_dim: int = 30, collective: bool = True, error_bar: bool = True,
             symmetry: str = "auto", integrator: str = "auto", mirror: bool | None = None,
             progress: bool = False):
    r"""Steady-state two-time functions of a chain by quantum regression on the MPS.

    For every site b in the pairs, ``X_b(tau) = exp(L tau)(s-_b rho_ss)`` by TDVP
    (:func:`propagate`) and ``G_ab(tau) = Tr[s+_a X_b(tau)]`` for all a (module docstring);
    ``Z_ab = G_aa + G_ab + G_ba + G_bb`` and, with ``collective``,
    ``<J+(tau) J-(0)> = Tr[J+ exp(L tau)(J- rho_ss)]`` (docs/physics.md#two-time).
    Cost: one TDVP run per site in the pairs (plus one for J-), twice with ``error_bar``;
    a mirror-symmetric chain runs only one site of each mirror pair b, N - 1 - b.

    Parameters
    ----------
    system : DipoleSystem
        A 1D chain (positive semidefinite f).
    taus : array_like
        Strictly increasing delays >= 0 (1/Gamma); steps of at most ``dt`` land on each.
    pairs : None, int or list of (a, b)
        See :func:`mpsync.solvers.correlations.resolve_pairs`.
    steady : SteadyState, optional
        This solver's steady state (default: :func:`.ladder.steady_state` with default
        options).
    max_bond : int, optional
        Bond dimension of the propagation (default: the steady state's largest bond).
    dt : float
        Largest TDVP step (1/Gamma).
    cutoff, krylov_tol, krylov_dim
        As for :func:`.evolution.evolve`.
    mpo_cutoff : float, optional
        Compression of the Liouvillian MPO (as for :func:`.evolution.evolve`). Default:
        the steady state's own (``diagnostics["mpo_cutoff"]``, 1e-6 for the ladder's
        default), so that rho_ss is the fixed point of the propagator and G_ab(tau)
        does not drift by the difference of two compressions; 1e-10 for a steady
        state that does not record it.
    collective : bool
        Also <J+(tau) J-(0)> (one more run, unless the pairs cover every site).
    error_bar : bool
        Repeat at ``max_bond // 2`` from the lower rung's steady state;
        ``errors["Z"]``, ``errors["J"]`` are the differences (envelopes), and the
        lower run's curves are ``Z_lower``, ``J_lower`` of the result.
    symmetry : {"auto", "U1", "none"}
        Run bond dimensions from :data:`.u1.BLOCKS_FROM_CHI` on U(1) blocks (``"auto"``:
        with symmray on numpy, from N = :data:`BLOCKS_FROM_N`; the same numbers as dense
        to round-off, 2.5x faster at N = 16, chi = 32).
    integrator : {"auto", "2site"}
        ``"auto"``: two-site TDVP steps for the first step and until every bond is at its
        ceiling, one-site steps after (:func:`propagate`); ``"2site"``: two-site steps throughout (slower, the
        same error bar rule).
    mirror : bool, optional
        Use the mirror symmetry of the chain (f, g and the detunings unchanged under
        a -> N - 1 - a): the steady state and the dynamics are then mirror-symmetric, so
        G_ab = G_{N-1-a, N-1-b} and a source b needs no run of its own when N - 1 - b is
        a source. The MPO steady state is symmetric only to its own accuracy: its largest
        asymmetry, max |C_ab - C_{N-1-a,N-1-b}|, is added to the error bar of every
        mirrored G_ab (``diagnostics["mirror_asymmetry"]``). Default: when the system is
        mirror-symmetric; ``True`` for a system that is not raises InvalidOptionError.
    progress : bool
        tqdm bar over the runs.

    Returns
    -------
    TwoTimeResult
        ``errors`` (with ``error_bar``: ``Z``, ``J``, ``linewidth`` and
        ``frequency_spread``, the differences of the fitted linewidths and of the spreads
        of the sites' frequencies of the two runs); ``diagnostics``: ``max_bond``, ``low_bond``,
        ``runs`` (steps, one-site steps, matvecs, truncation per run), ``steady_ZQ_error``,
        ``error_bar_includes_steady_state``, ``mirror``, ``mirror_asymmetry``, ``seconds``.

    Warns
    -----
    NoErrorBarWarning
        With ``error_bar`` and a steady state that has no lower rung: the bar then
        misses the steady state's own error.

    Examples
    --------
    >>> import numpy as np, mpsync
    >>> s = mpsync.DipoleSystem.chain(6, spacing=0.1, theta="magic", W=2.0)
    >>> r = mpsync.two_time(s, np.linspace(0, 2, 21), method="mpo", pairs=[(2, 3)])  # doctest: +SKIP
    >>> float(np.max(r.errors["Z"])) < 1e-2  # doctest: +SKIP
    True
    """
    from ..correlations import assemble, check_taus, pair_sites, resolve_pairs, steady_of
    from .ladder import steady_state

    t0 = time.perf_counter()
    taus = check_taus(taus)
    n = system.n
    pairs = resolve_pairs(pairs, n)
    dt = positive("dt", dt)
    cutoff = positive("cutoff", cutoff, allow_zero=True)
    krylov_tol = positive("krylov_tol", krylov_tol)
    krylov_dim = positive("krylov_dim", krylov_dim, integer=True)
    _check_integrator(integrator)
    from ..exact.mirror import is_mirror_symmetric

    symmetric = n > 1 and is_mirror_symmetric(system)
    if mirror and not symmetric:  # read off a wrong image, G would be silently wrong
        raise InvalidOptionError("option mirror=True of method='mpo' (two_time): this system is not "
                                 "mirror-symmetric (f, g or the detunings change under a -> N - 1 - a); "
                                 "leave mirror at None or False")
    mirror = symmetric if mirror is None else bool(mirror)
    auto = symmetry == "auto"
    symmetry = u1.resolve_symmetry(symmetry, None)
    if auto and n < BLOCKS_FROM_N:
        symmetry = "none"
    if max_bond is not None:
        max_bond = positive("max_bond", max_bond, integer=True)
        if error_bar and max_bond < 2:
            raise InvalidOptionError("option max_bond=1 of method='mpo' (two_time) leaves no smaller bond "
                                     "dimension for the error bar; use max_bond >= 2 or error_bar=False")
    if mpo_cutoff is None:  # the steady state's own compression (the ladder's default if none given)
        own = getattr(steady, "diagnostics", None) or {}
        mpo_cutoff = own.get("mpo_cutoff", 1e-10 if steady is not None else
                             inspect.signature(steady_state).parameters["mpo_cutoff"].default)
    mpo_cutoff = positive("mpo_cutoff", mpo_cutoff, allow_zero=True)
    mpo, mpo_dims = build_mpo(system, mpo_cutoff)
    if max_bond is not None:
        check_fits(n, max_bond, mpo_dims, krylov_dim)
    steady = steady_of(steady, system, "mpo", steady_state, needs=("mps",))
    rho = [np.asarray(A) for A in steady.extras["mps"]]
    lower = steady.extras.get("previous_mps") if error_bar else None
    rho_low = rho if lower is None else [np.asarray(A) for A in lower]
    if error_bar and lower is None:
        warnings.warn("method='mpo' two_time: the steady state has no lower rung (a single "
                      "max_bond, or a ladder that certified one rung), so the error bar holds the propagation's "
                      "error only, not the steady state's; compute the steady state with the default "
                      "ladder for a full error bar", NoErrorBarWarning, stacklevel=3)
    chi = max_bond or max(int(A.shape[2]) for A in rho[:-1]) if n > 1 else 1
    chi = max(int(chi), 2)
    check_fits(n, chi, mpo_dims, krylov_dim)
    sources = list(pair_sites(pairs))
    extra_J = collective and len(sources) < n
    # a source whose mirror image is also a source is read off the image's run
    image = {b: n - 1 - b for b in sources if mirror and n - 1 - b in sources and n - 1 - b < b}
    runs_for = [b for b in sources if b not in image]
    asymmetry = 0.0
    if image:
        C = np.asarray(steady.correlations)
        asymmetry = float(np.max(np.abs(C - C[::-1, ::-1])))
    bonds = [chi, max(chi // 2, 1)] if error_bar else [chi]
    jobs = [(b, c) for c in bonds for b in runs_for] + ([("J", c) for c in bonds] if extra_J else [])
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(jobs), desc=f"mpo two-time N={n}")
    runs, values = [], {}
    try:
        for b, c in jobs:
            # the lower run starts from the lower rung's steady state (module docstring)
            start = rho if c == chi else rho_low
            X0 = apply_collective_lowering(start) if b == "J" else apply_lowering(start, int(b))
            v, info = propagate(mpo, X0, taus, c, dt, cutoff, krylov_tol, krylov_dim,
                                symmetry=symmetry, integrator=integrator)
            values[(b, c)] = v
            runs.append({"source": str(b), "max_bond": int(c), **info})
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"source {b}, chi={c}")
    finally:
        if bar is not None:
            bar.close()

    for b, b_image in image.items():  # G_ab = G_{N-1-a, N-1-b} (mirror)
        for c in bonds:
            values[(b, c)] = values[(b_image, c)][:, ::-1]

    def G(a, b, c=chi):
        return values[(b, c)][:, a]

    def G_err(a, b):
        diff = np.abs(values[(b, bonds[0])][:, a] - values[(b, bonds[-1])][:, a])
        return envelope(taus, diff) + (asymmetry if b in image else 0.0)

    J = J_low = sites = sites_low = None
    errors = {}
    if collective:
        # <s+_a(tau) J-(0)> for every a: the J- run's traces, or the sum over the sources
        if extra_J:
            sites, sites_low = values[("J", chi)].T, values[("J", bonds[-1])].T
        else:
            sites = sum(values[(b, chi)] for b in sources).T
            sites_low = sum(values[(b, bonds[-1])] for b in sources).T
        J, J_low = sites.sum(axis=0), sites_low.sum(axis=0)
        if error_bar:
            # each mirrored source adds N terms, each uncertain by the asymmetry
            errors["J"] = envelope(taus, np.abs(J - J_low)) + (0.0 if extra_J else asymmetry * n * len(image))
            if taus.size >= 4:
                # the linewidth's bar by the same rule: its fits at the two bond dimensions
                from ...observables import fit_damped_cosine, frequency_spread

                gam = [fit_damped_cosine(taus, x)[2] for x in (J, J_low)]
                errors["linewidth"] = np.float64(abs(gam[0] - gam[1]))
                spread = [frequency_spread(taus, x)[0] for x in (sites, sites_low)]
                spread_err = abs(spread[0] - spread[1])
                if not extra_J and image:
                    # every site's curve sums len(image) mirrored terms, each uncertain by the
                    # asymmetry: sigma_nu moves by at most the largest nu_a shift
                    from ...observables import phase_frequency_sensitivity

                    eps = asymmetry * len(image)
                    spread_err += eps * np.max([phase_frequency_sensitivity(taus, x) for x in sites])
                errors["frequency_spread"] = np.float64(spread_err)
    zq_err = steady.errors.get("ZQ")
    diagnostics = {"seconds": time.perf_counter() - t0, "N": n, "max_bond": int(chi),
                   "low_bond": int(bonds[-1]) if error_bar else None, "dt": float(dt),
                   "mpo_cutoff": float(mpo_cutoff), "runs": runs,
                   "mpo_bond_dims": mpo_dims,
                   "steady_ZQ_error": None if zq_err is None else float(np.max(zq_err)),
                   "error_bar_includes_steady_state": bool(error_bar and lower is not None),
                   "mirror": bool(image), "mirror_asymmetry": asymmetry, "integrator": integrator,
                   "steady_converged": steady.diagnostics.get("converged")}
    return assemble(system, "mpo", taus, pairs, G, J, errors, diagnostics,
                    G_error=G_err if error_bar else None,
                    G_lower=(lambda a, b: G(a, b, bonds[-1])) if error_bar else None,
                    J_lower=J_low if error_bar else None, J_sites=sites,
                    J_sites_lower=sites_low if error_bar else None)
