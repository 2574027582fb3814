""""Annotate here next" on a 2048 px image: how long the suggestion takes on the CPU, and how
responsive napari stays meanwhile (issue 23: under 5 s; GUI p95 stall <= 50 ms).

A small ``cpu``-preset model is trained a few steps (its accuracy does not
matter for the time: the network's size does), then on one synthetic
``--size`` px image with its lazy labels:

* ``engine``: :func:`napari_lazylabels.engine.suggest.suggest` end to end (k = 5
  boxes of 128 px), with 1 and 2 torch threads, wall-clock and CPU time of the
  process (on a loaded machine the CPU time is what an idle core would take);
  the first call of a model also builds its ONNX Runtime session (reported
  apart). ``--whole`` also times the search without the coarse-to-fine step
  (every pixel at full resolution, two passes).
* ``gui``: the same in napari, through the *Suggest where to paint* button of
  the panel (its background thread made nicer than the GUI's; ``--compare-nice``:
  every other run without), with the timer probe of ``benchmarks/ui_latency.py`` on the GUI
  thread (each late firing is a stall): stalls while the suggestion is
  computed, and the time from the click to the Shapes layer.

Run (a virtual display is started when there is none)::

    nice -n 10 .venv/bin/python benchmarks/suggest_latency.py                 # engine, then gui
    nice -n 10 .venv/bin/python benchmarks/suggest_latency.py --modes engine --whole

Each result is appended as one JSON line to ``benchmarks/results/suggest_latency.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):      # run as a script: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ui_latency import Probe, _display, painted_viewer, percentiles, spin  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "suggest_latency.jsonl"


def small_model(steps: int, work: Path):
    """A ``cpu``-preset model trained ``steps`` steps on two small synthetic images."""
    from napari_lazylabels.engine.config import TrainConfig, preset
    from napari_lazylabels.engine.synthetic import make_lazy_dataset
    from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun

    items, _ = make_lazy_dataset(2, seed=0, shape=(128, 128))
    run = TrainingRun(TrainingPlan(items, network=preset("cpu"), model_dir=work / "model",
                                   config=TrainConfig(steps=steps, patch_size=64, batch_size=2, device="cpu")))
    for _ in run.run():
        pass
    return run.model()


def _timed(fn) -> tuple[object, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, round(time.perf_counter() - wall, 2), round(time.process_time() - cpu, 2)


def engine_rows(model, item, args) -> list[dict]:
    import torch

    from napari_lazylabels.engine.suggest import suggest

    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for search, coarse in (("coarse to fine", "default"), ("whole image", None))[:2 if args.whole else 1]:
            kw = {} if coarse == "default" else {"coarse_above": None}
            _, first_wall, first_cpu = _timed(lambda: suggest(model, [item], args.k, args.box, **kw))
            for rep in range(args.repeats):
                boxes, wall, cpu = _timed(lambda: suggest(model, [item], args.k, args.box, **kw))
                rows.append({"mode": "engine", "search": search, "threads": threads, "repeat": rep,
                             "wall_s": wall, "cpu_s": cpu, "first_call_wall_s": first_wall,
                             "first_call_cpu_s": first_cpu, "boxes": [[b.y, b.x] for b in boxes]})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def gui_row(model, item, args) -> dict:
    import torch

    from napari_lazylabels.plugin.widgets.suggest_panel import LAYER_NAME, SuggestPanel

    torch.set_num_threads(args.threads[-1])
    viewer = painted_viewer(item)
    panel = SuggestPanel(viewer, lambda: model)
    viewer.window.add_dock_widget(panel, name="Annotate here next", area="right")

    spin(2.0)
    probe = Probe(args.probe_ms)
    probe.start()
    spin(args.baseline_s)
    idle = probe.stop()
    results = []
    for rep in range(args.repeats + 1):         # the first builds the ONNX Runtime session
        if LAYER_NAME in viewer.layers:
            viewer.layers.remove(LAYER_NAME)
        panel.lower_priority = not (args.compare_nice and rep % 2 == 0)
        probe.start()
        t0, c0 = time.perf_counter(), time.process_time()
        panel.suggest_button.click()
        spin(300, until=lambda: not panel.busy and LAYER_NAME in viewer.layers)
        results.append({"nicer_thread": panel.lower_priority, "click_to_layer_s": round(time.perf_counter() - t0, 2),
                        "cpu_s": round(time.process_time() - c0, 2), "stalls": percentiles(probe.stop())})
        spin(1.0)
    viewer.close()
    row = {"mode": "gui", "threads": args.threads[-1], "baseline": percentiles(idle), "first_call": results[0],
           "runs": results[1:], "probe_ms": args.probe_ms}
    print(json.dumps(row), flush=True)
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--modes", nargs="+", default=["engine", "gui"], choices=["engine", "gui"])
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--box", type=int, default=128)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads (gui: the last)")
    p.add_argument("--steps", type=int, default=5, help="training steps of the model")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--whole", action="store_true", help="also time the whole-image search")
    p.add_argument("--baseline-s", type=float, default=5.0)
    p.add_argument("--probe-ms", type=int, default=10)
    p.add_argument("--compare-nice", action="store_true",
                   help="gui: every other run with the background thread at the GUI's priority")
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    import torch

    from napari_lazylabels.engine.synthetic import make_lazy_dataset

    display = _display() if "gui" in args.modes else None
    common = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
              "torch": torch.__version__, "image": f"{args.size}x{args.size}", "k": args.k, "box": args.box,
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with tempfile.TemporaryDirectory(prefix="suggest-latency-") as tmp:
        model = small_model(args.steps, Path(tmp))
        items, _ = make_lazy_dataset(1, seed=1, shape=(args.size, args.size), strong_fraction=0.0)
        rows = []
        for mode in args.modes:
            load = os.getloadavg()
            new = engine_rows(model, items[0], args) if mode == "engine" else [gui_row(model, items[0], args)]
            rows += [{**common, **r, "load_average_before": [round(x, 2) for x in load],
                      "load_average_after": [round(x, 2) for x in os.getloadavg()]} for r in new]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with open(args.results, "a") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    sys.stdout.flush()
    if display is not None:        # leave without Qt's teardown racing the display's shutdown
        display.stop()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
