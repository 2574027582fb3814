"""The multi-task U-Net of Ke et al. (2020, 2021), and the plain U-Net.

One contracting path is shared by all tasks. In the last ``multitask_levels``
decoder levels each level is a multi-task block (METHOD 3)::

    x_{l+1}   = F_W(x_l, c_l)                   the "plain" path (detection in the paper)
    z_{l+1/2} = F_W(z_l, c_l)                   the "refined" path (segmentation), same weights W
    z_{l+1}   = z_{l+1/2} + R(z_{l+1/2})        plus its own residual sub-block
    y_{l+1}   = G(y_l, z_{l+1})                 the "boundary" path (separation), skips from z

Heads (1x1 convolutions) sit on one of the three paths, as each task's
:class:`~napari_lazylabels.engine.tasks.TaskSpec` says (``features``). With ``multitask=False`` the
network is a plain U-Net and every head reads its single path. A head on the ``local`` path reads
:data:`LOCAL_LAYERS` 3x3 convolutions of the image itself (built only when a task asks for it): its
field of view is ``2 * LOCAL_LAYERS + 1`` px, however deep the U-Net.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SettingsError
from .config import NetworkConfig
from .tasks import BOUNDARY, LOCAL, PLAIN, REFINED, TaskSpec

#: Convolutions of the ``local`` path (field of view 2 * LOCAL_LAYERS + 1 px).
LOCAL_LAYERS = 3
#: The most parameters a network may have (800 MB of float32 weights; the ``paper`` preset has 35 M):
#: :func:`build_model` refuses more, and a model file asking for more is refused before it is built.
MAX_PARAMETERS = 200_000_000


def conv_layer(cin: int, cout: int) -> nn.Sequential:
    """3x3 convolution, batch normalisation, LeakyReLU(0.01)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.LeakyReLU(0.01, inplace=True))


def conv_block(cin: int, cout: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[conv_layer(cin if i == 0 else cout, cout) for i in range(n)])


def upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class UpBlock(nn.Module):
    """Bilinear 2x upsampling, concatenation with a skip, a conv block."""

    def __init__(self, cin: int, cskip: int, cout: int, n: int):
        super().__init__()
        self.block = conv_block(cin + cskip, cout, n)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, upsampled: torch.Tensor | None = None) -> torch.Tensor:
        up = upsample_to(x, skip) if upsampled is None else upsampled
        return self.block(torch.cat([up, skip], dim=1))


class MultiTaskBlock(nn.Module):
    """One multi-task decoder level (plain, refined and boundary paths).

    The residual sub-block R and the separation block G are single conv
    layers (the paper's "small grey blocks"); F_W has ``convs_per_block``.
    """

    def __init__(self, cin: int, cskip: int, cout: int, n: int):
        super().__init__()
        self.shared = UpBlock(cin, cskip, cout, n)       # F_W: the plain and refined paths
        self.residual = conv_block(cout, cout, 1)        # R: the refined path's sub-block
        self.separation = UpBlock(cin, cout, cout, 1)    # G: skips from the refined path

    def forward(self, x, z, y, skip):
        # At the first multi-task level the three paths share one input: the
        # upsampling and F_W (same input, same weights) are computed once.
        up_x = upsample_to(x, skip)
        x1 = self.shared(x, skip, up_x)
        z_half = x1 if z is x else self.shared(z, skip)
        z1 = z_half + self.residual(z_half)
        y1 = self.separation(y, z1, up_x if y is x else None)
        return x1, z1, y1


