"""How a model predicts: one spec, resolved once where a prediction starts.

The command line, the napari widgets and a Python call (:func:`~.pipeline.segment`) each make one
:class:`PredictionSpec` from what the user asked for (:meth:`PredictionSpec.resolve`): the
post-processing (the model's, unless one is given), the device (chosen once, a ``torch.device``)
and the settings of the two probability back-ends. Everything below takes the spec as it is:

* in memory, whole or in tiles (:func:`~.pipeline.segment_in_memory`, ``tile_size``, ``batch_size``);
* block by block, out of core (:func:`~.blockwise.segment_blockwise`, ``block_size``, ``halo``).

Both turn their probabilities into labels with the same post-processing
(:func:`~.pipeline.segmentation_from_probabilities` with ``postprocess``), test-time flips
included, so both give the same result.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import check_number
from .device import resolve_device
from .postprocess.settings import PostProcessing
from .trained_model import LazyLabelsModel

#: Default edge of a block's core (px) of the block-wise prediction: about 1.3 GiB at the peak with the
#: ``cpu`` network.
BLOCK_SIZE = 1024
#: Default pixels of context around a block's core for the post-processing.
HALO = 128
#: Default largest tile edge (px) of the in-memory prediction.
TILE_SIZE = 1024


@dataclass(frozen=True)
class PredictionSpec:
    """What a prediction runs with, resolved (see the module docstring).

    Attributes:
        postprocess: the post-processing of both back-ends (flips and rescale included).
        device: where the network runs.
        tile_size: in memory: the largest tile edge (memory grows with its square).
        batch_size: in memory: tiles per forward pass.
        block_size: block-wise: the edge of a block's core.
        halo: block-wise: context (px) around each block for the instances.
    """

    postprocess: PostProcessing
    device: torch.device
    tile_size: int = TILE_SIZE
    batch_size: int = 2
    block_size: int = BLOCK_SIZE
    halo: int = HALO

    def __post_init__(self):
        check_number("tile size", self.tile_size, low=1, integer=True)
        check_number("batch size", self.batch_size, low=1, integer=True)
        check_number("block size", self.block_size, low=16, integer=True)
        check_number("halo", self.halo, low=0, integer=True)

    @classmethod
    def resolve(cls, model: LazyLabelsModel, *, device: str | torch.device = "auto",
                postprocess: PostProcessing | None = None, **settings) -> PredictionSpec:
        """The spec of a prediction with ``model``: its post-processing unless ``postprocess`` is given,
        ``device`` chosen (``auto``: CUDA, then MPS, then the CPU), the other fields as given.

        Raises:
            SettingsError: a setting out of range, an unknown device.
            LazyLabelsError: a device that is not there.
        """
        return cls(postprocess or model.postprocess, resolve_device(device), **settings)
