"""Quantum phase diagram of the all-to-all ensemble, Z_Q over (W, f_eff) (Fig. 2(b)).

f_ab = f_eff / N for a != b, g = delta = 0: the permutation-symmetric solver is
exact and fast (N = 50 in well under a second per point). The grid runs through the
sweep engine: local processes, a progress bar, and a cache in .mpsync-cache/ so that a
rerun (or a killed run) skips finished points.

Units: Gamma = 1. Run: ``python examples/all_to_all_phase_diagram.py``.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from mpsync import ZQ_MAX
from mpsync.solvers.meanfield import phase_diagram
from mpsync.sweeps import save_dataset, sweep

N = 50
W = np.linspace(0.5, 40, 25)
f_eff = np.linspace(2, N, 20)      # f_eff <= N keeps f_ab <= Gamma (a valid Lindblad equation)

ds = sweep(dict(model="all_to_all", n=N, f_eff=1.0, W=1.0), {"f_eff": list(f_eff), "W": list(W)},
           method="permutational", cache_dir=".mpsync-cache/phase_diagram",
           observables=("ZQ", "ZQ2", "sz_mean", "mutual_information"))
save_dataset(ds, "all_to_all_phase_diagram.nc")

# The mean-field order parameter (supplement Eq. 5) on the same grid, for comparison.
z_mf = phase_diagram(W, f_eff)

fig, axes = plt.subplots(1, 2, figsize=(8, 3.4), sharey=True)
for ax, data, title in ((axes[0], z_mf, "mean field Z"), (axes[1], ds.ZQ.values, f"Z_Q, N = {N}")):
    m = ax.pcolormesh(W, f_eff, data, shading="auto", vmin=0, vmax=ZQ_MAX)
    ax.plot(f_eff / 2, f_eff, "w--", lw=0.8)           # the optimum W ~ f_eff / 2
    ax.set_xlabel("W / Gamma")
    ax.set_title(title)
axes[0].set_ylabel("f_eff / Gamma")
fig.colorbar(m, ax=axes)
fig.savefig("all_to_all_phase_diagram.png", dpi=120)
best = ds.ZQ.isel(f_eff=-1)
print(f"f_eff = {f_eff[-1]:g}: optimum W = {float(best.idxmax()):.2f}, "
      f"Z_Q = {float(best.max()):.4f} (1/sqrt 8 = {ZQ_MAX:.4f})")