class LazyUNet(nn.Module):
    """A U-Net with one head per task; multi-task decoder blocks unless disabled.

    ``forward`` returns a dict task name -> logits (B, C, H, W). H and W must be
    multiples of ``config.size_multiple``.
    """

    def __init__(self, config: NetworkConfig, tasks: Sequence[TaskSpec]):
        super().__init__()
        self.config = config
        self.task_names = [t.name for t in tasks]
        d, n = config.depth, config.convs_per_block
        ch = [config.base_channels * 2 ** i for i in range(d)]
        self.encoder = nn.ModuleList(
            [conv_block(config.in_channels if i == 0 else ch[i - 1], ch[i], n) for i in range(d)])
        n_mt = config.multitask_levels if config.multitask else 0
        self.shared_decoder = nn.ModuleList()
        self.multitask_decoder = nn.ModuleList()
        for level in range(d - 2, -1, -1):     # from the bottleneck up to full resolution
            if level < n_mt:
                self.multitask_decoder.append(MultiTaskBlock(ch[level + 1], ch[level], ch[level], n))
            else:
                self.shared_decoder.append(UpBlock(ch[level + 1], ch[level], ch[level], n))
        self.heads = nn.ModuleDict({t.name: nn.Conv2d(ch[0], t.head_channels(config.in_channels), 1)
                                    for t in tasks})
        self.head_paths = {t.name: (t.features if config.multitask or t.features == LOCAL else REFINED)
                           for t in tasks}
        # the low field-of-view path, only for a model with a head on it
        self.local = conv_block(config.in_channels, ch[0], LOCAL_LAYERS) \
            if LOCAL in self.head_paths.values() else None
        #: task -> (classes, components per class) of its head's softmax
        self.layouts = {t.name: (t.n_classes, t.components) for t in tasks}

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        skips = []
        h = image
        for i, block in enumerate(self.encoder):
            if i > 0:
                h = F.max_pool2d(h, 2)
            h = block(h)
            skips.append(h)
        skips.pop()                    # the bottleneck is not a skip
        for block in self.shared_decoder:
            h = block(h, skips.pop())
        x = z = y = h
        for block in self.multitask_decoder:
            x, z, y = block(x, z, y, skips.pop())
        paths = {PLAIN: x, REFINED: z, BOUNDARY: y}
        if self.local is not None:
            paths[LOCAL] = self.local(image)
        return {name: head(paths[self.head_paths[name]]) for name, head in self.heads.items()}


def component_probabilities(logits: torch.Tensor, n_classes: int, components: int = 1) -> torch.Tensor:
    """Softmax over a head's ``n_classes * components`` class logits (its first channels): (B, K*M, H, W)."""
    return torch.softmax(logits[:, :n_classes * components].float(), dim=1)


def sum_components(probs: torch.Tensor, n_classes: int, components: int = 1) -> torch.Tensor:
    """Per-class probabilities (B, K, H, W) from per-component ones (B, K*M, H, W): the sum of each
    class's components (class ``k`` owns components ``k*M .. k*M+M-1``)."""
    if components == 1:
        return probs
    b, _, h, w = probs.shape
    return probs.reshape(b, n_classes, components, h, w).sum(dim=2)


def class_log_probabilities(logits: torch.Tensor, n_classes: int, components: int = 1) -> torch.Tensor:
    """log P(class) (B, K, H, W) of a head whose class probability is the sum of its components'."""
    logp = torch.log_softmax(logits[:, :n_classes * components].float(), dim=1)
    if components == 1:
        return logp
    b, _, h, w = logp.shape
    return torch.logsumexp(logp.reshape(b, n_classes, components, h, w), dim=2)


def network_size(config: NetworkConfig, tasks: Sequence[TaskSpec]) -> tuple[int, int]:
    """(parameters, buffer values) of the network :func:`build_model` makes, counted on one built on
    PyTorch's ``meta`` device: the shapes only, no memory for its weights."""
    with torch.device("meta"):
        network = LazyUNet(config, tasks)
    return count_parameters(network), sum(b.numel() for b in network.buffers())


def check_network_size(config: NetworkConfig, tasks: Sequence[TaskSpec]) -> tuple[int, int]:
    """:func:`network_size`, refused beyond :data:`MAX_PARAMETERS` parameters.

    Raises:
        SettingsError: too many parameters (the count and the limit).
    """
    parameters, buffers = network_size(config, tasks)
    if parameters > MAX_PARAMETERS:
        raise SettingsError(f"this network and its heads have {parameters:,} parameters, more than the "
                            f"{MAX_PARAMETERS:,} a network may have")
    return parameters, buffers


