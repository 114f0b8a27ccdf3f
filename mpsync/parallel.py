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
import signal
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np

from .errors import MpsyncError

__all__ = ["parallel_map", "spawn_seeds", "default_workers", "Terminated", "SchedulerError",
           "DEFAULT_SCHEDULER_TIMEOUT", "terminate_on_sigterm"]

#: seconds to wait for a Dask scheduler before giving up
DEFAULT_SCHEDULER_TIMEOUT = 5.0


class Terminated(KeyboardInterrupt):
    """Raised in the main process on SIGTERM (see :func:`terminate_on_sigterm`), so that
    a terminated run unwinds like an interrupted one: workers are stopped, finished work
    is kept."""

    def __init__(self, signum=signal.SIGTERM):
        super().__init__(f"terminated by signal {int(signum)}")
        self.signum = int(signum)


class SchedulerError(MpsyncError, ConnectionError):
    """The Dask scheduler could not be reached in time."""


def terminate_on_sigterm():
    """Make SIGTERM raise :class:`Terminated` in the main thread (returns the old handler)."""
    def handler(signum, frame):
        raise Terminated(signum)

    return signal.signal(signal.SIGTERM, handler)


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
    # a worker leaves interrupts to the parent, which stops it (SIGKILL) and keeps what finished
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except Exception:  # pragma: no cover - threadpoolctl is a dependency
        pass


def _dask_client(executor, timeout=DEFAULT_SCHEDULER_TIMEOUT):
    if isinstance(executor, str) and executor.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        try:
            from dask.distributed import Client
        except ImportError:  # pragma: no cover
            raise MpsyncError("a Dask scheduler address needs the 'dask' extra: "
                              "pip install 'mpsync[dask]'") from None
        timeout = DEFAULT_SCHEDULER_TIMEOUT if timeout is None else float(timeout)
        if not timeout > 0:
            raise MpsyncError(f"the scheduler timeout must be > 0 seconds, got {timeout}")
        try:
            return Client(executor, timeout=timeout), True
        except (OSError, TimeoutError) as exc:
            raise SchedulerError(f"could not reach the Dask scheduler {executor} within {timeout:g} s "
                                 f"({type(exc).__name__}); is it running?") from None
    if type(executor).__name__ == "Client" and hasattr(executor, "submit"):
        return executor, False
    return None, False


def _kill_pool(pool):
    """Stop a process pool at once: kill its workers, drop queued tasks."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    # taken before shutdown(), which sets the pool's attribute to None
    manager = getattr(pool, "_executor_manager_thread", None)
    for p in procs:
        try:
            p.kill()
        except (OSError, AttributeError):  # pragma: no cover - already gone
            pass
    for p in procs:
        try:
            p.join(5)
        except (OSError, AttributeError, AssertionError):  # pragma: no cover
            pass
    pool.shutdown(wait=False, cancel_futures=True)
    # Let the pool's manager thread see its dead workers and close its wakeup pipe now:
    # left running into interpreter exit, concurrent.futures' exit hook wrote to that pipe
    # after an interrupt and printed an "Exception ignored ... Bad file descriptor"
    # traceback below the CLI's one-line message (measured on SIGINT, 2026-12-07; the
    # first fix read the thread after shutdown(), found None and joined nothing, and the
    # traceback came back on SIGTERM under load).
    if manager is not None:
        try:
            manager.join(5)
        except RuntimeError:  # pragma: no cover - not started
            pass


def parallel_map(fn, tasks, executor=None, workers: int | None = None, progress=False,
                 description: str = "tasks", on_result=None, scheduler_timeout=None):
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
    scheduler_timeout : float, optional
        Seconds to wait for a Dask scheduler given by address (default
        :data:`DEFAULT_SCHEDULER_TIMEOUT`); :class:`SchedulerError` after that.

    An interrupt (``KeyboardInterrupt``, or :class:`Terminated` on SIGTERM when the
    caller installed :func:`terminate_on_sigterm`) kills the local worker processes
    (or cancels the Dask futures) before it propagates; tasks already finished have
    been passed to ``on_result``.
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
        if workers is not None and (isinstance(workers, bool) or int(workers) != workers or workers < 1):
            raise MpsyncError(f"workers must be an integer >= 1, got {workers!r}")
        client, own = _dask_client(executor, scheduler_timeout)
        if client is not None:
            from dask.distributed import as_completed as dask_completed

            futs = client.map(fn, tasks, pure=False)
            index = {f.key: i for i, f in enumerate(futs)}
            try:
                for fut in dask_completed(futs):
                    done(index[fut.key], fut.result())
            except BaseException:
                client.cancel(futs)
                raise
            finally:
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
        pool = ProcessPoolExecutor(max_workers=min(nworkers, len(tasks)), initializer=_single_thread_init)
        try:
            futs = {pool.submit(fn, t): i for i, t in enumerate(tasks)}
            for fut in as_completed(futs):
                done(futs[fut], fut.result())
        except BaseException:
            _kill_pool(pool)
            raise
        pool.shutdown(wait=True)
        return results
    finally:
        if bar is not None:
            bar.close()
