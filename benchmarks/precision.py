"""Reduced-precision inference against fp32 on the demo model and the demo's held-out images.

    python benchmarks/precision.py MODEL_DIR [--device cpu|cuda]

MODEL_DIR is the ``model/`` folder a ``lazylabels demo`` run wrote. The demo's
held-out synthetic images are remade from the demo's seed; each is segmented
(``pipeline.segment``: tiled prediction and the model's post-processing) in
fp32 and with the device's reduced precision (``inference.reduced_precision``:
bf16 on a CPU with AVX512-BF16 or AMX, opted into here, fp16 on CUDA), and Dice and AP50 are
scored as the demo scores them. The tolerance for reduced precision to be the
default: both within 0.005 of fp32. Also prints the largest probability
difference and the time of each (the ratio counts, measured in this run).
"""

from __future__ import annotations

import argparse
import json
import time
from unittest import mock

import numpy as np
import torch

from napari_lazylabels.cli import demo
from napari_lazylabels.engine import inference
from napari_lazylabels.engine.metrics import aggregate, summarize
from napari_lazylabels.engine.pipeline import segment
from napari_lazylabels.engine.synthetic import make_test_set
from napari_lazylabels.io.modelio import load_model

TOLERANCE = 0.005


def score(model, tests, device, reduced: bool) -> dict:
    summaries, probs, seconds = [], [], 0.0
    with mock.patch.object(inference, "CPU_BF16", True) if reduced else \
            mock.patch.object(inference, "reduced_precision", lambda device, cpu_bf16: None):
        for t in tests:
            t0 = time.perf_counter()
            result = segment(model, t.image, device=device)
            seconds += time.perf_counter() - t0
            summaries.append(summarize(result.instances, t.instances, result.semantic, t.semantic))
            probs.append(result.probabilities)
    total = aggregate(summaries)
    return {"dice": float(total["dice"]), "ap50": float(total["ap50"]), "seconds": seconds, "probs": probs}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="the model/ folder of a demo run")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    dtype = inference.reduced_precision(device, cpu_bf16=True)
    if dtype is None:
        print(f"{args.device}: no fast reduced precision here; inference runs in fp32 (nothing to compare)")
        return 0
    model = load_model(args.model)
    tests = make_test_set(demo.DEMO_TEST_IMAGES, seed=demo.DEMO_SEED + 1000, shape=demo.DEMO_SHAPE)
    score(model, tests[:1], device, True)            # warm-up (receptive field, oneDNN kernels)
    fp32 = score(model, tests, device, False)
    low = score(model, tests, device, True)
    diff = max(float(np.abs(a[k] - b[k]).max()) for pa, pb in zip(fp32["probs"], low["probs"])
               for a, b in [(pa, pb)] for k in a)
    name = str(dtype).replace("torch.", "")
    ok = abs(low["dice"] - fp32["dice"]) <= TOLERANCE and abs(low["ap50"] - fp32["ap50"]) <= TOLERANCE
    print(f"machine: {torch.get_num_threads()} threads, torch {torch.__version__}, {args.device}")
    print(f"fp32:  Dice {fp32['dice']:.4f}  AP50 {fp32['ap50']:.4f}  {fp32['seconds']:.2f} s")
    print(f"{name}:  Dice {low['dice']:.4f}  AP50 {low['ap50']:.4f}  {low['seconds']:.2f} s  "
          f"(fp32 / {name} time {fp32['seconds'] / low['seconds']:.2f}x)")
    print(f"largest probability difference {diff:.2e}; within {TOLERANCE} of fp32: {'yes' if ok else 'NO'}")
    print(json.dumps({"dtype": name, "fp32": {k: v for k, v in fp32.items() if k != "probs"},
                      "reduced": {k: v for k, v in low.items() if k != "probs"}, "max_prob_diff": diff,
                      "within_tolerance": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