def build_model(config: NetworkConfig, tasks: Sequence[TaskSpec]) -> LazyUNet:
    """The network of ``config`` with one head per task (refused beyond :data:`MAX_PARAMETERS`)."""
    check_network_size(config, tasks)
    return LazyUNet(config, tasks)


class ProbabilityUNet(LazyUNet):
    """The network as other tools run it (a bioimage.io package): JSON keyword arguments, a tuple of
    per-task class probabilities (B, K, H, W) in task order: the softmax over a head's class logits, a
    mixture head's components summed per class (fg/bg scribbles: K = 2, not K x components). Same weights
    (state dict) as :class:`LazyUNet`.
    """

    def __init__(self, network: dict, tasks: list[dict]):
        super().__init__(NetworkConfig.from_dict(network), [TaskSpec.from_dict(t) for t in tasks])

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        logits = super().forward(image)
        return tuple(sum_components(component_probabilities(logits[name], *self.layouts[name]), *self.layouts[name])
                     for name in self.task_names)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` for inference: every BatchNorm2d that follows a Conv2d in a
    ``nn.Sequential`` is folded into the convolution (scale into its weights, shift into
    its bias), leaving an identity. Equal to the eval-mode network up to float rounding;
    the original is untouched."""
    folded = copy.deepcopy(model).eval()
    for parent in folded.modules():
        if not isinstance(parent, nn.Sequential):
            continue
        for i in range(len(parent) - 1):
            conv, bn = parent[i], parent[i + 1]
            if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats):
                continue
            scale = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / \
                torch.sqrt(bn.running_var + bn.eps)
            shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
            fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                              conv.padding, conv.dilation, conv.groups, bias=True,
                              padding_mode=conv.padding_mode).to(conv.weight.device, conv.weight.dtype)
            with torch.no_grad():
                fused.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
                bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                fused.bias.copy_((bias - bn.running_mean) * scale + shift)
            parent[i], parent[i + 1] = fused, nn.Identity()
    return folded


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- receptive field -----------------------------------------------------------------------

class _SupportConv(nn.Module):
    """Stands in for a convolution: which pixels can influence which (1 channel)."""

    def __init__(self, kernel: int):
        super().__init__()
        self.kernel = kernel

    def forward(self, x):
        x = x.amax(dim=1, keepdim=True)
        if self.kernel == 1:
            return x
        return F.max_pool2d(x, self.kernel, stride=1, padding=self.kernel // 2)


def _support_model(model: nn.Module) -> nn.Module:
    support = copy.deepcopy(model).cpu().float().eval()
    for parent in support.modules():
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Conv2d):
                setattr(parent, name, _SupportConv(child.kernel_size[0]))
            elif isinstance(child, (nn.BatchNorm2d, nn.LeakyReLU)):
                setattr(parent, name, nn.Identity())
    return support


@torch.no_grad()
def receptive_radius(model: LazyUNet) -> int:
    """Exact radius (px) of the network's receptive field.

    Every operation is replaced by its support (which input pixels reach which
    output pixel: 3x3 conv -> 3x3 dilation, pooling and bilinear upsampling as
    they are), an impulse is pushed through, and the farthest output pixel it
    reaches gives the radius. Tiled inference uses it as the margin that makes
    tiles agree with a whole-image pass.
    """
    support = _support_model(model)
    m = model.config.size_multiple
    size = 16 * m
    while True:
        x = torch.zeros(1, 1, size, size)
        c = size // 2
        x[0, 0, c, c] = 1.0
        out = torch.stack([o.amax(dim=1)[0] for o in support(x).values()]).amax(0)
        ys, xs = torch.nonzero(out > 0, as_tuple=True)
        radius = int(max((ys - c).abs().max(), (xs - c).abs().max()))
        if radius < c - 1:
            return radius
        size *= 2
