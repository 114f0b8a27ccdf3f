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
    "InvalidSiteError",
    "OutputPathError",
    "check_writable",
    "check_writable_dir",
    "check_readable",
    "ConvergenceError",
    "ConvergenceWarning",
    "NoErrorBarWarning",
    "StrongExchangeWarning",
    "UnphysicalStateError",
    "UnphysicalStateWarning",
    "NotLindbladWarning",
    "warn_if_not_lindblad",
    "available_memory_bytes",
    "fits_in_memory",
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


class InvalidSiteError(MpsyncError, IndexError, ValueError):
    """A dipole index out of range (or a pair of equal indices where two sites are needed)."""


class OutputPathError(MpsyncError, OSError):
    """An output path (``--save``, ``--checkpoint``, a sweep's ``out`` or ``cache_dir``)
    cannot be written, or an input file cannot be read; checked before any work."""


class ConvergenceError(MpsyncError, RuntimeError):
    """A solver could not produce a usable result (diverged or ended on an unphysical
    state); the message names what to change."""


class ConvergenceWarning(UserWarning):
    """A result was returned although the solver did not reach its stopping criterion;
    ``result.diagnostics["converged"]`` is False and ``stop_reason`` says why."""


class NoErrorBarWarning(UserWarning):
    """An approximate result that carries no error estimate (for example one MPO rung at an
    explicit ``max_bond``): its numbers may be off by more than any figure in ``errors``
    (which is empty) suggests; ``diagnostics`` states what is known (the MPO rung's
    certificate ``||P_2 L rho|| / ||rho||``)."""


class StrongExchangeWarning(UserWarning):
    """The exchange couplings are far above the dissipative rates (the MPO's
    ``max |g_ab| / (Gamma + W)`` above :data:`mpsync.solvers.mpo.ladder.STRONG_EXCHANGE`):
    there the fixed points of the MPO's projected flow are biased at every bond dimension
    below the exact one by more than the rungs differ, so the ladder's error bar does not
    bound the error. The result is returned with ``diagnostics["converged"]`` False (unless
    the ladder reached the exact bond dimension); ``method='exact'`` is the answer at
    N <= 14 (docs/solvers.md, the MPO's "Validity")."""


class UnphysicalStateError(MpsyncError, ValueError):
    """An entropy, mutual information, discord or QFI was asked of a matrix that is not a
    density matrix (an eigenvalue below ``-mpsync.observables.STATE_TOL``), from an
    exact method; the message names the eigenvalue."""


class UnphysicalStateWarning(UserWarning):
    """The same for an approximate method (cumulant, mean field, trajectories, MPO): the
    observable is returned as NaN and this warning names the eigenvalue."""


class NotLindbladWarning(UserWarning):
    """f is not positive semidefinite, so the master equation is not of Lindblad form; the
    mean-field and cumulant equations still exist and are solved, but their result describes
    no physical dipole system (e.g. all-to-all with f_eff / N > Gamma)."""


def user_stacklevel() -> int:
    """``stacklevel`` for ``warnings.warn`` called right here that points at the first frame
    outside the mpsync package (the user's line, not a dispatcher inside mpsync)."""
    import sys

    frame, level = sys._getframe(2), 2      # the caller of the function that calls this
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == "mpsync":
        frame, level = frame.f_back, level + 1
    return level


def warn_if_not_lindblad(system, method: str, rtol: float = 1e-9) -> None:
    """Warn (:class:`NotLindbladWarning`) when f is not positive semidefinite.

    For the methods that do not need Lindblad form (mean field, cumulant): they still
    solve their equations, but no physical state has those moments. The test is a
    Cholesky factorisation of f + rtol * scale * 1 (scale = max(Gamma, max |f_ab|),
    the tolerance of :meth:`~mpsync.model.DipoleSystem.lindblad_decomposition`),
    O(N^3 / 3); only when it fails is the smallest eigenvalue computed for the message.
    The outcome is cached on the system.
    """
    import warnings

    import numpy as np
    from scipy import linalg

    cache = getattr(system, "_cache", None)
    if cache is not None and "psd_lmin" in cache:
        lmin = cache["psd_lmin"]
    else:
        f = np.asarray(system.f, dtype=float)
        scale = max(float(np.max(np.abs(f))), float(system.gamma))
        try:
            linalg.cholesky(f + rtol * scale * np.eye(f.shape[0]), lower=True, check_finite=False)
            lmin = None
        except linalg.LinAlgError:
            lmin = float(linalg.eigvalsh(f, subset_by_index=[0, 0], check_finite=False)[0])
            if lmin >= -rtol * scale:  # Cholesky broke down on round-off only
                lmin = None
        if cache is not None:
            cache["psd_lmin"] = lmin
    if lmin is not None:
        warnings.warn(
            f"f is not positive semidefinite (smallest eigenvalue {lmin:.6g}): the master equation is "
            f"not of Lindblad form, so {method} solves equations that no physical dipole system obeys "
            "(e.g. all-to-all needs f_eff / N <= Gamma)", NotLindbladWarning, stacklevel=user_stacklevel())


def check_writable(path, what: str = "output file", make_parents: bool = False):
    """Raise :class:`OutputPathError` unless a file can be created at ``path``: ``path`` is
    not a folder and its folder exists and is writable (or, with ``make_parents``, can be
    created). Returns the path."""
    from pathlib import Path

    p = Path(path).expanduser()
    if p.is_dir():
        raise OutputPathError(f"{what} {str(path)!r} is a folder; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OutputPathError(f"cannot write {what} {str(path)!r}: {str(probe)!r} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise OutputPathError(f"cannot write {what} {str(path)!r}: permission denied")
    if probe != parent and not make_parents:
        raise OutputPathError(f"cannot write {what} {str(path)!r}: folder {str(parent)!r} does not exist")
    return p


def check_writable_dir(path, what: str = "output folder"):
    """Raise :class:`OutputPathError` unless files can be written in folder ``path`` (it is
    a writable folder, or can be created). Returns the path."""
    from pathlib import Path

    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise OutputPathError(f"{what} {str(path)!r} is a file, not a folder")
    probe = p
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OutputPathError(f"cannot create {what} {str(path)!r}: {str(probe)!r} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write {what} {str(path)!r}: permission denied")
    return p


def check_readable(path, what: str = "input file"):
    """Raise :class:`OutputPathError` unless ``path`` is a readable file. Returns the path."""
    from pathlib import Path

    p = Path(path).expanduser()
    if not p.exists():
        raise OutputPathError(f"{what} {str(path)!r} not found")
    if p.is_dir() or not os.access(p, os.R_OK):
        raise OutputPathError(f"cannot read {what} {str(path)!r}")
    return p


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


def fits_in_memory(nbytes: float, fraction: float = 0.8) -> bool:
    """Whether ``nbytes`` is at most ``fraction`` of the available memory (the test of
    :func:`check_memory`, for callers that ask before choosing a size)."""
    return nbytes <= fraction * available_memory_bytes()


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
    if not fits_in_memory(nbytes, fraction):
        avail = available_memory_bytes()
        msg = f"{what} needs ~{format_bytes(nbytes)} but only {format_bytes(avail)} is available"
        if alternatives:
            msg += f"; use {alternatives}"
        raise TooLargeError(msg)
