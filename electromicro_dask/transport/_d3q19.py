"""The D3Q19 lattice shared by the lattice Boltzmann solvers (velocities, weights, opposites)."""

import numpy as np

#: Lattice velocities (axis order of the oriented array: flow axis first).
C = np.array([[0, 0, 0],
              [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1],
              [1, 1, 0], [-1, -1, 0], [1, -1, 0], [-1, 1, 0],
              [1, 0, 1], [-1, 0, -1], [1, 0, -1], [-1, 0, 1],
              [0, 1, 1], [0, -1, -1], [0, 1, -1], [0, -1, 1]])
#: Equilibrium weights.
W = np.array([1 / 3] + [1 / 18] * 6 + [1 / 36] * 12)
#: Index of the opposite velocity.
OPP = np.array([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17])
