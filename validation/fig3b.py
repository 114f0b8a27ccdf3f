"""Fig. 3b of the seed paper: `python validation/fig3b.py [--quick] [--out DIR]`.

A thin wrapper of :func:`mpsync.paper.figures.run_figure` (the same as `mpsync figure 3b`);
the data, the PNG and the numerical checks are described there. Exits 1 when a
check of the paper's statements fails.
"""

import sys

from mpsync.paper.figures import main

if __name__ == "__main__":
    sys.exit(main("3b"))
