"""Speed benchmark: training step cost of the multi-task network, tiled inference cost.

    python benchmarks/speed.py [--device cpu|cuda] [--size 2048] [--repeats 10] [--compile]
    python benchmarks/speed.py --device cuda --network paper --batch 8 --patch 256   # the GPU check

Prints, measured in one run:
  0. the machine's bound: fp32 and bf16 matmul throughput (2048x2048, the same
     torch threads), and the network's FLOPs per pixel counted from its
     convolutions (forward hooks), so that each throughput below is also given
     as a ratio to the fp32 bound (the headline: absolute times vary);
  1. training step time of the multi-task network (``cpu`` preset, the
     lazy tasks of the registry's default run) over a plain single-task U-Net
     with the same encoder (target <= 1.3x), in channels-last memory format as
     the trainer runs them, and in NCHW as it was;
  2. tiled inference of a SIZE x SIZE image over one whole-image forward pass
     of the same network (target <= 1.3x), and the largest difference between
     the two results (on the probabilities of the foreground head);
  3. inference throughput (Mpix/s) and peak memory of each inference mode
     (each mode runs in a fresh subprocess so its peak is its own: resident
     set size on the CPU, max allocated memory on CUDA);
  4. the inference options one at a time (the network's forward passes over
     the tiles of the image): as it was (NCHW, BatchNorm, no_grad), then
     inference_mode, BatchNorm folded, channels-last, bf16 autocast where the
     hardware has it, torch.compile with ``--compile``, ONNX Runtime with
     ``--onnx`` (CPU); and the tile cap;
  5. the training data path: the patch sampler alone (one batch), the step
     alone (a fixed batch), and steps drawing their batches in turn or ahead
     in a thread (``PatchSampler.prefetch``);
  6. a peer: the Cellpose U-Net (``cellpose.resnet_torch.CPnet``, random
     weights, 224 px tiles in batches of 8 as Cellpose runs it) on the same
     image, when ``cellpose`` (< 4) is importable.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import time

import numpy as np
import torch

from napari_lazylabels.engine.config import TrainConfig, preset
from napari_lazylabels.engine.device import cpu_has_native_bf16
from napari_lazylabels.engine.inference import (default_margin, inference_network, pad_to_multiple, predict_tiled,
                                                predict_whole, tile_layout)
from napari_lazylabels.engine.model import build_model, count_parameters, fold_batchnorm
from napari_lazylabels.engine.onnx_backend import ENV as ONNX_ENV
from napari_lazylabels.engine.onnx_backend import OnnxNetwork
from napari_lazylabels.engine.onnx_backend import available as onnx_available
from napari_lazylabels.engine.regimes import registry
from napari_lazylabels.engine.synthetic import make_lazy_dataset
from napari_lazylabels.engine.tasks import FOREGROUND, heads_by_role
from napari_lazylabels.engine.training.sampling import PatchSampler, prepare


def matmul_gflops(device: torch.device, dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """Throughput of an n x n matmul (2 n^3 FLOP) in ``dtype``: the machine's bound."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    times = []
    for i in range(repeats + 2):
        t0 = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / float(np.median(times)) / 1e9


