"""MPO solver for long dipole chains (issue 3): Liouvillian MPO, vectorized MPS, TDVP."""
