"""Whole frames cut into training tiles with one method's labels: the data of the fgbg and points
suites (the lazy suite's tiles are :func:`harness.data.lazy_dataset`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.harness.data import SPLITS, load_frames
from benchmarks.harness.regimes import strong_key
from napari_lazylabels.engine.annotations import LazyAnnotations
from napari_lazylabels.engine.simulate import annotation_cost, total_annotation_cost
from napari_lazylabels.engine.synthetic import MIBI, make_image, make_test_set

Frame = tuple[str, np.ndarray, np.ndarray]     # (name, image, instances)


@dataclass
class FrameData:
    """Training and test images of a set; each training frame is cut into ``tiles`` x ``tiles``."""

    name: str
    train: list[Frame]
    test: list[Frame]
    split: str
    tiles: int = 1


@dataclass
class Budget:
    """A training budget: steps of batches of patches."""

    steps: int
    batch_size: int
    patch_size: int


#: The data of each mode: the MIBI-like synthetic set, and the real sets with the splits every suite
#: shares (``data.SPLITS``: frames of one time-lapse, sections of one volume or fields of one slide
#: split whole, never inside a frame).
REAL_SETS = ("hela", "phase", "em", "he")
FRAME_SETS = {
    "quick": {"mibi": dict(n_train=16, n_test=6), **{n: SPLITS["quick"][n] for n in REAL_SETS}},
    "full": {"mibi": dict(n_train=40, n_test=12), **{n: SPLITS["full"][n] for n in REAL_SETS}},
}
#: The share of the tiles that keep their exact masks in the "lazy" method of these suites.
STRONG_RATIO = 0.10


def load_frame_data(name: str, mode: str, data_dir: Path | None) -> FrameData:
    """The frames of ``name`` (``mibi``: the MIBI-like synthetic set; else a real set in ``data_dir``)."""
    spec = FRAME_SETS[mode][name]
    if name == "mibi":
        train = [(f"mibi_{i:03d}", t.image, t.instances) for i, t in enumerate(
            make_image(s, (256, 256), style=MIBI) for s in _seeds(spec["n_train"]))]
        test = [(f"mibi_test_{i:03d}", t.image, t.instances)
                for i, t in enumerate(make_test_set(spec["n_test"], seed=0, style=MIBI))]
        split = (f"the MIBI-like mode of the synthetic generator: {len(train)} training images 256x256 and "
                 f"{len(test)} test images from disjoint seed streams")
        return FrameData(name, train, test, split)
    fs = load_frames(name, mode, data_dir)
    return FrameData(name, fs.train, fs.test, f"{fs.split}: {fs.tiles ** 2 * len(fs.train)} training images",
                     tiles=fs.tiles)


def _seeds(n: int) -> list[int]:
    return [int(np.random.SeedSequence([0, 0, i]).generate_state(1)[0]) for i in range(n)]


def items_from_tiles(tiles: list[tuple], method: str) -> tuple[list[LazyAnnotations], dict]:
    """Training images from (name, image, instances, labels) tiles, and the cost of their labels; for
    the lazy method the exact masks are kept on STRONG_RATIO of the tiles (those that hold objects first);
    the lazy and full methods mark every task annotated where it has labels."""
    key = strong_key()
    if method == "lazy":
        order = [int(i) for i in np.random.default_rng([0, 7]).permutation(len(tiles))]
        order = [i for i in order if tiles[i][2].any()] + [i for i in order if not tiles[i][2].any()]
        keep = set(order[:max(1, int(round(STRONG_RATIO * len(tiles))))])
        tiles = [(n, im, inst, {**lab, key: lab[key] if i in keep else None})
                 for i, (n, im, inst, lab) in enumerate(tiles)]
    items, costs = [], []
    for name, image, inst, labels in tiles:
        items.append(LazyAnnotations(image, labels=dict(labels), name=name,
                                     annotated={k: v is not None for k, v in labels.items()}
                                     if method in ("lazy", "full") else {}))
        costs.append(annotation_cost(labels, inst))
    return items, total_annotation_cost(costs)
