"""The shared map abstraction: same results, same order, whatever runs the tasks."""

import numpy as np
import pytest

from mpsync.parallel import parallel_map, spawn_seeds


def _draw(seed):
    return np.random.default_rng(seed).normal(size=3)


def test_seeds_are_reproducible_and_distinct():
    a, b = spawn_seeds(42, 5), spawn_seeds(42, 5)
    assert a == b and len(set(a)) == 5
    assert spawn_seeds(43, 5) != a


def test_local_processes_equal_serial():
    seeds = spawn_seeds(7, 6)
    serial = parallel_map(_draw, seeds, executor="serial")
    local = parallel_map(_draw, seeds, executor="local", workers=2)
    np.testing.assert_array_equal(np.array(serial), np.array(local))


def test_on_result_callback_and_unknown_executor():
    seen = []
    parallel_map(_draw, [1, 2, 3], executor="serial", on_result=lambda i, r: seen.append(i))
    assert sorted(seen) == [0, 1, 2]
    with pytest.raises(ValueError, match="executor"):
        parallel_map(_draw, [1, 2, 3], executor="gpu-cloud", workers=2)


def test_kill_pool_stops_the_manager_thread():
    """After _kill_pool the pool's manager thread has finished (and closed its wakeup pipe):
    left alive into interpreter exit, concurrent.futures' exit hook wrote to that pipe and
    printed a Bad-file-descriptor traceback below the CLI's one line on SIGINT/SIGTERM."""
    import concurrent.futures
    import time

    from mpsync.parallel import _kill_pool

    pool = concurrent.futures.ProcessPoolExecutor(max_workers=2)
    futures = [pool.submit(time.sleep, 30) for _ in range(4)]
    manager = pool._executor_manager_thread
    assert manager is not None and manager.is_alive()
    _kill_pool(pool)
    assert not manager.is_alive()
    assert all(f.done() for f in futures)  # the running ones broken, the queued ones cancelled
