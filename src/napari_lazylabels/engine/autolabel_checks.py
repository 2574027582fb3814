"""Machine-made labels that look wrong, read from the labels alone, told in plain words.

``autolabel`` reads the objects' size, polarity and threshold from the image. On an image unlike
those the reading was made for, it can go wrong without an error. Two signs are plain enough to
warn about:

* **The mask covers almost the whole image** (at least :data:`FULL_COVER`). The threshold split
  the background from something else, not the objects from the background. In phase contrast, the
  bright halo around dark bacteria does this.
* **A single point** (fewer than :data:`FEW_POINTS`) on an image with room for many objects of
  the size read (at least :data:`ROOM` objects' areas). The size read is then most likely a cluster
  of objects, or the whole colony, and not one object. Two points are not warned about: a small
  image may hold two nuclei.

Each sign gives one sentence that says what to set instead. The CLI prints them as warnings, and
the napari panel shows them with the preview.
"""

from __future__ import annotations

import math

import numpy as np

#: A mask covering at least this share of the image is taken for a failed threshold.
FULL_COVER = 0.95
#: Fewer points than this on a large image is taken for a failed size read.
FEW_POINTS = 2
#: ...when the image has room for at least this many objects of the size read.
ROOM = 20


def concerns(foreground: np.ndarray, n_points: int, diameter: float | None) -> list[str]:
    """What looks wrong with machine-made labels (see the module doc): one plain sentence per sign,
    none when they look sound."""
    fg = np.asarray(foreground) > 0
    found = []
    cover = float(fg.mean()) if fg.size else 0.0
    if cover >= FULL_COVER:
        found.append(f"the mask covers {100 * cover:.0f} % of the image: the threshold most likely split the "
                     "background from something else (e.g. the bright halo around dark cells in phase "
                     "contrast), not the objects from the background. Set the polarity or the threshold "
                     "yourself")
    if diameter and n_points < FEW_POINTS:
        room = fg.size / (math.pi * diameter * diameter / 4.0)
        if room >= ROOM:
            found.append(f"only {n_points} point for objects read as "
                         f"{diameter:.0f} px across: that size is most likely a cluster of objects, not one. "
                         "If the image holds more objects, set the object size yourself")
    return found
