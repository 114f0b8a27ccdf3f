"""Checkpoints of the MPO solver: the MPS, the ladder so far and the run controller.

A checkpoint is one ``.npz`` file holding

* ``format`` (``"mpsync-mpo-checkpoint"``) and ``version`` (:data:`VERSION`);
* the MPS tensors (numpy arrays, whatever the array backend);
* ``fingerprint``: SHA-256 of the arrays that define the Liouvillian (f, g, delta,
  W, gamma), so that a checkpoint is never resumed on a different system;
* ``options``: the options that change the answer (``max_bond`` or the ladder,
  ``cutoff``, ``mpo_cutoff``, ``zq_tol``, ...), refused when they differ on resume;
* ``state``: the loop's control state and the rungs finished so far (JSON);
* the MPS of the last two certified rungs (``R{j}_{a}``, their bond dimensions in
  ``state["certified_bonds"]``): what the ladder falls back on when the resumed rung is
  not certified or runs out of time, and the lower run of the two-time error bar.

The file is written to a temporary name and renamed, so a run killed while writing
leaves the previous checkpoint intact. Resuming restores the exact state of the loop,
so a resumed run reproduces an uninterrupted one step for step (bit for bit on the
same machine and backend).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile

import numpy as np
from autoray import to_numpy

from ...errors import MpsyncError, check_readable, check_writable

__all__ = ["CheckpointError", "system_fingerprint", "save_checkpoint", "load_checkpoint",
           "check_checkpoint_path", "VERSION"]

FORMAT = "mpsync-mpo-checkpoint"
#: version of the file layout; 2 added the format tag, the options and the ladder
VERSION = 2


class CheckpointError(MpsyncError, ValueError):
    """A checkpoint file cannot be used: unreadable, not an mpsync MPO checkpoint, another
    version, another system, or written with options that change the answer."""


def system_fingerprint(system) -> str:
    """SHA-256 of the arrays defining the Liouvillian (f, g, delta, W, gamma)."""
    h = hashlib.sha256()
    for arr in (system.f, system.g, system.delta, np.array([system.W, system.gamma])):
        h.update(np.ascontiguousarray(arr, dtype=float).tobytes())
    return h.hexdigest()


def _npz_path(path) -> str:
    path = os.fspath(path)
    return path if path.endswith(".npz") else path + ".npz"


def check_checkpoint_path(path) -> None:
    """Raise :class:`~mpsync.errors.OutputPathError` now (before any work) if the
    checkpoint file cannot be written."""
    check_writable(_npz_path(path), "checkpoint file")


def save_checkpoint(path, system, mps, state: dict, options: dict, certified=()) -> None:
    """Write ``mps``, the loop ``state`` and the answer-changing ``options`` to ``path``
    atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Target file; ``.npz`` is appended if missing.
    system : DipoleSystem
    mps : list of arrays
        Tensors ``(Dl, 4, Dr)`` of any autoray backend.
    state : dict
        JSON-serialisable loop variables (time, dt, step, rungs, ...).
    options : dict
        JSON-serialisable options that must match on resume.
    certified : sequence of (int, list of arrays)
        The certified rungs kept by the ladder, as (max_bond, MPS); restored by
        :func:`load_checkpoint` into ``state["certified"]``.
    """
    path = _npz_path(path)
    tmp = path + ".tmp.npz"
    arrays = {f"A{a}": np.asarray(to_numpy(A)) for a, A in enumerate(mps)}
    state = dict(state, certified_bonds=[int(chi) for chi, _ in certified])
    for j, (_, rung) in enumerate(certified):
        arrays.update({f"R{j}_{a}": np.asarray(to_numpy(A)) for a, A in enumerate(rung)})
    np.savez(tmp, format=FORMAT, version=VERSION, n=len(mps),
             fingerprint=system_fingerprint(system), options=json.dumps(options, sort_keys=True),
             state=json.dumps(state), **arrays)
    os.replace(tmp, path)


def load_checkpoint(path, system, options: dict):
    """Read and validate a checkpoint written by :func:`save_checkpoint`.

    Returns
    -------
    mps : list of numpy arrays
    state : dict
        The saved loop state; ``state["certified"]`` is the list of (max_bond, MPS) of
        the certified rungs saved with it (empty for a checkpoint written before them).

    Raises
    ------
    CheckpointError
        Unreadable or truncated file, not an mpsync MPO checkpoint, another version,
        another system, or other answer-changing options (each named).
    """
    given = os.fspath(path)
    path = given if os.path.exists(given) or not os.path.exists(given + ".npz") else given + ".npz"
    check_readable(path, "checkpoint file")
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = set(data.files)
            if "format" not in keys or str(data["format"]) != FORMAT:
                raise CheckpointError(f"{given} is not an mpsync MPO checkpoint (no format tag "
                                      f"{FORMAT!r}); start without --resume")
            version = int(data["version"])
            if version != VERSION:
                raise CheckpointError(f"checkpoint {given} has format version {version}; this "
                                      f"mpsync reads version {VERSION}. Start without --resume")
            if str(data["fingerprint"]) != system_fingerprint(system):
                raise CheckpointError(f"checkpoint {given} was written for a different system "
                                      "(f, g, delta, W or gamma differ); cannot resume from it")
            saved = json.loads(str(data["options"]))
            n = int(data["n"])
            mps = [np.array(data[f"A{a}"]) for a in range(n)]
            state = json.loads(str(data["state"]))
            state["certified"] = [(chi, [np.array(data[f"R{j}_{a}"]) for a in range(n)])
                                  for j, chi in enumerate(state.pop("certified_bonds", []))]
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {given} is unreadable or truncated "
                              f"({type(exc).__name__}); start without --resume") from None
    if n != system.n:
        raise CheckpointError(f"checkpoint {given} holds {n} sites, the system has {system.n}")
    wanted = json.loads(json.dumps(options, sort_keys=True))
    diff = [k for k in sorted(set(saved) | set(wanted)) if saved.get(k) != wanted.get(k)]
    if diff:
        shown = ", ".join(f"{k}={saved.get(k)!r} (asked {wanted.get(k)!r})" for k in diff)
        raise CheckpointError(f"checkpoint {given} was written with other options that change the "
                              f"answer: {shown}; resume with the same options or start afresh")
    return mps, state
