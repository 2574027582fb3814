"""ONNX Runtime for CPU inference, where it is installed (the ``onnx`` extra).

The network, as inference runs it (BatchNorm folded), is exported to ONNX in memory and run by
ONNX Runtime's CPU provider with as many threads as torch uses. On the development machine it
ran the ``cpu`` network's tiles 1.4-1.5x faster than PyTorch's channels-last path, with the same
probabilities up to 2e-7 (``benchmarks/speed.py --onnx``, docs/benchmarks.md). Nothing requires
it: without ``onnxruntime`` and ``onnx``, or with ``LAZYLABELS_ONNX=0`` in the environment,
inference runs in PyTorch, and an export that fails falls back to PyTorch with one warning.

An exported network is kept per model while the model's weights stay the same (the versions of
its tensors), so a folder of images or the blocks of an out-of-core prediction export it once;
after a training step the next prediction exports again. The export costs about 0.2 s for the
``cpu`` network (1.4 s for ``paper``), so it is used only for images of at least
:data:`MIN_PIXELS` pixels or when the export is already there: below that, the export would cost
more than it saves.
"""

from __future__ import annotations

import io
import os
import warnings
import weakref
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

#: Environment variable: ``0`` (or ``false``, ``no``, ``off``) runs CPU inference in PyTorch.
ENV = "LAZYLABELS_ONNX"
#: Smallest image (pixels) for which a network is exported: the export costs about as much as
#: ONNX Runtime saves on 0.5 Mpix with the ``cpu`` network.
MIN_PIXELS = 1 << 20

_CACHE: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple, OnnxNetwork | None]]" = weakref.WeakKeyDictionary()
_WARNED: list[str] = []


def available() -> bool:
    """Whether ONNX Runtime and the ONNX exporter's ``onnx`` are importable and not switched off."""
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class _TupleOutputs(nn.Module):
    """The network with its dict of heads as a tuple, in a fixed order (ONNX outputs)."""

    def __init__(self, net: nn.Module, names: Sequence[str]):
        super().__init__()
        self.net = net
        self.names = list(names)

    def forward(self, x):
        out = self.net(x)
        return tuple(out[k] for k in self.names)


class OnnxNetwork:
    """Called like the network: a (B, C, H, W) float tensor -> {task: logits (B, K, H, W)}, any
    B, H, W (multiples of the pooling factor); runs in ONNX Runtime on the CPU."""

    def __init__(self, net: nn.Module, names: Sequence[str], in_channels: int, size_multiple: int):
        import onnxruntime as ort

        self.names = list(names)
        example = torch.zeros(1, in_channels, 2 * size_multiple, 2 * size_multiple)
        buf = io.BytesIO()
        with warnings.catch_warnings():   # the TorchScript exporter's deprecation notice
            warnings.simplefilter("ignore")
            torch.onnx.export(_TupleOutputs(net, self.names).eval(), (example,), buf, input_names=["image"],
                              output_names=self.names, dynamo=False, opset_version=17,
                              dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}})
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # the memory pattern plans a buffer per input shape: with tiles and blocks of several
        # shapes it held 1.6 GB for a 2048 px image where PyTorch peaks at 1.0 GB; without it
        # 1.2 GB, and faster (benchmarks/speed.py; docs/benchmarks.md)
        options.enable_mem_pattern = False
        self.session = ort.InferenceSession(buf.getvalue(), options, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        arr = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return {k: torch.from_numpy(v) for k, v in zip(self.names, self.session.run(self.names, {"image": arr}))}


def _weights_key(model: nn.Module) -> tuple:
    """Changes when any weight or buffer of ``model`` is replaced or changed in place."""
    return tuple((k, t.data_ptr(), t._version) for k, t in model.state_dict(keep_vars=True).items())


def onnx_network(model: nn.Module, fold: Callable[[], nn.Module], pixels: int) -> OnnxNetwork | None:
    """``model`` in ONNX Runtime (as ``fold()`` prepares it for inference), or None where PyTorch runs it:
    ONNX Runtime missing or switched off, an image under :data:`MIN_PIXELS` without an export
    of these weights at hand, or an export that failed (warned about once)."""
    if not available():
        return None
    key = _weights_key(model)
    cached = _CACHE.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    if pixels < MIN_PIXELS:
        return None
    try:
        runner = OnnxNetwork(fold().cpu(), model.task_names, model.config.in_channels, model.config.size_multiple)
    except Exception as exc:    # an operator the exporter or the runtime lacks: PyTorch runs it
        message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if message not in _WARNED:
            _WARNED.append(message)
            warnings.warn(f"ONNX Runtime not used for inference ({message}); PyTorch runs it", RuntimeWarning,
                          stacklevel=3)
        runner = None
    _CACHE[model] = (key, runner)
    return runner
