"""Pictures: overlays of predictions on images, loss curves (matplotlib, no GUI)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no window)."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def boundaries(instances: np.ndarray) -> np.ndarray:
    """Pixels on the boundary of an instance (bool)."""
    from skimage.segmentation import find_boundaries
    return find_boundaries(instances, mode="inner")


def display_image(image: np.ndarray) -> np.ndarray:
    """Grey image scaled 0..1 by its 1-99.8 percentiles (mean of channels for YXC)."""
    img = image.astype(np.float32)
    if img.ndim == 3:
        img = img.mean(axis=-1)
    lo, hi = np.percentile(img, [1, 99.8])
    return np.clip((img - lo) / (hi - lo if hi > lo else 1.0), 0, 1)


def overlay_rgb(image: np.ndarray, instances: np.ndarray, colour=(1.0, 0.2, 0.1),
                reference: np.ndarray | None = None, reference_colour=(0.1, 0.9, 0.2)) -> np.ndarray:
    """RGB picture: the image in grey, instance outlines in ``colour`` and,
    if given, reference (ground-truth) outlines in ``reference_colour``."""
    grey = display_image(image)
    rgb = np.stack([grey] * 3, axis=-1)
    if reference is not None:
        rgb[boundaries(reference)] = reference_colour
    rgb[boundaries(instances)] = colour
    return rgb


def save_overlay_figure(path: str | Path, panels: Sequence[dict], title: str = "") -> Path:
    """One column per panel (dict with image, instances, optional reference,
    title); top row the image, bottom row the overlay. Written as PNG."""
    plt = pyplot()
    n = len(panels)
    fig, axes = plt.subplots(2, n, figsize=(3.2 * n, 6.6), squeeze=False)
    for i, p in enumerate(panels):
        axes[0, i].imshow(display_image(p["image"]), cmap="gray")
        axes[0, i].set_title(p.get("title", ""), fontsize=9)
        axes[1, i].imshow(overlay_rgb(p["image"], p["instances"], reference=p.get("reference")))
        axes[1, i].set_title(p.get("subtitle", ""), fontsize=9)
        for ax in axes[:, i]:
            ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def save_loss_curve(path: str | Path, history: dict[str, list[float]]) -> Path:
    """Per-task loss over steps (a running mean, NaN steps skipped)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, values in history.items():
        v = np.asarray(values, dtype=float)
        if v.size == 0 or np.all(np.isnan(v)):
            continue
        steps = np.arange(1, v.size + 1)
        ok = ~np.isnan(v)
        k = max(1, ok.sum() // 50)
        smooth = np.convolve(v[ok], np.ones(k) / k, mode="valid")
        ax.plot(steps[ok][k - 1:], smooth, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
