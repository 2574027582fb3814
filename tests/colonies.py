"""Synthetic phase-contrast colonies for the tests of the machine-made labels: dark rods in a bright halo on a
flat field, the kind of image the first reading gets wrong (the E. coli frames)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.draw import ellipse


def _in_halo(cells: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The image of dark ``cells``, each in a bright halo, on a flat grey field, with a little noise."""
    halo = ndi.binary_dilation(cells, iterations=12) & ~cells
    img = np.full(cells.shape, 0.5) + 0.35 * ndi.gaussian_filter(halo.astype(float), 4) - 0.3 * cells
    return ndi.gaussian_filter(img, 1) + rng.normal(0, 0.01, cells.shape)


def halo_colony(shape=(360, 480), n=8, seed=0) -> np.ndarray:
    """A phase-contrast colony: dark rods, each in a bright halo, clustered in the middle of a flat field.
    The image's defaults read the halo's edge as the threshold (what they did on the E. coli frames)."""
    rng = np.random.default_rng(seed)
    cells = np.zeros(shape, bool)
    cy, cx = shape[0] // 2, shape[1] // 2
    for _ in range(n):
        rr, cc = ellipse(cy + rng.uniform(-30, 30), cx + rng.uniform(-30, 30), 25, 8, shape,
                         rotation=rng.uniform(0, np.pi))
        cells[rr, cc] = True
    return _in_halo(cells, rng)


def rod_colony(shape=(360, 480), n=6, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Dark rods side by side, a bright line between two, in a bright halo on a flat field (phase
    contrast), and the rods."""
    rng = np.random.default_rng(seed)
    rods = np.zeros(shape, np.int32)
    cy, cx = shape[0] // 2, shape[1] // 2 - (n * 16) // 2
    for i in range(n):
        rr, cc = ellipse(cy + rng.uniform(-4, 4), cx + 16 * i, 28, 7, shape)
        rods[rr, cc] = i + 1
    return _in_halo(rods > 0, rng), rods
