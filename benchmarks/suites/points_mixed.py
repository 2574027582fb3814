"""Machine-made labels with one part made exact: what each part of them costs the network.

Diagnostics of the points suite (``--methods NAME``), all on the machine-made mask unless named:

    centroids_machine_mask      a point at each true centroid (the exact points) + the machine mask
    machine_points_exact_mask   the machine points + the exact foreground
    centroids_of_found          the true centroid of each object a machine point falls in, no other point:
                                the machine points' recall with exact positions
    machine_points_and_missed   the machine points + the true centroid of each object none falls in:
                                every object pointed, the found ones where the detector put them

The mixes train on every pixel (no doubtful region of the machine labels is left out).
"""

from __future__ import annotations

import numpy as np

from napari_lazylabels.engine.instance_fitting_points import points_per_object
from napari_lazylabels.engine.points import point_pixels

NAMES = {"centroids_machine_mask": "points at centroids + machine foreground",
         "machine_points_exact_mask": "machine points + exact foreground",
         "centroids_of_found": "centroids of the objects machine points find + machine foreground",
         "machine_points_and_missed": "machine points + centroids of the objects they miss + machine foreground"}
METHODS = tuple(NAMES)


def _centroids_where(exact_points: np.ndarray, instances: np.ndarray, hit: np.ndarray, found: bool) -> np.ndarray:
    """The exact points (one per object, inside it) of the objects in ``hit`` (``found``) or not in it."""
    pix = point_pixels(exact_points)
    ids = np.asarray(instances)[pix[:, 0], pix[:, 1]]
    return exact_points[np.isin(ids, hit) == found]


def mixed(method: str, machine: dict, exact: dict, instances: np.ndarray, pts_key: str, mask_key: str) -> dict:
    """The labels of diagnostic ``method`` from a frame's ``machine`` and ``exact`` labels (input key ->
    points or mask) and its true ``instances``."""
    if method not in NAMES:
        raise ValueError(f"unknown mixed labels {method!r}; known: {', '.join(NAMES)}")
    if method == "machine_points_exact_mask":
        return {**machine, mask_key: exact[mask_key]}
    if method == "centroids_machine_mask":
        return {**machine, pts_key: exact[pts_key]}
    hit = np.flatnonzero(points_per_object(instances, machine[pts_key]))       # the objects a point falls in
    if method == "centroids_of_found":
        return {**machine, pts_key: _centroids_where(exact[pts_key], instances, hit, True)}
    missed = _centroids_where(exact[pts_key], instances, hit, False)
    return {**machine, pts_key: np.concatenate([np.asarray(machine[pts_key], np.float64).reshape(-1, 3), missed])}


#: Which parts of the labels each row has exact (the rows of :func:`report`, in order).
ROWS = (("machine", "neither"), ("machine_points_exact_mask", "the mask"),
        ("centroids_of_found", "the found points' positions"),
        ("machine_points_and_missed", "the missed points (added)"),
        ("centroids_machine_mask", "the points (all, at centroids)"), ("points", "both"))


def report(records: list[dict], dataset: str, names: dict) -> str:
    """The markdown table of the network on ``dataset`` trained on each mix (records of the points suite:
    the suite's own ``machine`` and ``points`` runs and these diagnostics): AP50 per seed, their mean ± sd
    over the seeds, and the means of AP 0.5:0.9 and Dice."""
    from benchmarks.report.tables import mean_sd_text
    out = ["| labels | exact | AP50 per seed | AP50 | AP 0.5:0.9 | Dice |", "|---|---|---|---|---|---|"]
    for method, exact in ROWS:
        rs = sorted((r for r in records if r["dataset"] == dataset and r["method"] == method),
                    key=lambda r: r.get("seed", 0))
        if not rs:
            continue
        per_seed = ", ".join(f"{r['ap50']:.3f}" for r in rs)
        out.append(f"| {names[method]} | {exact} | {per_seed} | {mean_sd_text([r['ap50'] for r in rs])} | "
                   f"{sum(r['ap_mean'] for r in rs) / len(rs):.3f} | {sum(r['dice'] for r in rs) / len(rs):.3f} |")
    return "\n".join(out)

