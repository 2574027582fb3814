"""A picture of what ``--split-pairs`` (``AutolabelConfig.split_pairs``) does to the machine-made points: one
training frame of each set, the points with the split off, and where the default (``auto``: only where the
objects are round) gives a part two points instead of one, over the true outlines.

    nice -n 10 python -m benchmarks.split_pairs_figure --out docs/img/autolabel_split_pairs.png

Where the objects do not read as round, the panel shows what ``on`` would have split instead (the reason it
is not the default there). No training; a few seconds a frame.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.harness.config import BenchConfig
from benchmarks.harness.data import gray_or_rgb
from napari_lazylabels.engine.autolabel import AutolabelConfig, autolabel
from napari_lazylabels.io.figures import boundaries, display_image, pyplot

SETS = ("synthetic", "mibi", "hela", "he")
NAMES = {"synthetic": "synthetic", "mibi": "MIBI-like (noisy)", "hela": "HeLa", "he": "H&E (he/)"}
#: The panel's window (px): the top-left corner of the frame.
WINDOW = 256


def _at(point: np.ndarray) -> tuple:
    """Where a point lies (to 1/1000 px): the key that tells the same point in two sets of labels."""
    return tuple(np.round(point[:2], 3))


def changed_points(image: np.ndarray, name: str, split: str = "auto") -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """The points with the split off that stay, those it takes away (one per split part), those it adds
    (two per split part) with ``split_pairs=split``, and whether it split. A new point that falls on the
    old one of its part counts as kept: the parts split are ``len(added) - len(lost)``."""
    img = gray_or_rgb(image)
    before = autolabel(img, AutolabelConfig(split_pairs="off"), source=name).points
    after = autolabel(img, AutolabelConfig(split_pairs=split), source=name)
    old, new = {_at(p) for p in before}, {_at(p) for p in after.points}
    kept = np.array([p for p in before if _at(p) in new]).reshape(-1, 3)
    lost = np.array([p for p in before if _at(p) not in new]).reshape(-1, 3)
    added = np.array([p for p in after.points if _at(p) not in old]).reshape(-1, 3)
    return kept, lost, added, bool(after.reading.pairs_split)


def _scatter(ax, points: np.ndarray, **style) -> None:
    inside = points[(points[:, 0] < WINDOW) & (points[:, 1] < WINDOW)]
    ax.scatter(inside[:, 1], inside[:, 0], **style)


def draw(out: Path, sets=SETS, config: BenchConfig | None = None) -> Path:
    from benchmarks.suites.points import load
    config = config or BenchConfig()
    plt = pyplot()
    fig, axes = plt.subplots(1, len(sets), figsize=(3.6 * len(sets), 4.3), squeeze=False)
    for ax, ds in zip(axes[0], sets):
        name, image, truth = load(ds, 1, config).train[0]
        kept, lost, added, split = changed_points(image, f"{ds}/{name}")
        n = len(added) - len(lost)          # each split part has one point more
        state = f"round: {n} part{'' if n == 1 else 's'} split in the frame"
        if not split:
            kept, lost, added, _ = changed_points(image, f"{ds}/{name}", "on")
            n = len(added) - len(lost)
            state = f"not round: unchanged\n(always on would split {n} part{'' if n == 1 else 's'})"
        win = (slice(0, WINDOW), slice(0, WINDOW))
        rgb = np.stack([display_image(np.asarray(image))[win]] * 3, axis=-1)
        rgb[boundaries(np.asarray(truth)[win])] = (0.1, 0.8, 0.2)
        ax.imshow(rgb)
        _scatter(ax, kept, c="cyan", s=14, marker="o")
        _scatter(ax, lost, c="red", s=40, marker="x", linewidths=1.6)
        _scatter(ax, added, facecolors="none", edgecolors="magenta", s=80, linewidths=1.6)
        ax.set_title(f"{NAMES[ds]}: {state}", fontsize=9)
        ax.set_axis_off()
    fig.suptitle("machine-made points (cyan); a large elongated part loses its one point (red x) for two "
                 "(magenta circles); true outlines green", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.split_pairs_figure", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("docs/img/autolabel_split_pairs.png"))
    ap.add_argument("--datasets", nargs="*", default=list(SETS), choices=SETS)
    args = ap.parse_args(argv)
    print(draw(args.out, args.datasets))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
