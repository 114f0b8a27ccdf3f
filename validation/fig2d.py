"""Fig. 2d of the seed paper: `python validation/fig2d.py [--quick] [--out DIR]`.

A thin wrapper of :func:`mpsync.paper.figures.run_figure` (the same as `mpsync figure 2d`);
the data, the PNG and the numerical checks are described there. Exits 1 when a
check of the paper's statements fails.
"""

import sys

from mpsync.paper.figures import main

if __name__ == "__main__":
    sys.exit(main("2d"))
