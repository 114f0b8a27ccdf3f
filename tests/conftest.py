import os

# One BLAS thread per test process: the CI machine has 2 cores and
# oversubscription makes dense linear algebra 10-400x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

threadpool_limits(1)


@pytest.fixture
def rng():
    """A seeded generator, so every random test case is reproducible."""
    return np.random.default_rng(1234)


def random_psd_f(rng, n, gamma=1.0, scale=0.8):
    """A random real symmetric positive semidefinite f with f_aa = gamma."""
    a = rng.normal(size=(n, n))
    m = a @ a.T
    d = np.sqrt(np.diag(m))
    f = m / np.outer(d, d) * scale
    np.fill_diagonal(f, 1.0)
    return gamma * f


def random_g(rng, n, scale=1.0):
    g = rng.normal(size=(n, n)) * scale
    g = (g + g.T) / 2
    np.fill_diagonal(g, 0.0)
    return g


@pytest.fixture
def killed_mpo_run(monkeypatch, tmp_path):
    """``run(system, opts, kill_after)``: an MPO ladder killed right after its
    ``kill_after``-th checkpoint; returns the checkpoint's path (to resume from)."""
    import mpsync
    from mpsync.solvers.mpo import checkpoint as ck
    from mpsync.solvers.mpo import ladder

    class Killed(Exception):
        pass

    def run(system, opts, kill_after):
        path = tmp_path / "run.npz"
        real = ck.save_checkpoint
        count = {"n": 0}

        def save_then_die(*a, **k):
            real(*a, **k)
            count["n"] += 1
            if count["n"] == kill_after:
                raise Killed

        monkeypatch.setattr(ladder, "save_checkpoint", save_then_die)
        with pytest.raises(Killed):
            mpsync.steady_state(system, checkpoint=path, **opts)
        monkeypatch.setattr(ladder, "save_checkpoint", real)
        return path
    return run
