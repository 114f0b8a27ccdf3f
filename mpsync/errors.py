"""Exceptions and resource checks shared by every solver.

Every error a user can trigger with bad input is a subclass of
:class:`MpsyncError`, so the CLI can print one line and exit with code 2.
"""

from __future__ import annotations

import os

__all__ = [
    "MpsyncError",
    "InvalidSystemError",
    "NotApplicableError",
    "TooLargeError",
    "InvalidOptionError",
    "ConvergenceError",
    "ConvergenceWarning",
    "available_memory_bytes",
    "check_memory",
    "format_bytes",
]


class MpsyncError(Exception):
    """Base class of every user-facing mpsync error."""


class InvalidSystemError(MpsyncError, ValueError):
    """The dipole system (couplings, rates, shapes) is not valid for the requested use."""


class NotApplicableError(MpsyncError, ValueError):
    """The requested method does not apply to this system; the message names one that does."""


class TooLargeError(MpsyncError, MemoryError):
    """The estimated memory of a computation exceeds what is available."""


class InvalidOptionError(MpsyncError, ValueError):
    """A solver option is unknown to the method or has a bad value; the message names
    the option, the method and the options it does take."""


class ConvergenceError(MpsyncError, RuntimeError):
    """A solver could not produce a usable result (diverged or ended on an unphysical
    state); the message names what to change."""


class ConvergenceWarning(UserWarning):
    """A result was returned although the solver did not reach its stopping criterion;
    ``result.diagnostics["converged"]`` is False and ``stop_reason`` says why."""


def available_memory_bytes() -> int:
    """Memory the process may use: ``MPSYNC_MAX_MEMORY`` (bytes, or with suffix K/M/G)
    if set, otherwise the machine's available physical memory."""
    env = os.environ.get("MPSYNC_MAX_MEMORY")
    if env:
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
        s = env.strip().upper().rstrip("B")
        if s and s[-1] in units:
            return int(float(s[:-1]) * units[s[-1]])
        return int(float(s))
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def format_bytes(nbytes: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{int(nbytes)} B"


def check_memory(nbytes: float, what: str, alternatives: str = "", fraction: float = 0.8) -> None:
    """Raise :class:`TooLargeError` before allocating if ``nbytes`` will not fit.

    Parameters
    ----------
    nbytes : float
        Estimated peak memory of the computation.
    what : str
        Description of the computation, e.g. ``"N=16 in the exact solver"``.
    alternatives : str
        Methods that would serve instead, e.g. ``"method='mpo' or 'trajectories'"``.
    fraction : float
        Fraction of the available memory that may be used.
    """
    avail = available_memory_bytes()
    if nbytes > fraction * avail:
        msg = f"{what} needs ~{format_bytes(nbytes)} but only {format_bytes(avail)} is available"
        if alternatives:
            msg += f"; use {alternatives}"
        raise TooLargeError(msg)
