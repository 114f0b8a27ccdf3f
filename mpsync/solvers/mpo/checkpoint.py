"""Checkpoints of the MPO solver's time evolution: the MPS, the clock and the step controller.

A checkpoint is one ``.npz`` file holding the MPS tensors (as numpy arrays,
whatever the array backend), the evolved time, the current and initial time
steps, the step count and the controller's memory (last Z_Q, residual history),
plus a fingerprint of the system (f, g, delta, W, gamma) so that a checkpoint is
never resumed on a different system. The file is written to a temporary name and
renamed, so a run killed while writing leaves the previous checkpoint intact.
Resuming restores the exact state of the loop, so a resumed run reproduces an
uninterrupted one step for step.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
from autoray import to_numpy

from ...errors import InvalidSystemError

__all__ = ["system_fingerprint", "save_checkpoint", "load_checkpoint"]


def system_fingerprint(system) -> str:
    """SHA-256 of the arrays defining the Liouvillian (f, g, delta, W, gamma)."""
    h = hashlib.sha256()
    for arr in (system.f, system.g, system.delta, np.array([system.W, system.gamma])):
        h.update(np.ascontiguousarray(arr, dtype=float).tobytes())
    return h.hexdigest()


def save_checkpoint(path, system, mps, state: dict) -> None:
    """Write ``mps`` and the loop ``state`` (JSON-serialisable dict) to ``path`` atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Target file; ``.npz`` is appended by numpy if missing, so pass a name ending in ``.npz``.
    system : DipoleSystem
    mps : list of arrays
        Tensors ``(Dl, 4, Dr)`` of any autoray backend.
    state : dict
        Loop variables (time, dt, step, ...).
    """
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path = path + ".npz"
    tmp = path + ".tmp.npz"
    arrays = {f"A{a}": np.asarray(to_numpy(A)) for a, A in enumerate(mps)}
    np.savez(tmp, n=len(mps), fingerprint=system_fingerprint(system),
             state=json.dumps(state), **arrays)
    os.replace(tmp, path)


def load_checkpoint(path, system):
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns
    -------
    mps : list of numpy arrays
    state : dict

    Raises
    ------
    InvalidSystemError
        If the file belongs to a different system.
    """
    path = os.fspath(path)
    if not os.path.exists(path) and os.path.exists(path + ".npz"):
        path = path + ".npz"
    with np.load(path, allow_pickle=False) as data:
        if str(data["fingerprint"]) != system_fingerprint(system):
            raise InvalidSystemError(f"checkpoint {path} was written for a different system "
                                     "(f, g, delta, W or gamma differ); cannot resume from it")
        n = int(data["n"])
        mps = [np.array(data[f"A{a}"]) for a in range(n)]
        state = json.loads(str(data["state"]))
    return mps, state