def conv_flops_per_pixel(net: torch.nn.Module, in_channels: int, size: int = 256) -> float:
    """FLOPs (2 per multiply-add) of the network's convolutions per input pixel, counted by
    forward hooks on every Conv2d at a ``size`` x ``size`` input (pooling, interpolation,
    activations and normalisation are not counted: a few percent)."""
    total = [0]

    def hook(mod, _inp, out):
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        total[0] += 2 * k * out.numel()

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    was = net.training
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, in_channels, size, size, device=next(net.parameters()).device))
    net.train(was)
    for h in handles:
        h.remove()
    return total[0] / size ** 2


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def train_step_times(device: torch.device, batch: int, patch: int, repeats: int, network: str = "cpu") -> dict:
    """Step times of the multi-task network and the single-task U-Net, each in channels-last
    memory format (what the trainer does) and in NCHW (as it was), interleaved so that all four
    see the same machine load."""
    nets, opts = {}, {}
    for kind in ("multitask", "single_task"):
        for fmt in (torch.channels_last, torch.contiguous_format):
            torch.manual_seed(0)
            net = build_model(preset(network, multitask=kind == "multitask"),
                              registry.default_tasks(1) if kind == "multitask" else registry.baseline_tasks(1))
            net.to(device, memory_format=fmt).train()
            key = kind if fmt is torch.channels_last else f"{kind}_nchw"
            nets[key], opts[key] = net, torch.optim.Adam(net.parameters(), 1e-3)
    x0 = torch.randn(batch, 1, patch, patch, device=device)
    target = torch.zeros_like(x0[:, 0], dtype=torch.long)
    times = {k: [] for k in nets}

    def step(k):
        x = x0 if k.endswith("_nchw") else x0.contiguous(memory_format=torch.channels_last)
        out = nets[k](x)
        loss = sum(torch.nn.functional.cross_entropy(v, target) for v in out.values())
        opts[k].zero_grad()
        loss.backward()
        opts[k].step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    for k in nets:          # warm-up
        for _ in range(3):
            step(k)
    for _ in range(repeats):  # interleaved, so all see the same machine load
        for k in nets:
            t0 = time.perf_counter()
            step(k)
            times[k].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) for k, v in times.items()}
    # a training step costs about 3 forward passes (forward, gradients of inputs and of weights)
    fpp = conv_flops_per_pixel(nets["multitask"], 1)
    return {"batch": batch, "patch": patch, "flops_per_pixel": fpp,
            "multitask_gflops": 3 * fpp * batch * patch * patch / med["multitask"] / 1e9,
            "multitask_step_s": med["multitask"], "single_task_step_s": med["single_task"],
            "ratio": med["multitask"] / med["single_task"],
            "multitask_nchw_step_s": med["multitask_nchw"], "single_task_nchw_step_s": med["single_task_nchw"],
            "ratio_nchw": med["multitask_nchw"] / med["single_task_nchw"],
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
    fpp = conv_flops_per_pixel(net, 1)
    onnx = isinstance(inference_network(net, device, size * size, True), OnnxNetwork)
    return {"mode": mode, "onnx_runtime": onnx, "seconds": t, "mpix_per_s": size * size / 1e6 / t,
            "gflops": fpp * size * size / t / 1e9, "peak_memory_mb": peak_memory_mb(device)}


def _timed(fn, repeats: int, device: torch.device) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def tile_batches(net, image: np.ndarray, tile: int) -> list[torch.Tensor]:
    """The tiles predict_tiled would cut from ``image`` with tile cap ``tile`` (one per batch)."""
    m = net.config.size_multiple
    margin = default_margin(net)
    padded = pad_to_multiple(image, m)
    ph, pw = padded.shape[-2:]
    tile = max(-(-tile // m) * m, 2 * margin + m)
    th, ys = tile_layout(ph, tile, margin, m)
    tw, xs = tile_layout(pw, tile, margin, m)
    return [torch.from_numpy(np.ascontiguousarray(padded[None, :, y:y + th, x:x + tw])) for y in ys for x in xs]


def onnx_runner(net, names: list[str]):
    """``net`` (folded) in ONNX Runtime on the CPU as the engine runs it, or None where ONNX Runtime
    is not installed or is switched off (:func:`~napari_lazylabels.engine.onnx_backend.available`)."""
    if not onnx_available():
        return None
    return OnnxNetwork(net.cpu(), names, net.config.in_channels, net.config.size_multiple)


def inference_options(device: torch.device, size: int, tile: int, repeats: int, compile_: bool,
                      onnx_: bool = False) -> list[dict]:
    """Each inference option added one at a time to the one before: Mpix/s of the network's
    forward passes over the tiles, and the largest probability difference from "as it was"."""
    torch.manual_seed(0)
    tasks = registry.default_tasks(1)
    net = build_model(preset("cpu"), tasks).to(device).eval()
    for mod in net.modules():   # trained-like normalisation statistics
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.normal_(0, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    image = np.random.default_rng(0).random((1, size, size), dtype=np.float32)
    tiles = [t.to(device) for t in tile_batches(net, image, tile)]
    folded = fold_batchnorm(net).to(device)
    cl = fold_batchnorm(net).to(device).to(memory_format=torch.channels_last)
    cl_tiles = [t.contiguous(memory_format=torch.channels_last) for t in tiles]
    low = torch.float16 if device.type == "cuda" else torch.bfloat16 if cpu_has_native_bf16() else None
    steps = [("as it was: NCHW, BatchNorm, no_grad", net, tiles, torch.no_grad, None),
             ("+ inference_mode", net, tiles, torch.inference_mode, None),
             ("+ BatchNorm folded", folded, tiles, torch.inference_mode, None),
             ("+ channels-last (the default)", cl, cl_tiles, torch.inference_mode, None)]
    if low is not None:
        steps.append((f"+ {str(low).replace('torch.', '')} autocast (opt-in)", cl, cl_tiles, torch.inference_mode, low))
    if compile_:
        steps.append(("+ torch.compile (fp32)", torch.compile(cl), cl_tiles, torch.inference_mode, None))
    onnx = onnx_runner(folded, net.task_names) if onnx_ else None
    if onnx is not None:
        steps.append(("ONNX Runtime (folded, fp32; the default with the onnx extra)", onnx, tiles,
                      contextlib.nullcontext, None))
    rows, ref = [], None
    for name, model, xs, ctx, dtype in steps:
        def run(model=model, xs=xs, ctx=ctx, dtype=dtype):
            with ctx(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                return [{k: torch.softmax(v.float(), 1) for k, v in model(x).items()} for x in xs]
        try:
            t = _timed(run, repeats, device)
        except Exception as exc:    # torch.compile without a working compiler, say
            rows.append({"option": name, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"})
            continue
        out = run()
        ref = ref or out
        diff = max(float((a[k] - b[k]).abs().max()) for a, b in zip(out, ref) for k in a)
        rows.append({"option": name, "seconds": t, "mpix_per_s": size * size / 1e6 / t, "max_abs_diff": diff})
    return rows


def tile_caps(device: torch.device, size: int, caps: list[int], repeats: int) -> list[dict]:
    """predict_tiled (the default path) with each tile cap."""
    torch.manual_seed(0)
    net = build_model(preset("cpu"), registry.default_tasks(1)).to(device).eval()
    image = np.random.default_rng(0).random((1, size, size), dtype=np.float32)
    rows = []
    for cap in caps:
        t = _timed(lambda: predict_tiled(net, image, tile_size=cap, batch_size=1, device=device), repeats, device)
        rows.append({"tile_cap": cap, "tiles": len(tile_batches(net, image, cap)), "seconds": t,
                     "mpix_per_s": size * size / 1e6 / t})
    return rows


def data_path(device: torch.device, batch: int, patch: int, repeats: int, network: str = "cpu") -> dict:
    """The sampler alone, the step alone, and steps with the batch drawn in turn or ahead."""
    items, _ = make_lazy_dataset(8, seed=0, shape=(256, 256), strong_fraction=0.25)
    tasks = registry.default_tasks(1)
    config = TrainConfig(batch_size=batch, patch_size=patch, device=device.type)
    rng = np.random.default_rng(0)
    sampler = PatchSampler([prepare(it, tasks, config.normalization, rng) for it in items], tasks, config, rng)
    torch.manual_seed(0)
    net = build_model(preset(network), tasks).to(device, memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    fixed = sampler.sample(batch)

    def step(b):
        out = net(b["image"].to(device, non_blocking=True).contiguous(memory_format=torch.channels_last))
        loss = sum(torch.nn.functional.cross_entropy(v, b["targets"][k].to(device).clamp(0, v.shape[1] - 1))
                   for k, v in out.items())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    pin = device.type == "cuda"

    def in_turn():
        step(sampler.sample(batch))

    def ahead():
        b = sampler.sample(batch)
        sampler.prefetch(batch, pin_memory=pin)
        step(b)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    res = {"sampler_s": _timed(lambda: sampler.sample(batch), repeats, device),
           "step_s": _timed(lambda: step(fixed), repeats, device),
           "in_turn_s": _timed(in_turn, repeats, device)}
    res["ahead_s"] = _timed(ahead, repeats, device)
    sampler.cancel_prefetch()
    if device.type == "cuda":
        res["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return res


def cellpose_peer(device: torch.device, size: int, repeats: int) -> dict | None:
    """The Cellpose U-Net (random weights) as Cellpose runs it: 2 channels, 224 px tiles with
    10 % overlap (its ``make_tiles``), batches of 8, fp32. None without ``cellpose``."""
    try:
        from cellpose.resnet_torch import CPnet
    except ImportError:
        return None
    torch.manual_seed(0)
    net = CPnet([2, 32, 64, 128, 256], 3, 3).to(device).eval()
    bsize, overlap = 224, 0.1
    n = max(2, int(math.ceil((1.0 + 2 * overlap) * size / bsize)))
    tiles = torch.randn(n * n, 2, bsize, bsize, device=device)

    def run():
        with torch.no_grad():
            for i in range(0, len(tiles), 8):
                net(tiles[i:i + 8])

    t = _timed(run, repeats, device)
    fpp = conv_flops_per_pixel(net, 2, bsize) * n * n * bsize ** 2 / size ** 2   # per image pixel
    return {"tiles": n * n, "seconds": t, "mpix_per_s": size * size / 1e6 / t,
            "flops_per_image_pixel": fpp, "gflops": fpp * size * size / t / 1e9,
            "params": count_parameters(net)}


def run_part(mode, args, onnx: bool = True) -> dict:
    """One inference mode in a fresh subprocess; ``onnx=False``: with ONNX Runtime switched off."""
    cmd = [sys.executable, __file__, "--part", mode, "--device", args.device, "--size", str(args.size),
           "--tile-size", str(args.tile_size), "--repeats", str(args.inference_repeats)]
    env = {**os.environ, **({} if onnx else {ONNX_ENV: "0"})}
    res = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
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
    ap.add_argument("--tile-caps", type=int, nargs="*", default=[256, 512, 1024],
                    help="tile caps to compare (default 256 512 1024)")
    ap.add_argument("--network", default="cpu", help="preset of the training parts (default cpu; paper on a GPU)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    ap.add_argument("--onnx", action="store_true", help="also time ONNX Runtime (needs onnxruntime, onnx)")
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
    bound = {"fp32": matmul_gflops(device, torch.float32),
             "bf16": matmul_gflops(device, torch.bfloat16 if device.type == "cpu" else torch.float16)}
    low = "bf16" if device.type == "cpu" else "fp16"
    print(f"bound: 2048x2048 matmul {bound['fp32']:.0f} GFLOP/s fp32, {bound['bf16']:.0f} GFLOP/s {low}")
    tr = train_step_times(device, args.batch, args.patch, args.repeats, args.network)
    print(f"network: {tr['flops_per_pixel'] / 1e3:.1f} kFLOP per pixel (convolutions, counted)")
    print(f"training step, batch {tr['batch']} x {tr['patch']}x{tr['patch']}: multi-task "
          f"{tr['multitask_step_s'] * 1000:.0f} ms, single-task U-Net {tr['single_task_step_s'] * 1000:.0f} ms "
          f"-> ratio {tr['ratio']:.2f}x (target <= 1.3x); multi-task {tr['multitask_gflops']:.0f} GFLOP/s = "
          f"{tr['multitask_gflops'] / bound['fp32']:.2f}x the fp32 bound")
    print(f"  the same in NCHW memory format (as it was): multi-task {tr['multitask_nchw_step_s'] * 1000:.0f} ms, "
          f"single-task {tr['single_task_nchw_step_s'] * 1000:.0f} ms -> ratio {tr['ratio_nchw']:.2f}x; "
          f"channels-last {tr['multitask_nchw_step_s'] / tr['multitask_step_s']:.2f}x faster (multi-task)")
    whole = run_part("whole", args)
    tiled = run_part("tiled", args)
    diff = float(np.abs(np.load("/tmp/speed_whole.npy") - np.load("/tmp/speed_tiled.npy")).max())
    tiled_torch = run_part("tiled", args, onnx=False) if tiled["onnx_runtime"] else None
    ratio = tiled["seconds"] / whole["seconds"]
    print(f"inference {args.size}x{args.size}: whole-image pass {whole['seconds']:.2f} s, tiled "
          f"(tile cap {args.tile_size}) {tiled['seconds']:.2f} s -> ratio {ratio:.2f}x (target <= 1.3x); "
          f"max |tiled - whole| = {diff:.1e}")
    for r in (whole, tiled):
        print(f"  {r['mode']:>5}: {r['mpix_per_s']:.2f} Mpix/s, {r['gflops']:.0f} GFLOP/s = "
              f"{r['gflops'] / bound['fp32']:.2f}x the fp32 bound (target >= 1.0x), "
              f"{'ONNX Runtime' if r['onnx_runtime'] else 'PyTorch'}, "
              f"peak memory {r['peak_memory_mb']:.0f} MB")
    if tiled_torch is not None:
        print(f"  tiled, ONNX Runtime switched off ({ONNX_ENV}=0): {tiled_torch['mpix_per_s']:.2f} Mpix/s, "
              f"{tiled_torch['gflops'] / bound['fp32']:.2f}x the fp32 bound; ONNX Runtime "
              f"{tiled_torch['seconds'] / tiled['seconds']:.2f}x faster")
    options = inference_options(device, args.size, args.tile_size, args.inference_repeats, args.compile,
                                args.onnx and device.type == "cpu")
    print(f"inference options, one at a time (forward passes over the tiles, tile cap {args.tile_size}):")
    for r in options:
        print(f"  {r['option']:<40} " + (r["error"] if "error" in r else
              f"{r['mpix_per_s']:.2f} Mpix/s ({r['mpix_per_s'] / options[0]['mpix_per_s']:.2f}x), "
              f"max |diff| {r['max_abs_diff']:.1e}"))
    caps = tile_caps(device, args.size, args.tile_caps, args.inference_repeats)
    print("tile cap (predict_tiled, the default path): " +
          ", ".join(f"{r['tile_cap']}: {r['tiles']} tiles {r['mpix_per_s']:.2f} Mpix/s" for r in caps))
    dp = data_path(device, args.batch, args.patch, args.repeats, args.network)
    print(f"data path, batch {args.batch} x {args.patch}x{args.patch}: sampler alone {dp['sampler_s'] * 1000:.0f} ms, "
          f"step alone {dp['step_s'] * 1000:.0f} ms; a step drawing its batch in turn "
          f"{dp['in_turn_s'] * 1000:.0f} ms, drawn ahead in a thread {dp['ahead_s'] * 1000:.0f} ms "
          f"({1 / dp['ahead_s']:.2f} steps/s; the network's share of it {dp['step_s'] / dp['ahead_s']:.0%})" +
          (f", peak GPU memory {dp['peak_gpu_memory_mb']:.0f} MB" if "peak_gpu_memory_mb" in dp else ""))
    peer = cellpose_peer(device, args.size, args.inference_repeats)
    if peer is None:
        print("peer: cellpose not importable (pip install --no-deps 'cellpose<4'); skipped")
    else:
        print(f"peer: Cellpose U-Net (random weights), {args.size}x{args.size} in {peer['tiles']} tiles of 224: "
              f"{peer['mpix_per_s']:.2f} Mpix/s ({peer['flops_per_image_pixel'] / 1e3:.0f} kFLOP per image pixel, "
              f"{peer['gflops'] / bound['fp32']:.2f}x the fp32 bound); this network tiled "
              f"{tiled['mpix_per_s']:.2f} Mpix/s")
    print(json.dumps({"machine": machine, "bound_gflops": bound, "training": tr, "whole": whole, "tiled": tiled,
                      "tiled_torch": tiled_torch, "tiled_over_whole": ratio, "max_abs_diff": diff, "options": options, "tile_caps": caps,
                      "data_path": dp, "cellpose": peer}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
