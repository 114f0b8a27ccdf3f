r"""MPO solver for long dipole chains: the density matrix as a vectorised MPS.

The density matrix of N dipoles is a matrix-product state of local dimension 4
(per-site index ``s = 2 i + j``, ket i, bra j) and the Liouvillian

.. math:: \mathcal{L}\rho = -i[H, \rho] + L_f[\rho] + L_W[\rho]

(``docs/physics.md``; Gamma = 1, lengths in lambda, times in 1/Gamma) a
matrix-product operator whose long-range f and g are compressed through the
numerical rank of the coupling matrices. Only 1D chains (in the order of the sites)
are accepted; other geometries raise :class:`~mpsync.errors.NotApplicableError`
naming the methods that apply.

Entry points (the shared solver interface)::

    steady_state(system, *, max_bond=None, ladder=None, zq_tol=1e-3, ...)  # the ladder
    evolve(system, times, initial="down", *, max_bond=64, dt=0.05, ...)
    two_time(system, taus, pairs=None, steady=None, *, max_bond=None, dt=0.05, ...)

The modules, one algorithm each:

=================  ==============================================================
:mod:`.ladder`     the steady state: bond-dimension ladder, error bar, checkpoints
:mod:`.relax`      one rung: TDVP at fixed chi to its fixed point (``RunControl``)
:mod:`.evolution`  time evolution on an output grid
:mod:`.regression` two-time functions: s-_b rho_ss propagated by TDVP, error bar
:mod:`.tdvp`       the two-site / one-site TDVP integrator of ``d|rho>>/dt = L|rho>>``
:mod:`.liouvillian` the compressed Liouvillian MPO, residual
:mod:`.vectorized` traces, moments, compression of vectorised states
:mod:`.state`      quimb ``MatrixProductState`` / ``MatrixProductOperator`` views,
                   dense and reduced density matrices, operator entanglement
:mod:`.checkpoint` validated, atomic checkpoints
:mod:`.prepare`    checks, MPO build, initial state, memory estimate
=================  ==============================================================
"""

from __future__ import annotations

from .checkpoint import CheckpointError
from .evolution import evolve
from .ladder import DEFAULT_LADDER, steady_state
from .regression import two_time
from .prepare import build_mpo, check_chain, estimate_memory
from .state import (density_matrix, from_quimb, mpo_to_quimb, operator_entanglement,
                    reduced_density_matrix, to_quimb)

__all__ = ["steady_state", "evolve", "two_time", "check_chain", "build_mpo", "estimate_memory",
           "liouvillian", "DEFAULT_LADDER", "CheckpointError", "to_quimb", "from_quimb",
           "density_matrix", "reduced_density_matrix", "operator_entanglement"]


def liouvillian(system, mpo_cutoff: float = 1e-10):
    """The Liouvillian of a chain as a :class:`quimb.tensor.MatrixProductOperator`.

    Upper indices ``k{a}`` (output), lower ``b{a}`` (input), physical dimension 4 with
    the convention of :mod:`.state`; ``liouvillian(system).apply(result.state)`` is
    ``|L rho>>``.

    Examples
    --------
    >>> from mpsync import DipoleSystem, steady_state
    >>> from mpsync.solvers.mpo import liouvillian
    >>> system = DipoleSystem.chain(4, 0.2, "magic", W=2.0)
    >>> L = liouvillian(system)
    >>> ss = steady_state(system, method="mpo")
    >>> abs(L.apply(ss.state).norm() / ss.state.norm()) < 1e-4         # L rho = 0
    True
    """
    check_chain(system)
    tensors, _ = build_mpo(system, mpo_cutoff)
    return mpo_to_quimb(tensors)
