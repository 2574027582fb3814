"""The benchmarks' data: one set of loaders and splits for every suite.

Real data lives in ``../shared/data`` beside the checkout (a git worktree one folder deeper finds it
too; ``LAZYLABELS_DATA`` names another folder; see :class:`harness.config.BenchConfig`): each set is a folder of ``<stem>_image.tif`` and
``<stem>_labels.tif`` (instance ground truth). :data:`SPLITS` says, per mode (``quick``, ``full``),
which frames train and which test, into how many tiles a training frame is cut, and how far apart
two objects may be and still count as touching for the simulated interface scribbles
(``max_gap``: the ground truth of E. coli, phase contrast and H&E leaves 1-4 px of background
between cells that touch in the image; EM cells are separated only by their 1-4 px membranes).
Frames of one time-lapse, sections of one volume or fields of one slide are split whole, never
inside a frame, and the test frames are far from the training ones where the source is a sequence.

:func:`load_frames` gives the whole frames; :func:`lazy_dataset` the training tiles of the lazy
suite with every label a method may use (lazy labels simulated from the ground truth on the whole
frame, then cut into tiles; GrabCut pseudo-masks, cached on disk because they take minutes on the
larger sets). The synthetic sets come from the project's generator.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from benchmarks.harness.regimes import seeds_key
from napari_lazylabels.engine.grabcut import grabcut_drafts
from napari_lazylabels.engine.simulate import simulate_lazy_labels
from napari_lazylabels.engine.synthetic import make_lazy_dataset, make_test_set

#: The hard sets: a U-Net trained on a few exact masks does not generalise across their texture,
#: stain and contrast.
HARD = ("phase", "em", "he")


def _frames(prefix: str, ids) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in ids)


#: Real data per mode: folder, training and test frames (file stems), the tile grid of a training
#: frame, the simulator's ``max_gap``, and whether tiles without any object are kept (each tile is
#: normalised on its own, which stretches the noise of an empty phase-contrast tile to the full
#: range: nothing like the background of a whole frame).
SPLITS: dict[str, dict[str, dict]] = {
    "quick": {
        "hela": dict(folder="hela", train=_frames("hela_", ("t00", "t06", "t12")), test=("hela_t19",), tiles=4,
                     max_gap=0, keep_empty=True),
        "ecoli": dict(folder="ecoli", train=_frames("ecoli_", ("t05", "t12")), test=("ecoli_t19",), tiles=4,
                      max_gap=4, keep_empty=False),
        "phase": dict(folder="phase", train=_frames("train_set", (1, 2, 3, 4)), test=("val_set46", "val_set47"),
                      tiles=2, max_gap=2, keep_empty=True),
        "em": dict(folder="em", train=_frames("isbi_", ("00", "01", "02", "03")), test=("isbi_26", "isbi_28"),
                   tiles=2, max_gap=4, keep_empty=True),
        "he": dict(folder="he", train=_frames("gbm_", ("01", "02", "03", "04")), test=("gbm_37", "gbm_39"),
                   tiles=2, max_gap=2, keep_empty=True),
    },
    "full": {
        "hela": dict(folder="hela", train=_frames("hela_", ("t00", "t06", "t12")), test=("hela_t19",), tiles=4,
                     max_gap=0, keep_empty=True),
        "ecoli": dict(folder="ecoli", train=_frames("ecoli_", ("t05", "t12")), test=("ecoli_t19",), tiles=4,
                      max_gap=4, keep_empty=False),
        "phase": dict(folder="phase", train=_frames("train_set", range(1, 16)),
                      test=_frames("val_set", range(46, 51)), tiles=2, max_gap=2, keep_empty=True),
        "em": dict(folder="em", train=_frames("isbi_", (f"{i:02d}" for i in range(20))),
                   test=_frames("isbi_", (f"{i:02d}" for i in range(24, 30))), tiles=2, max_gap=4, keep_empty=True),
        "he": dict(folder="he", train=_frames("gbm_", (f"{i:02d}" for i in range(1, 31))),
                   test=_frames("gbm_", (f"{i:02d}" for i in range(33, 41))), tiles=2, max_gap=2, keep_empty=True),
    },
}

#: How each real set is split (the word for one of its frames).
SPLIT_BY = {"hela": "frame", "ecoli": "frame", "phase": "frame (field of view)", "em": "section",
            "he": "image"}


def tiles(shape: tuple[int, int], grid: int = 4) -> list[tuple[slice, slice]]:
    """The ``grid`` x ``grid`` tiles of an image of YX ``shape`` (row by row)."""
    ys = np.linspace(0, shape[0], grid + 1).astype(int)
    xs = np.linspace(0, shape[1], grid + 1).astype(int)
    return [(slice(ys[i], ys[i + 1]), slice(xs[j], xs[j + 1])) for i in range(grid) for j in range(grid)]


def gray_or_rgb(image: np.ndarray) -> np.ndarray:
    """YX or YXC with 3-4 channels as they are; any other trailing axis: its first plane."""
    return image if image.ndim == 2 or image.shape[-1] in (3, 4) else image[..., 0]


Frame = tuple[str, np.ndarray, np.ndarray]     # (stem, image, instances)


@dataclass
class FrameSet:
    """Whole frames of a real set, split into training and test frames."""

    name: str
    train: list[Frame]
    test: list[Frame]
    split: str
    tiles: int = 1
    max_gap: int = 0
    keep_empty: bool = True


def load_frames(name: str, mode: str, data_dir: Path) -> FrameSet:
    """The training and test frames of the real set ``name`` in ``mode`` (from the folder of real sets
    ``data_dir``), with the split in words."""
    spec = SPLITS[mode][name]
    folder = Path(data_dir) / spec["folder"]

    def read(stem: str) -> Frame:
        return (stem, gray_or_rgb(tifffile.imread(folder / f"{stem}_image.tif")),
                tifffile.imread(folder / f"{stem}_labels.tif").astype(np.int32))

    g = spec["tiles"]
    split = (f"split by {SPLIT_BY.get(name, 'image')}: train {_ranges(spec['train'])} "
             f"(each cut into {g}x{g} tiles), test {_ranges(spec['test'])} (whole)")
    return FrameSet(name, [read(s) for s in spec["train"]], [read(s) for s in spec["test"]], split, g,
                    spec["max_gap"], spec["keep_empty"])


def _ranges(stems) -> str:
    stems = list(stems)
    return stems[0] if len(stems) == 1 else f"{stems[0]}..{stems[-1]} ({len(stems)})" if len(stems) > 4 else \
        ", ".join(stems)


# --- the lazy suite's datasets -----------------------------------------------------------

@dataclass
class Sample:
    """A training image (or tile) with its ground truth and every label a method may use."""

    name: str
    image: np.ndarray
    instances: np.ndarray
    labels: dict[str, np.ndarray]        # simulated lazy labels and exact masks, keyed by input key
    pseudo: np.ndarray | None = None     # GrabCut pseudo-masks drafted from the blobs (PL only)

    @property
    def has_objects(self) -> bool:
        return bool(self.instances.any())


@dataclass
class Dataset:
    name: str                             # e.g. he, synthetic-s0
    family: str                           # synthetic, hela, ecoli, phase, em, he
    train: list[Sample]
    test: list[Frame]                     # (name, image, instances)
    split: str
    order: list[int]                      # order in which images get strong masks

    def strong_set(self, ratio: float) -> set[int]:
        """The training images with exact masks at ``ratio``: max(1, round(ratio * n)), nested."""
        n = max(1, int(round(ratio * len(self.train)))) if ratio < 1 else len(self.train)
        return set(self.order[:n])


def strong_order(samples: list[Sample], seed: int) -> list[int]:
    """A random order of the images, those that hold objects first."""
    rng = np.random.default_rng([seed, 7])
    perm = [int(i) for i in rng.permutation(len(samples))]
    return [i for i in perm if samples[i].has_objects] + [i for i in perm if not samples[i].has_objects]



def _given(labels: dict) -> dict[str, np.ndarray]:
    """The simulated labels an image was given (input key -> array)."""
    return {k: np.asarray(v) for k, v in labels.items() if v is not None}


def pseudo_masks(image: np.ndarray, labels: dict, cache_tag: str | None = None,
                 cache: Path | None = None) -> np.ndarray:
    """GrabCut pseudo-masks drafted from the blobs; cached in the folder ``cache`` under a hash of the
    image and the blobs when ``cache_tag`` and ``cache`` are given."""
    blobs = labels[seeds_key()]
    path = None
    if cache_tag is not None and cache is not None:
        h = hashlib.sha1(np.ascontiguousarray(image).tobytes())
        h.update(np.ascontiguousarray(blobs).tobytes())
        path = Path(cache) / f"grabcut_{cache_tag}_{h.hexdigest()[:16]}.npz"
        if path.exists():
            return np.load(path)["drafts"]
    drafts = np.asarray(grabcut_drafts(image, blobs), np.int32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, drafts=drafts.astype(np.uint16))
        tmp.replace(path)
    return drafts


def synthetic_dataset(seed: int, n_train: int = 40, n_test: int = 8, pseudo: bool = True,
                      name: str | None = None) -> Dataset:
    """The project's synthetic nuclei: ``n_train`` training and ``n_test`` test images of 256x256 from
    disjoint seed streams."""
    items, truths = make_lazy_dataset(n_train, seed=seed, shape=(256, 256), strong_fraction=1.0)
    train = []
    for it, tr in zip(items, truths):
        labels = _given(it.labels)
        train.append(Sample(it.name, tr.image, tr.instances, labels,
                            pseudo_masks(tr.image, labels) if pseudo else None))
    tests = [(f"test_{i:03d}", t.image, t.instances)
             for i, t in enumerate(make_test_set(n_test, seed=seed, shape=(256, 256)))]
    return Dataset(name or f"synthetic-s{seed}", "synthetic", train, tests,
                   f"{len(train)} training images 256x256 (seed stream 'train'), {len(tests)} test images "
                   f"(seed stream 'test')", strong_order(train, seed))


def lazy_dataset(name: str, mode: str, data_dir: Path, pseudo: bool = True, cache: Path | None = None) -> Dataset:
    """A real set for the lazy suite: every training frame's lazy labels (blobs, interface scribbles
    across gaps up to the set's ``max_gap``, exact masks) simulated on the whole frame, then the frame
    cut into tiles (the training images); GrabCut pseudo-masks when ``pseudo`` (cached in ``cache``)."""
    fs = load_frames(name, mode, data_dir)
    train = []
    for k, (stem, image, inst) in enumerate(fs.train):
        lazy = simulate_lazy_labels(inst, rng=np.random.default_rng([k, 11]), strong=True, max_gap=fs.max_gap)
        labels = _given(lazy)
        drafts = pseudo_masks(image, labels, cache_tag=f"{name}_{stem}", cache=cache) if pseudo else None
        for t, (sy, sx) in enumerate(tiles(inst.shape, fs.tiles)):
            if not fs.keep_empty and not inst[sy, sx].any():
                continue
            train.append(Sample(f"{stem}_tile{t:02d}", image[sy, sx], inst[sy, sx],
                                {k2: v[sy, sx] for k2, v in labels.items()},
                                None if drafts is None else drafts[sy, sx]))
    kept = "" if fs.keep_empty else ", only the tiles that hold objects"
    gap = f"; interfaces across gaps up to {fs.max_gap} px" if fs.max_gap else ""
    split = f"{fs.split}: {len(train)} training images{kept}{gap}"
    return Dataset(name, name, train, fs.test, split, strong_order(train, 0))
