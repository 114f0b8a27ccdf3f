"""Time evolution of a dipole chain's vectorised density matrix by two-site TDVP."""

from __future__ import annotations

import math
import time

from ...result import TimeSeries
from ...states import check_times
from .prepare import build_mpo, check_chain, check_fits, initial_mps, moments_of, positive
from . import u1
from .tdvp import TDVP, antihermitian_norm, expand_basis

__all__ = ["evolve"]

METHOD = "mpo"


def evolve(system, times, initial="down", *, max_bond: int = 64, cutoff: float = 1e-10,
           dt: float = 0.05, mpo_cutoff: float = 1e-10, progress: bool = False,
           like: str = "numpy", krylov_tol: float = 1e-10, krylov_dim: int = 30,
           symmetry: str = "auto"):
    r"""Time evolution ``d|rho>>/dt = L|rho>>`` of a chain from a product state, by two-site TDVP.

    Parameters
    ----------
    system : DipoleSystem
        A 1D chain with positive semidefinite f.
    times : array_like
        Increasing output times >= 0 (1/Gamma). Steps of at most ``dt`` land
        exactly on each output time.
    initial : "down", "up", "x" or list of 2 x 2 density matrices
    max_bond, cutoff : int, float
        Truncation of the MPS bond dimension.
    dt : float
        Largest TDVP step (second order in dt).
    mpo_cutoff : float
        Compression tolerance of the Liouvillian MPO.
    progress : bool
        tqdm bar over the output times.
    like : str
        autoray array backend.
    krylov_tol, krylov_dim : float, int
        Accuracy and size of the Arnoldi exponentials.
    symmetry : "auto", "U1" or "none"
        ``"U1"``: once a bond reaches 32 (:data:`.u1.BLOCKS_FROM_CHI`), continue on
        U(1) block-sparse tensors (:mod:`.u1`); only for an ``initial`` state without
        coherences (the charge n_ket - n_bra is then 0 and stays 0). ``"auto"``:
        ``"U1"`` on numpy, ``"none"`` (dense) on other backends.

    Returns
    -------
    TimeSeries
        Moments at each output time (unit trace); diagnostics ``seconds``,
        ``steps``, ``bond_dims`` (final), ``max_bond`` (largest seen),
        ``truncation``, ``antihermitian`` (largest seen), ``mpo_bond_dims``,
        ``symmetry`` (``"U1"`` when the run went on to blocks, else ``"none"``).
    """
    t_start = time.perf_counter()
    times = check_times(times)
    dt = positive("dt", dt)
    max_bond = positive("max_bond", max_bond, integer=True)
    cutoff = positive("cutoff", cutoff, allow_zero=True)
    mpo_cutoff = positive("mpo_cutoff", mpo_cutoff, allow_zero=True)
    krylov_tol = positive("krylov_tol", krylov_tol)
    krylov_dim = positive("krylov_dim", krylov_dim, integer=True)
    symmetry = u1.resolve_symmetry(symmetry, like)
    system.check_lindblad("method='mpo'")
    check_chain(system)
    n = system.n
    mpo, mpo_dims = build_mpo(system, mpo_cutoff, like)
    check_fits(n, max_bond, mpo_dims, krylov_dim)
    mps0 = initial_mps(initial, n, like)
    # blocks once the bonds are large enough to gain (a coherent initial state stays dense)
    to_blocks = symmetry == "U1" and max_bond >= u1.BLOCKS_FROM_CHI and u1.charge_zero(initial, n)
    eng = TDVP(mpo, mps0, max_bond=max_bond, cutoff=cutoff,
               krylov_tol=krylov_tol, krylov_dim=krylov_dim)
    snaps = []
    t = 0.0
    h0 = 1e-3 * min(float(dt), 1e-2)   # see tdvp.expand_basis
    if n > 2 and times[-1] > h0:
        if times[0] <= 0.0:
            snaps.append(moments_of(mps0))  # t = 0 exactly, before the expansion step
        eng = TDVP(mpo, expand_basis(mpo, mps0, h0, max_bond), max_bond=max_bond, cutoff=cutoff,
                   krylov_tol=krylov_tol, krylov_dim=krylov_dim)
        t = h0
    steps = 0
    chi_max = 1
    anti = 0.0
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(times), desc=f"mpo evolve N={n}")
    try:
        for target in times[len(snaps):]:
            while t < target - 1e-12:
                nsub = max(1, math.ceil((target - t) / dt - 1e-9))
                h = (target - t) / nsub
                eng.step(h)
                t = t + h if nsub > 1 else float(target)
                steps += 1
                chi_max = max(chi_max, max(eng.bond_dims or [1]))
                if to_blocks and chi_max >= u1.BLOCKS_FROM_CHI and type(eng) is TDVP:
                    eng = u1.BlockTDVP.from_engine(eng)
            state = eng.state()
            snaps.append(moments_of(state))
            anti = max(anti, antihermitian_norm(state))
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"t={t:.3g} chi={max(eng.bond_dims or [1])}")
    finally:
        if bar is not None:
            bar.close()
    diagnostics = {
        "seconds": time.perf_counter() - t_start,
        "steps": steps,
        "bond_dims": eng.bond_dims,
        "max_bond": chi_max,
        "truncation": float(eng.truncation),
        "antihermitian": float(anti),
        "mpo_bond_dims": mpo_dims,
        "matvecs": int(eng.matvecs),
        "backend": str(like),
        "symmetry": "U1" if isinstance(eng, u1.BlockTDVP) else "none",
    }
    return TimeSeries.from_snapshots(system, times, snaps, METHOD, diagnostics=diagnostics)
