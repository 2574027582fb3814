"""Choosing the compute device."""

from __future__ import annotations

import functools
import sys

import torch

from ..errors import LazyLabelsError, SettingsError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def select_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA, then MPS, then CPU. Asking for an absent device is an error."""
    if name not in DEVICE_CHOICES:
        raise SettingsError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise LazyLabelsError("device 'cuda' was asked for but no CUDA GPU is available")
    if name == "mps" and not mps_available():
        raise LazyLabelsError("device 'mps' was asked for but Apple's MPS is not available")
    return torch.device(name)


def resolve_device(device: str | torch.device) -> torch.device:
    """A device as given where a prediction starts: a choice of :data:`DEVICE_CHOICES` (``auto``...) is
    chosen by :func:`select_device`, anything else (a ``torch.device``, ``"cuda:1"``) taken as it is."""
    if isinstance(device, torch.device):
        return device
    if device in DEVICE_CHOICES:
        return select_device(device)
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise SettingsError(f"unknown device {device!r}; choose one of {', '.join(DEVICE_CHOICES)}") from None


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether the CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX-BF16, which
    oneDNN uses for convolutions), so bf16 autocast is faster than fp32 rather than
    emulated. Read from ``/proc/cpuinfo`` (Linux); elsewhere False."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags)) and torch.backends.mkldnn.is_available()


def reduced_precision(device: torch.device, cpu_bf16: bool = False) -> torch.dtype | None:
    """The autocast type of inference with reduced precision allowed (``amp``) on ``device``:
    float16 on CUDA; on the CPU bfloat16 only if ``cpu_bf16`` and the CPU has native bf16;
    otherwise None (fp32)."""
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cpu_bf16 and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def autocast_dtype(device: torch.device) -> torch.dtype:
    """The autocast type of mixed-precision training on a CUDA ``device``: bfloat16 where the GPU
    computes it natively (Ampere and newer: float32's exponent range, so no loss scaling is needed),
    else float16 (with a gradient scaler)."""
    if device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False):
        return torch.bfloat16
    return torch.float16


def describe_device(device: torch.device) -> str:
    """Human-readable name, e.g. 'cuda (NVIDIA H100)' or 'cpu (2 threads)'."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def empty_device_cache(device: torch.device) -> None:
    """Give cached accelerator memory back once a run ends."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()
