"""A parameter sweep on a Dask cluster: Z_Q over the chain's spacing and orientation.

Without arguments a LocalCluster (2 single-threaded workers) is started here; with a
scheduler address the same code runs on a real cluster::

    dask scheduler                      # on the head node
    dask worker tcp://head:8786 --nthreads 1     # on every node (one BLAS thread each)
    python examples/dask_sweep.py tcp://head:8786

Equivalent from the command line: ``mpsync sweep examples/sweep_spec.toml --scheduler tcp://head:8786``.
Finished points are cached (here in .mpsync-cache/dask_sweep) by the client, so a killed
sweep resumes where it stopped. Units: Gamma = 1, lengths in lambda.
"""

import sys

import numpy as np

from mpsync.sweeps import save_dataset, sweep



def main():
    base = dict(model="chain", n=6, spacing=0.1, theta="magic", W=1.0)
    grid = {"spacing": [0.05, 0.1, 0.2], "theta": list(np.round(np.linspace(0.4, np.pi / 2, 5), 4)),
            "W_over_feff": [0.5, 1.0]}

    if len(sys.argv) > 1:
        executor, cluster = sys.argv[1], None          # "tcp://host:port"
    else:
        from dask.distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
        executor = Client(cluster)

    ds = sweep(base, grid, method="exact", executor=executor, cache_dir=".mpsync-cache/dask_sweep")
    save_dataset(ds, "dask_sweep.nc")
    best = ds.ZQ.max("W_over_feff")
    print(best.to_pandas().round(4))
    if cluster is not None:
        executor.close()
        cluster.close()


if __name__ == "__main__":  # worker processes re-import this file: start the cluster only here
    main()
