"""The paper's reproductions, built on the solvers (which never import this package).

- :mod:`mpsync.paper.studies`: the data behind figures that need more than a sweep
  (conditional QFI of trajectories, Fig. 3(b) spectra, Fig. S2 pair information).
- :mod:`mpsync.paper.figures`: every figure (``mpsync figure NAME``,
  ``validation/fig*.py``).
- :mod:`mpsync.paper.validate`: the cross-method agreement table
  (``mpsync validate``, ``validation/agreement.md``).
- :mod:`mpsync.paper.demo`: the quick tour (``mpsync demo``).
"""
