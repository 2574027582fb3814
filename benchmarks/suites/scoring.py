"""Scoring a model of the lazy suite on the test frames: every metric of the plain prediction, and the
scored variants (test-time flips, instance settings tuned on the strong training images, the recursive
model's watershed seeds). Also the one :func:`score` the peers are scored with."""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from benchmarks.harness.data import Dataset, Sample
from benchmarks.harness.methods import SWEEP, Mode, run_key
from benchmarks.harness.regimes import boundaries_key, strong_key
from napari_lazylabels.engine.metrics import aggregate, best_overlap_scores, pool_best_overlap, summarize
from napari_lazylabels.engine.pipeline import segment, segmentation_from_probabilities
from napari_lazylabels.engine.postprocess.settings import WATERSHED, PostProcessing
from napari_lazylabels.engine.tasks import PARTIAL


def given_instances(sample: Sample) -> np.ndarray:
    """The objects a user's labels of a strong image determine: the exact mask cut by the interface
    scribbles into connected pieces, each grown back over the mask (what tuning may score against;
    not the ground truth, which a user does not have)."""
    mask = np.asarray(sample.labels[strong_key()]) > 0
    key = boundaries_key()
    cut = mask if key is None or key not in sample.labels else mask & ~(np.asarray(sample.labels[key]) > 0)
    pieces, _ = ndi.label(cut)
    return watershed(np.zeros(mask.shape, np.float32), markers=pieces, mask=mask).astype(np.int32)


#: The instance settings tried by :func:`tuned_instances`.
TUNING_GRID = {"probability_threshold": (None, 0.3, 0.4, 0.6, 0.7), "interface_threshold": (0.3, 0.5, 0.7)}
#: At most this many strong images are used for tuning (the first ones of the strong order).
TUNING_IMAGES = 16


def tuned_instances(model, ds: Dataset, strong: set[int], device: str = "cpu") -> tuple[PostProcessing, dict]:
    """The post-processing with the instance settings of :data:`TUNING_GRID` that give the best mean of
    AP50 and object Dice on the model's own strong training images (against :func:`given_instances`),
    and the scores of every setting tried. Never looks at test data."""
    chosen = [i for i in ds.order if i in strong][:TUNING_IMAGES]
    probs = [(segment(model, ds.train[i].image, device=device).probabilities, given_instances(ds.train[i]))
             for i in chosen]
    scores = {}
    best, best_score = model.postprocess, -1.0
    for pt in TUNING_GRID["probability_threshold"]:
        for it in TUNING_GRID["interface_threshold"]:
            pp = replace(model.postprocess, instances=replace(model.postprocess.instances,
                                                                probability_threshold=pt, interface_threshold=it))
            agg = aggregate([summarize(segmentation_from_probabilities(p, model.tasks, pp).instances, truth)
                             for p, truth in probs])
            score = 0.5 * (agg["ap50"] + agg["object_dice"])
            scores[f"{pt}/{it}"] = round(score, 4)
            if score > best_score + 1e-9:
                best, best_score = pp, score
    return best, scores


def score(predictions: list[np.ndarray], ds: Dataset) -> dict:
    """Every metric of the test images' predicted instance maps."""
    summaries = [summarize(pred, truth) for pred, (_, _, truth) in zip(predictions, ds.test)]
    agg = aggregate(summaries)
    pooled = pool_best_overlap([best_overlap_scores(pred, truth) for pred, (_, _, truth) in
                                zip(predictions, ds.test)])
    return {"dice": agg["dice"], "ap50": agg["ap50"], "ap75": agg["ap75"],
            "ap_sweep": float(np.mean([agg["ap"][t] for t in SWEEP])),
            "ap": {f"{t:.2f}": float(v) for t, v in agg["ap"].items()},
            "object_dice": agg["object_dice"], "object_hausdorff": agg["object_hausdorff"],
            "mdice": pooled["mdice"], "miou": pooled["miou"], "n_pred": int(agg["n_pred"]), "n_gt": int(agg["n_gt"])}


def evaluate(model, ds: Dataset, strong: set[int], multitask: bool, tta: bool = True,
             tune: bool = True, device: str = "cpu") -> tuple[dict, dict, list]:
    """The metrics with the model's own post-processing, and the variants: ``flips`` (test-time
    flips), ``tuned`` (instance settings tuned on the strong training images, multi-task models),
    ``watershed_seeds`` (mtr: watershed seeds from the partial-mask head instead of the final growth)."""
    partial_head = any(t.role == PARTIAL for t in model.tasks)
    variants: dict[str, dict] = {}
    plain, flips, ws, probs = [], [], [], []
    for _, image, _ in ds.test:
        result = segment(model, image, device=device)
        plain.append(result.instances)
        probs.append(result.probabilities)
        if partial_head:
            watershed_pp = PostProcessing(method=WATERSHED, instances=replace(model.postprocess.instances,
                                                                              seed_source=PARTIAL))
            ws.append(segmentation_from_probabilities(result.probabilities, model.tasks, watershed_pp).instances)
        if tta:
            flips.append(segment(model, image, device=device,
                                 postprocess=replace(model.postprocess, flips=True)).instances)
    metrics = score(plain, ds)
    if ws:
        variants["watershed_seeds"] = score(ws, ds)
    if flips:
        variants["flips"] = score(flips, ds)
    if tune and multitask and strong:
        pp, tried = tuned_instances(model, ds, strong, device)
        tuned = [segmentation_from_probabilities(p, model.tasks, pp).instances for p in probs]
        variants["tuned"] = {**score(tuned, ds), "settings": asdict(pp.instances), "tried": tried}
    return metrics, variants, plain



def run_record(ds: Dataset, method: str, ratio: float, seed: int, variant: str, mode: Mode, strong: set[int],
               **fields) -> dict:
    """The fields every record of the lazy suite starts with (ours and the peers' alike)."""
    return {"key": run_key(ds.name, method, ratio, seed, variant, mode.budget), "dataset": ds.name,
            "family": ds.family, "method": method, "ratio": ratio, "seed": seed, "variant": variant,
            "budget": mode.budget, **fields, "batch_size": mode.batch_size, "patch_size": mode.patch_size,
            "n_strong": len(strong), "n_train": len(ds.train), "device": mode.device}


def log_line(record: dict, variants: dict | None = None) -> str:
    """One line of the log for a finished run."""
    return (f"{record['key']:44s} Dice {record['dice']:.3f} AP50 {record['ap50']:.3f} "
            f"objDice {record['object_dice']:.3f} mDice {record['mdice']:.3f} "
            f"Haus {record['object_hausdorff']:.1f}  [{record['total_s']:.0f} s, load {record['load_start']:.1f}]"
            + "".join(f"  {k}: AP50 {v['ap50']:.3f} objDice {v['object_dice']:.3f}"
                      for k, v in (variants or {}).items()))
