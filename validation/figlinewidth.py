"""Linewidth of <J+(tau) J-(0)> at the optimal W vs chain length (beyond the seed paper):
`python validation/figlinewidth.py [--quick] [--out DIR]`.

A thin wrapper of :func:`mpsync.paper.figures.run_figure` (the same as `mpsync figure linewidth`);
the data (NetCDF), the PNG and the numerical checks are described there. Exits 1 when a
check fails.
"""

import sys

from mpsync.paper.figures import main

if __name__ == "__main__":
    sys.exit(main("linewidth"))
