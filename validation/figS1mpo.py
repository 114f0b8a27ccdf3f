"""Fig. S1 for the dipolar chain N = 70 with the MPO (beyond the seed paper):
`python validation/figS1mpo.py [--quick] [--out DIR]`.

A thin wrapper of :func:`mpsync.paper.figures.run_figure` (the same as `mpsync figure S1mpo`);
the data (NetCDF), the PNG and the numerical checks are described there. Exits 1 when a
check fails.
"""

import sys

from mpsync.paper.figures import main

if __name__ == "__main__":
    sys.exit(main("S1mpo"))
