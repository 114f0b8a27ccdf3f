"""Two-time correlations and the emission spectrum of a synchronized ensemble.

The steady-state first-order coherence g1(tau) = <J+(tau) J-(0)> (quantum regression
theorem, exact for the all-to-all ensemble with the permutational solver) and its Fourier
transform, the emission spectrum S(omega) = (1/pi) Re int_0^inf g1(tau) e^{-i omega tau} dtau,
both from ``mpsync.two_time`` (one face for every method that gives two-time functions).
The printout compares the linewidth gamma (fit of A cos(nu tau) exp(-gamma tau)) with Z_Q at pumps
below, at and above the optimum W ~ f_eff / 2 (compare supplement Fig. S1).
The pair function Z_ab(tau) of Fig. 3(b) comes from the cumulant solver for large N.

Units: Gamma = 1, times in 1/Gamma. Run: ``python examples/two_time_spectrum.py``.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import mpsync
from mpsync import DipoleSystem

N, f_eff = 40, 15.0
taus = np.linspace(0, 20, 801)
omega = np.linspace(-6, 6, 401)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.2))
for W in (2.0, 7.5, 20.0):
    system = DipoleSystem.all_to_all(N, f_eff, W)
    steady = mpsync.steady_state(system, method="permutational")
    g1 = mpsync.two_time(steady, taus, pairs=[])              # <J+(tau) J-(0)> only
    gamma, gamma_err = g1.linewidth
    spectrum = g1.spectrum(omega)
    print(f"W = {W:5.1f}: Z_Q = {steady.ZQ:.3f}, linewidth gamma = {gamma:.3f} +- {gamma_err:.1g}, "
          f"Gamma/gamma = {1 / gamma:.2f} (spectrum: window {spectrum.window}, "
          f"resolution {spectrum.resolution:.2f} Gamma)")
    ax1.semilogy(taus, np.abs(g1.J), label=f"W={W:g}")
    ax2.plot(omega, spectrum.S / spectrum.S.max(), label=f"W={W:g}")

# Z_ab(tau) of two dipoles in a larger ensemble, from the cumulant expansion.
big = DipoleSystem.all_to_all(200, f_eff, 7.5)
pair = mpsync.two_time(big, np.linspace(0, 5, 201), method="cumulant", pairs=[(0, 1)])
print(f"cumulant, N = 200: Z_01(0) = {pair.Z[0, 0].real:.3f}, fitted gamma = {pair.fits['gamma'][0]:.3f} "
      f"+- {pair.fits['gamma_err'][0]:.1g}")
ax1.set_xlabel("Gamma tau")
ax1.set_ylabel("|<J+(tau) J-(0)>|")
ax2.set_xlabel("omega / Gamma")
ax2.set_ylabel("S(omega) (normalised)")
ax1.legend()
fig.tight_layout()
fig.savefig("two_time_spectrum.png", dpi=120)
