"""Speed benchmark: training step cost of the multi-task network, tiled inference cost.

    python benchmarks/speed.py [--device cpu|cuda] [--size 2048] [--repeats 10]

Prints, measured in one run:
  1. training step time of the multi-task network (``cpu`` preset, the
     lazy tasks of the registry's default run) over a plain single-task U-Net
     with the same encoder (target <= 1.5x);
  2. tiled inference of a SIZE x SIZE image over one whole-image forward pass
     of the same network (target <= 1.3x), and the largest difference between
     the two results (on the probabilities of the foreground head);
  3. inference throughput (Mpix/s) and peak memory of each inference mode
     (each mode runs in a fresh subprocess so its peak is its own: resident
     set size on the CPU, max allocated memory on CUDA).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

import numpy as np
import torch

from napari_lazylabels.engine.config import preset
from napari_lazylabels.engine.inference import predict_tiled, predict_whole
from napari_lazylabels.engine.model import build_model, count_parameters
from napari_lazylabels.engine.regimes import registry
from napari_lazylabels.engine.tasks import FOREGROUND, heads_by_role


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def train_step_times(device: torch.device, batch: int, patch: int, repeats: int) -> dict:
    torch.manual_seed(0)
    nets = {
        "multitask": build_model(preset("cpu"), registry.default_tasks(1)),
        "single_task": build_model(preset("cpu", multitask=False), registry.baseline_tasks(1)),
    }
    x = torch.randn(batch, 1, patch, patch, device=device)
    times = {k: [] for k in nets}
    opts = {}
    for k, net in nets.items():
        net.to(device).train()
        opts[k] = torch.optim.Adam(net.parameters(), 1e-3)

    def step(k):
        out = nets[k](x)
        loss = sum(torch.nn.functional.cross_entropy(v, torch.zeros_like(x[:, 0], dtype=torch.long))
                   for v in out.values())
        opts[k].zero_grad()
        loss.backward()
        opts[k].step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    for k in nets:          # warm-up
        for _ in range(3):
            step(k)
    for _ in range(repeats):  # interleaved, so both see the same machine load
        for k in nets:
            t0 = time.perf_counter()
            step(k)
            times[k].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) for k, v in times.items()}
    return {"batch": batch, "patch": patch,
            "multitask_step_s": med["multitask"], "single_task_step_s": med["single_task"],
            "ratio": med["multitask"] / med["single_task"],
            "params_multitask": count_parameters(nets["multitask"]),
            "params_single_task": count_parameters(nets["single_task"])}


def inference_part(mode: str, device: torch.device, size: int, tile: int, repeats: int) -> dict:
    torch.manual_seed(0)
    tasks = registry.default_tasks(1)
    net = build_model(preset("cpu"), tasks).to(device).eval()
    image = np.random.default_rng(0).random((1, size, size), dtype=np.float32)
    fn = (lambda: predict_whole(net, image, device=device)) if mode == "whole" else \
        (lambda: predict_tiled(net, image, tile_size=tile, batch_size=1, device=device))
    fn()  # warm-up (and the receptive-field computation for tiles)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    np.save(f"/tmp/speed_{mode}.npy", heads_by_role(out, tasks)[FOREGROUND])
    t = float(np.median(times))
    return {"mode": mode, "seconds": t, "mpix_per_s": size * size / 1e6 / t,
            "peak_memory_mb": peak_memory_mb(device)}


def run_part(mode, args) -> dict:
    cmd = [sys.executable, __file__, "--part", mode, "--device", args.device, "--size", str(args.size),
           "--tile-size", str(args.tile_size), "--repeats", str(args.inference_repeats)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--size", type=int, default=2048, help="inference image edge (default 2048)")
    ap.add_argument("--tile-size", type=int, default=1024, help="tile cap for tiled inference (default 1024)")
    ap.add_argument("--batch", type=int, default=8, help="training batch (default 8)")
    ap.add_argument("--patch", type=int, default=128, help="training patch (default 128)")
    ap.add_argument("--repeats", type=int, default=10, help="timed training steps per network")
    ap.add_argument("--inference-repeats", type=int, default=3, help="timed inference passes per mode")
    ap.add_argument("--part", choices=["whole", "tiled"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if args.part:
        print(json.dumps(inference_part(args.part, device, args.size, args.tile_size, args.inference_repeats)))
        return 0
    machine = f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    if device.type == "cuda":
        machine += f", {torch.cuda.get_device_name(0)}"
    print(f"machine: {machine}")
    tr = train_step_times(device, args.batch, args.patch, args.repeats)
    print(f"training step, batch {tr['batch']} x {tr['patch']}x{tr['patch']}: multi-task "
          f"{tr['multitask_step_s'] * 1000:.0f} ms, single-task U-Net {tr['single_task_step_s'] * 1000:.0f} ms "
          f"-> ratio {tr['ratio']:.2f}x (target <= 1.5x)")
    whole = run_part("whole", args)
    tiled = run_part("tiled", args)
    diff = float(np.abs(np.load("/tmp/speed_whole.npy") - np.load("/tmp/speed_tiled.npy")).max())
    ratio = tiled["seconds"] / whole["seconds"]
    print(f"inference {args.size}x{args.size}: whole-image pass {whole['seconds']:.2f} s, tiled "
          f"(tile cap {args.tile_size}) {tiled['seconds']:.2f} s -> ratio {ratio:.2f}x (target <= 1.3x); "
          f"max |tiled - whole| = {diff:.1e}")
    for r in (whole, tiled):
        print(f"  {r['mode']:>5}: {r['mpix_per_s']:.2f} Mpix/s, peak memory {r['peak_memory_mb']:.0f} MB")
    print(json.dumps({"machine": machine, "training": tr, "whole": whole, "tiled": tiled,
                      "tiled_over_whole": ratio, "max_abs_diff": diff}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
