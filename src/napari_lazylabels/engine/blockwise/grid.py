"""The blocks of an image: cores on the network's pooling grid, and the context each reads around it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..inference import _round_up, default_margin
from ..model import LazyUNet
from ..prediction_spec import PredictionSpec


def _edges(length: int, block: int, least: int) -> list[int]:
    """Block boundaries along an axis: every ``block`` px, the last block at least ``least`` px."""
    edges = list(range(0, length, block)) + [length]
    if len(edges) > 2 and edges[-1] - edges[-2] < least:
        del edges[-2]
    return edges


@dataclass(frozen=True)
class BlockGrid:
    """The blocks of a YX image: cores of ``block`` px (the last ones longer, up to ``block + least``)."""

    shape: tuple[int, int]
    block: int
    least: int = 0

    @property
    def ys(self) -> list[int]:
        return _edges(self.shape[0], self.block, self.least)

    @property
    def xs(self) -> list[int]:
        return _edges(self.shape[1], self.block, self.least)

    @property
    def chunks(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return tuple(np.diff(self.ys).tolist()), tuple(np.diff(self.xs).tolist())

    def boxes(self) -> list[tuple[int, int, int, int]]:
        """``(y0, y1, x0, x1)`` of every core, row by row."""
        ys, xs = self.ys, self.xs
        return [(ys[i], ys[i + 1], xs[j], xs[j + 1]) for i in range(len(ys) - 1) for j in range(len(xs) - 1)]

    def window(self, box: tuple[int, int, int, int], halo: int) -> tuple[int, int, int, int]:
        y0, y1, x0, x1 = box
        h, w = self.shape
        return max(y0 - halo, 0), min(y1 + halo, h), max(x0 - halo, 0), min(x1 + halo, w)


def overlap_depth(network: LazyUNet, flips: bool = False) -> int:
    """The pixels a block's probabilities read around its core: the receptive-field margin, and with the
    test-time flips one pooling multiple more (a flipped pass sits on the flipped image's grid)."""
    return default_margin(network) + (network.config.size_multiple if flips else 0)


def block_grid(shape: Sequence[int], network: LazyUNet, spec: PredictionSpec) -> BlockGrid:
    """The blocks of ``spec`` on the network's pooling grid, each at least as long as what it reads
    around it (:func:`overlap_depth`)."""
    m = network.config.size_multiple
    depth = overlap_depth(network, spec.postprocess.flips)
    return BlockGrid((int(shape[0]), int(shape[1])), max(_round_up(int(spec.block_size), m), _round_up(depth, m)),
                     depth)
