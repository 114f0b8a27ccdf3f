"""Fig. 4 at N = 24 with the MPO, a = 0.05 lambda (beyond the seed paper):
`python validation/fig4mpo.py [--quick] [--out DIR]`.

A thin wrapper of :func:`mpsync.paper.figures.run_figure` (the same as `mpsync figure 4mpo`);
the data (NetCDF), the PNG and the numerical checks are described there. Exits 1 when a
check fails.
"""

import sys

from mpsync.paper.figures import main

if __name__ == "__main__":
    sys.exit(main("4mpo"))
