"""napari sample data: synthetic nuclei with their lazy labels, and one real HeLa image.

* ``synthetic nuclei``: a stack of 8 synthetic 256x256 fluorescence images
  (each plane is one training image) with the lazy labels a biologist would
  paint: blobs and interface scribbles on every plane, exact masks on one.
* ``HeLa nuclei (real)``: a 256x256 crop of a real widefield image (see
  ``data/README.md`` for its source and licence), to annotate by hand.
* ``noisy nuclei``: a stack of 4 MIBI-like synthetic images (sparse ion
  counts) with fg/bg scribbles on the first two planes (15 % of their
  objects) and nothing on the others, which a run with the scribbles'
  self-supervised loss trains on too.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import numpy as np

from ..engine.regimes import registry
from ..engine.synthetic import MIBI, make_lazy_dataset
from .layers import META, input_keys, label_dtype, label_layer_kwargs

SYNTHETIC_NAME = "synthetic nuclei"
NOISY_NAME = "noisy nuclei"
REAL_NAME = "HeLa nuclei (real)"
CLASS_NAMES = ["nucleus"]
DATA = files("napari_lazylabels") / "data"


def synthetic_stack(n_images: int = 8, shape: tuple[int, int] = (256, 256), seed: int = 0):
    """Images (N, Y, X) float32, input key -> labels (N, Y, X), and plane -> inputs marked annotated."""
    items, _ = make_lazy_dataset(n_images, seed=seed, shape=shape, strong_fraction=1 / n_images)
    marks = {(i,): {t: True for t, v in it.annotated.items() if v} for i, it in enumerate(items)}
    image = np.stack([it.image for it in items]).astype(np.float32)
    labels = {}
    for key in sorted({k for it in items for k in it.labels}, key=list(input_keys()).index):
        planes = [it.labels.get(key) for it in items]
        labels[key] = np.stack([np.zeros(shape) if p is None else p for p in planes]).astype(
            label_dtype(len(CLASS_NAMES)))
    return image, labels, marks


def synthetic_sample() -> list[tuple[Any, dict, str]]:
    """The synthetic stack with its simulated lazy labels as layers (blobs, scribbles, one plane of masks).

    Every plane is marked annotated for what the simulator gave it: it knows
    where nuclei touch, so a plane without scribbles truly has no interface.
    """
    image, labels, marks = synthetic_stack()
    meta = {"class_names": CLASS_NAMES, "annotated": marks}
    layers = [(image, {"name": SYNTHETIC_NAME, "metadata": {META: meta}}, "image")]
    for key, data in labels.items():
        layers.append((data, label_layer_kwargs(SYNTHETIC_NAME, key, CLASS_NAMES), "labels"))
    return layers


def real_image() -> np.ndarray:
    import tifffile

    with (DATA / "hela_t00_crop_image.tif").open("rb") as fh:
        return tifffile.imread(fh)


def real_instances() -> np.ndarray:
    """The crop's instance labels (for scripts and tests that simulate a user's painting)."""
    import tifffile

    with (DATA / "hela_t00_crop_labels.tif").open("rb") as fh:
        return tifffile.imread(fh)


def real_sample() -> list[tuple[Any, dict, str]]:
    """The real HeLa crop, ready for its lazy labels."""
    return [(real_image(), {"name": REAL_NAME, "metadata": {META: {"class_names": CLASS_NAMES}}}, "image")]


def noisy_sample(n_images: int = 4, painted: int = 2, shape: tuple[int, int] = (256, 256)
                 ) -> list[tuple[Any, dict, str]]:
    """MIBI-like nuclei with fg/bg scribbles (the regime whose task is self-supervised) on the
    first ``painted`` planes, nothing on the others."""
    regime = registry.self_supervised_regimes()[0]
    key = regime.inputs[0].key
    items, _ = make_lazy_dataset(n_images, seed=5, shape=shape, style=MIBI, regimes=[regime],
                                 scribble_budget=0.15)
    image = np.stack([it.image for it in items]).astype(np.float32)
    strokes = np.stack([it.labels[key] if i < painted else np.zeros(shape) for i, it in enumerate(items)])
    return [(image, {"name": NOISY_NAME, "metadata": {META: {"class_names": CLASS_NAMES}}}, "image"),
            (strokes.astype(label_dtype(len(CLASS_NAMES))), label_layer_kwargs(NOISY_NAME, key, CLASS_NAMES),
             "labels")]
