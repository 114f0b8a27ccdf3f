"""One map abstraction for every parallel run (trajectories, sweeps).

``parallel_map(fn, tasks, executor=...)`` runs ``fn`` over ``tasks`` and returns
the results in task order, whatever ran them:

- ``executor=None`` or ``"local"``: local processes (``workers`` of them, one BLAS
  thread each so that processes do not oversubscribe the cores);
- ``executor="serial"`` or ``workers=1``: in this process;
- a ``dask.distributed.Client`` or a scheduler address ``"tcp://host:port"``.

Reproducibility never depends on the executor: tasks carry their own seeds
(see :func:`spawn_seeds`).
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np

__all__ = ["parallel_map", "spawn_seeds", "default_workers"]


def default_workers() -> int:
    """Number of local worker processes: ``MPSYNC_WORKERS`` or the CPU count."""
    env = os.environ.get("MPSYNC_WORKERS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def spawn_seeds(seed, count: int) -> list:
    """``count`` independent child seeds (ints) from one user seed, reproducibly."""
    ss = np.random.SeedSequence(seed)
    return [int(c.generate_state(1, dtype=np.uint64)[0]) for c in ss.spawn(count)]


def _single_thread_init():
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except Exception:  # pragma: no cover - threadpoolctl is a dependency
        pass


def _dask_client(executor):
    if isinstance(executor, str) and executor.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        try:
            from dask.distributed import Client
        except ImportError as exc:  # pragma: no cover
            raise ImportError("a Dask scheduler address needs the 'dask' extra: pip install 'mpsync[dask]'") from exc
        return Client(executor), True
    if type(executor).__name__ == "Client" and hasattr(executor, "submit"):
        return executor, False
    return None, False


def parallel_map(fn, tasks, executor=None, workers: int | None = None, progress=False,
                 description: str = "tasks", on_result=None):
    """Apply ``fn`` to each task, possibly in parallel; results in task order.

    Parameters
    ----------
    fn : callable
        A picklable (module-level) function of one argument.
    tasks : sequence
    executor : None, "local", "serial", dask Client or scheduler address
    workers : int, optional
        Local processes (default: :func:`default_workers`).
    progress : bool
        Show a tqdm progress bar.
    on_result : callable, optional
        Called as ``on_result(index, result)`` as each task finishes (e.g. to cache it).
    """
    tasks = list(tasks)
    results = [None] * len(tasks)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc=description)

    def done(i, r):
        results[i] = r
        if on_result is not None:
            on_result(i, r)
        if bar is not None:
            bar.update(1)

    try:
        client, own = _dask_client(executor)
        if client is not None:
            from dask.distributed import as_completed as dask_completed

            futs = client.map(fn, tasks, pure=False)
            index = {f.key: i for i, f in enumerate(futs)}
            for fut in dask_completed(futs):
                done(index[fut.key], fut.result())
            if own:
                client.close()
            return results
        nworkers = workers or default_workers()
        if executor == "serial" or nworkers <= 1 or len(tasks) <= 1:
            for i, t in enumerate(tasks):
                done(i, fn(t))
            return results
        if executor not in (None, "local"):
            raise ValueError(f"unknown executor {executor!r}: use 'local', 'serial', a dask Client "
                             "or a scheduler address tcp://host:port")
        with ProcessPoolExecutor(max_workers=min(nworkers, len(tasks)), initializer=_single_thread_init) as pool:
            futs = {pool.submit(fn, t): i for i, t in enumerate(tasks)}
            for fut in as_completed(futs):
                done(futs[fut], fut.result())
        return results
    finally:
        if bar is not None:
            bar.close()
