"""A long dipolar chain at the magic angle with the MPO solver, with its error bar.

The exact solver stops near N = 12 (C(2N, N) unknowns); the MPO solver stores the
density matrix as a vectorised matrix-product state and brings it to the steady state
by TDVP, climbing a bond-dimension ladder (8, 16, 32, ...) until two rungs agree in Z_Q
within ``zq_tol``. ``result.errors["ZQ"]`` is that difference: the error bar of Z_Q.
Measured (2-core VM, one BLAS thread): N = 50 in about 3 minutes, N = 100 in 26 (loaded)
(benchmarks/RESULTS.md). The state comes back as a quimb MatrixProductState.

Units: Gamma = 1, lengths in lambda. Run: ``python examples/long_chain_mpo.py [N]``.
"""

import sys

import numpy as np

import mpsync
from mpsync import DipoleSystem
from mpsync.solvers.mpo import operator_entanglement, reduced_density_matrix

n = int(sys.argv[1]) if len(sys.argv) > 1 else 20

# Dipoles 0.1 lambda apart, oriented at the magic angle where the near-field part of the
# elastic coupling g vanishes; pump W = 2 Gamma.
chain = DipoleSystem.chain(n, spacing=0.1, theta="magic", W=2.0)
print(f"N = {n}, f_eff = {chain.f_eff:.3f}, W = {chain.W:.3f}")

result = mpsync.steady_state(chain, method="mpo", zq_tol=1e-3, progress=True)
d = result.diagnostics
print(f"Z_Q = {result.ZQ:.5f} +- {result.errors['ZQ']:.1e}  ({d['stop_reason']}, {d['seconds']:.0f} s)")
for rung in d["ladder"]:
    print(f"  max_bond {rung['max_bond']:>4}: Z_Q = {rung['ZQ']:.6f}  ({rung['seconds']:.1f} s)")

# Synchronization inside windows of d neighbouring dipoles (Fig. 3(a)'s cluster Z_Q^d).
for w in (2, 5, 10, n):
    print(f"  Z_Q^d (d = {w:>3}) = {result.cluster_ZQ(w):.4f}")

# The state is a quimb MPS (site a: index k{a} = 2 i + j for |i><j|): ask it anything.
psi = result.state
print(f"  {psi.L} sites, bond dimension {psi.max_bond()}")
print(f"  operator entanglement at the middle cut: {operator_entanglement(psi)[n // 2 - 1]:.3f} bits")
rho3 = reduced_density_matrix(psi, [n // 2 - 1, n // 2, n // 2 + 1])
print(f"  three middle dipoles: purity {np.trace(rho3 @ rho3).real:.4f}")
np.save("long_chain_correlations.npy", result.correlations)
