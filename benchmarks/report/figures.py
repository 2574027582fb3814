"""The lazy suite's figures: accuracy against the strong-label ratio and against the annotation effort,
the approximations over the recursive rounds, and outlines on a crowded window of a test frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.harness.data import Dataset
from benchmarks.harness.methods import METHODS, RATIO_METHODS, SHORT_NAMES, TARGET_RATIO, Mode, ratio_of
from benchmarks.harness.results import prediction_file
from benchmarks.report.tables import METRIC_NAMES, rows_of
from napari_lazylabels.io.figures import overlay_rgb, pyplot

COLOURS = {"sl": "tab:orange", "pl": "tab:green", "mt": "tab:blue", "mtr": "tab:purple", "wl": "tab:red",
           "full": "black", "fullst": "tab:gray", "cp": "tab:brown", "cp10": "tab:olive"}
#: Each ratio method's line ends at 100 % on the method it is there.
AT_FULL = {"sl": "fullst", "pl": "fullst", "mt": "full", "cp10": "cp"}


def plot_ratio(path: Path, records: list[dict], families: list[str], budget: str | None = None) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(2, len(families), figsize=(4.2 * len(families), 6.4), squeeze=False)
    for j, fam in enumerate(families):
        rows = rows_of(records, fam, budget=budget)
        for i, metric in enumerate(("dice", "ap50")):
            ax = axes[i, j]
            for m in RATIO_METHODS:
                pts = [(r["ratio"], r[metric], r[metric + "_sd"]) for r in rows if r["method"] == m]
                if pts and m in AT_FULL:
                    pts += [(1.0, r[metric], r[metric + "_sd"]) for r in rows if r["method"] == AT_FULL[m]]
                if pts:
                    x, y, e = zip(*sorted(pts))
                    ax.errorbar([100 * v for v in x], y, yerr=e, fmt="o-", color=COLOURS[m], label=SHORT_NAMES[m],
                                capsize=2)
            for m, ls in (("wl", ":"), ("full", "--"), ("fullst", "-."), ("cp", (0, (5, 1, 1, 1)))):
                for r in rows:
                    if r["method"] == m:
                        ax.axhline(r[metric], color=COLOURS[m], ls=ls, lw=1, label=SHORT_NAMES[m])
            ax.set_xscale("log")
            ax.set_xticks([2.5, 5, 10, 100])
            ax.set_xticklabels(["2.5", "5", "10", "100"])
            ax.set_xlabel("images with strong masks (%)")
            ax.set_ylabel(METRIC_NAMES[metric])
            ax.set_title(fam, fontsize=10)
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_effort(path: Path, records: list[dict], families: list[str], budget: str | None = None) -> None:
    """AP50 against the annotation effort (pixels painted), every method and ratio."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(families), figsize=(4.2 * len(families), 3.6), squeeze=False)
    for j, fam in enumerate(families):
        ax = axes[0, j]
        for r in rows_of(records, fam, budget=budget):
            ax.errorbar(r["painted_pixels"], r["ap50"], yerr=r["ap50_sd"], fmt="o", color=COLOURS[r["method"]],
                        capsize=2)
            label = SHORT_NAMES[r["method"]] + (f" {100 * r['ratio']:g}%" if r["method"] in RATIO_METHODS else "")
            ax.annotate(label, (r["painted_pixels"], r["ap50"]), fontsize=5, xytext=(3, 2),
                        textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("pixels painted (all training images)")
        ax.set_ylabel("AP50")
        ax.set_title(fam, fontsize=10)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_rounds(path: Path, records: list[dict], families: list[str]) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for fam in families:
        rs = [r for r in records if r["family"] == fam and r["method"] == "mtr" and "approximation_dice" in r and
              r.get("variant", "default") == "default"]
        if not rs:
            continue
        near = [r["ratio"] for r in rs if r["ratio"] <= TARGET_RATIO + 1e-9]
        ratio = max(near) if near else rs[0]["ratio"]
        sel = [r for r in rs if r["ratio"] == ratio]
        n = min(len(r["approximation_dice"]) for r in sel)
        curves = np.array([r["approximation_dice"][:n] for r in sel])
        given = 100 * sel[0]["n_strong"] / max(sel[0]["n_train"], 1)
        ax.plot(range(n), curves.mean(0), "o-", label=f"{fam} ({given:.0f} % strong)")
        ax.set_xticks(range(n))
    ax.set_xlabel("round (0 = the blobs)")
    ax.set_ylabel("mean Dice of approximations\nto ground truth (training images)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def overlay_window(truth: np.ndarray, size: int = 256) -> tuple[slice, slice]:
    """A ``size`` x ``size`` window around the most crowded region of a ground-truth map."""
    h, w = truth.shape
    size = min(size, h, w)
    dens = np.pad(np.cumsum(np.cumsum((truth > 0).astype(np.int64), 0), 1), ((1, 0), (1, 0)))
    best, y0, x0 = -1, 0, 0
    for y in range(0, h - size + 1, 32):
        for x in range(0, w - size + 1, 32):
            s = dens[y + size, x + size] - dens[y, x + size] - dens[y + size, x] + dens[y, x]
            if s > best:
                best, y0, x0 = s, y, x
    return slice(y0, y0 + size), slice(x0, x0 + size)


def plot_overlays(path: Path, records: list[dict], datasets: dict[str, Dataset], mode: Mode, ratio: float,
                  cache: Path) -> None:
    """Predicted and true outlines on a crowded window of the first test image, per set and method."""
    plt = pyplot()
    shown = list(datasets.values())
    methods = [m for m in METHODS if any(r["method"] == m for r in records)]
    fig, axes = plt.subplots(len(shown), len(methods), figsize=(max(2.6 * len(methods), 6.0), 2.8 * len(shown)),
                             squeeze=False)
    for i, ds in enumerate(shown):
        _, image, truth = ds.test[0]
        win = overlay_window(truth)
        for j, m in enumerate(methods):
            ax = axes[i, j]
            ax.set_axis_off()
            want = ratio_of(m, ratio)
            cand = [r for r in records if r["dataset"] == ds.name and r["method"] == m and
                    abs(r["ratio"] - want) < 1e-9 and r.get("variant", "default") == "default" and
                    r.get("seed", 0) == 0 and r.get("budget", mode.budget) == mode.budget]
            f = prediction_file(cache, mode.name, cand[0]["key"]) if cand and "key" in cand[0] else None
            if not cand or f is None or not f.exists():
                continue
            pred = np.load(f)["instances"]
            shown_image = image[win] if image.ndim == 2 else image[win + (slice(None),)]
            ax.imshow(overlay_rgb(shown_image, pred, reference=truth[win]))
            ax.set_title(f"{ds.family}: {SHORT_NAMES[m]}\nDice {cand[0]['dice']:.3f} AP50 {cand[0]['ap50']:.3f}",
                         fontsize=7)
    fig.suptitle(f"first test image: predicted (red) and true (green) outlines; {100 * ratio:g} % strong labels",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


