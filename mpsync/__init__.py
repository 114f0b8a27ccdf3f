"""mpsync: synchronization of arrays of radiating quantum dipoles.

Steady states and dynamics of N two-level dipoles with collective decay f,
exchange g, detunings delta and incoherent pump W (units: Gamma = 1, lengths in
units of lambda). Solvers share the entry points :func:`steady_state` and
:func:`evolve` and the result types :class:`SteadyState` and :class:`TimeSeries`;
:func:`two_time` gives steady-state two-time functions and spectra
(:class:`TwoTimeResult`).

Examples
--------
>>> import mpsync
>>> system = mpsync.DipoleSystem.chain(4, spacing=0.1, theta="magic", W=2.0)
>>> ss = mpsync.steady_state(system, method="exact")
>>> round(float(ss.ZQ), 4) > 0
True
"""

from .couplings import MAGIC_ANGLE
from .errors import (ConvergenceError, ConvergenceWarning, InvalidOptionError, InvalidSystemError,
                     MpsyncError, NoErrorBarWarning, NotApplicableError, StrongExchangeWarning,
                     TooLargeError)
from .model import DipoleSystem
from .observables import (ZQ_MAX, mutual_information, qfi, quantum_discord,
                          entanglement_witness_bounds)
from .result import Moments, Spectrum, SteadyState, TimeSeries, TwoTimeResult
from .solvers import METHODS, evolve, steady_state, two_time

__version__ = "0.1.0"

__all__ = [
    "DipoleSystem", "steady_state", "evolve", "two_time", "METHODS", "Moments", "SteadyState",
    "TimeSeries", "TwoTimeResult", "Spectrum",
    "mutual_information", "quantum_discord", "qfi", "entanglement_witness_bounds",
    "MAGIC_ANGLE", "ZQ_MAX", "MpsyncError", "InvalidSystemError", "NotApplicableError",
    "TooLargeError", "InvalidOptionError", "ConvergenceError", "ConvergenceWarning",
    "NoErrorBarWarning", "StrongExchangeWarning",
]


def __getattr__(name):
    # Sweeps pull in xarray; import them only when asked for.
    if name == "sweep":
        from .sweeps import sweep

        return sweep
    raise AttributeError(f"module 'mpsync' has no attribute {name!r}")
