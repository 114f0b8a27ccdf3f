"""Root conftest: loaded for every pytest run, including the doctests of ``mpsync/``.

One BLAS thread per process (the CI machine has 2 cores and oversubscription makes
dense linear algebra 10-400x slower), set before numpy is imported; and
``importorskip`` in the doctest namespace, so that a docstring example needing an
optional package (dask, qutip) starts with ``>>> importorskip("dask")`` and is
skipped cleanly where the package is missing.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _doctest_importorskip(doctest_namespace):
    doctest_namespace["importorskip"] = pytest.importorskip
