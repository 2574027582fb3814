"""What a model needs at prediction time to turn probabilities into instances (typed, in the model file).

:class:`PostProcessing` is a field of every model file
(:class:`~napari_lazylabels.engine.trained_model.LazyLabelsModel`):
``method`` says which post-processing :func:`~napari_lazylabels.engine.pipeline.segment`
applies, the rest are its parameters. The regimes a model was trained with
choose it (e.g. the recursive approximation asks for the final growth).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Mapping

from ...errors import SettingsError
from ..config import check_number, from_known_fields
from ..tasks import PARTIAL, SEEDS

#: Seed sources :class:`InstanceParams` accepts: a head role (``seeds``: the
#: blobs head, ``partial``: the partial-mask head), or ``distance`` (the
#: distance-transform peaks even when a seed head is present).
DISTANCE = "distance"
SEED_SOURCES = (SEEDS, PARTIAL, DISTANCE)

#: The post-processing methods: seeded watershed (:mod:`.instances`) or the
#: final growth of the partial masks (:mod:`.growth`).
WATERSHED, GROWTH = "watershed", "growth"
METHODS = (WATERSHED, GROWTH)


#: :attr:`InstanceParams.seed_join_threshold` from which nothing joins (the argmax's seeds as they are:
#: over 0.5 lies only what the argmax already holds).
NO_SEED_JOIN = 0.5

#: The range of :attr:`PostProcessing.rescale`.
RESCALE_RANGE = (0.1, 10.0)
#: The largest :attr:`InstanceParams.min_peak_distance` (px): the peak search holds a square of
#: (2 d + 1)^2 pixels, 4 MB at this bound (a model file asking for 10^5 would need 40 GB).
MAX_PEAK_DISTANCE = 1000


def _help(text: str, **more) -> dict:
    return {"help": text, **more}


@dataclass(frozen=True)
class InstanceParams:
    """Settings of the instance post-processing.

    The defaults suit nuclei of radius 6-20 px (areas of about 110-1300 px)
    at the network's input resolution (the training images' pixels; see
    :attr:`PostProcessing.rescale` for images whose objects are larger or
    smaller). Every field is a ``lazylabels predict`` option (defaults:
    the model's), a ``lazylabels train`` option (stored in the model) and a
    field of the Train & predict widget.

    Attributes:
        min_seed_area: seeds (connected components of the seed head's
            foreground) with fewer pixels are noise and are dropped. 5 px keeps
            the inner blob of even the smallest nuclei (radius 6 -> blob of
            radius ~2-3, 12-28 px).
        min_size: instances with fewer pixels are merged into a touching
            instance or dropped. 30 px is a quarter of the smallest nucleus
            (radius 6, ~113 px): smaller pieces are fragments or specks.
        interface_threshold: a pixel is an interface where the boundary head's
            probability of class 1 exceeds this.
        seed_source: ``"seeds"`` (default: the blobs head), ``"partial"`` (the
            partial-mask head), or ``"distance"`` (always use the
            distance-transform peaks). When the named head is missing the other
            seed head is used, and without either the distance peaks.
        min_peak_distance: for the distance-transform fallback only: the
            smallest distance in pixels between two seeds. 5 px (just under the
            smallest radius) splits touching nuclei without cutting single
            elongated ones too often.
        seed_join_threshold: each seed (the seed head's argmax, less the
            small ones) reaches over the connected pixels where the seed
            head's probability of an object exceeds this, so the pieces of one
            object's seed that the argmax breaks apart (a long rod's, where the
            head hesitates) join into one seed (hysteresis). 0.3 by default;
            0.5 or more: the argmax's seeds as they are.
        probability_threshold: a pixel is foreground (part of an object)
            where the segmentation head's probability of "not background"
            exceeds this; its class is then the most likely object class.
            Lower it to get fuller objects from a hesitant model, raise it
            for tighter ones. ``None`` (the default): the head's argmax, the
            most likely of background and the classes (for a one-class
            model the same as 0.5).
    """

    min_seed_area: int = field(default=5, metadata=_help(
        "seeds (blobs predicted inside objects) smaller than this many pixels are dropped as noise", metavar="PX"))
    min_size: int = field(default=30, metadata=_help(
        "objects smaller than this many pixels are merged into a touching object, or dropped", metavar="PX"))
    interface_threshold: float = field(default=0.5, metadata=_help(
        "a pixel is an interface between touching objects where the separation head's probability exceeds "
        "this (0..1; lower: more splits)", metavar="P"))
    seed_source: str = field(default=SEEDS, metadata=_help(
        "where the watershed seeds come from", choices=SEED_SOURCES, metavar="|".join(SEED_SOURCES)))
    min_peak_distance: int = field(default=5, metadata=_help(
        "without a seed head: the least distance in pixels between two seeds (distance-transform peaks)",
        metavar="PX"))
    seed_join_threshold: float = field(default=0.3, metadata=_help(
        "pieces of seed joined by pixels where the seed head's probability exceeds this become one seed (0..1; "
        "0.5 or more: no joining)", metavar="P"))
    probability_threshold: float | None = field(default=None, metadata=_help(
        "a pixel belongs to an object where the probability of not being background exceeds this (0..1; "
        "lower: fuller objects; unset: the most likely of background and the classes)", metavar="P"))

    def __post_init__(self):
        if self.seed_source not in SEED_SOURCES:
            raise SettingsError(f"seed_source must be one of {SEED_SOURCES}, got {self.seed_source!r}")
        check_number("min_seed_area", self.min_seed_area, low=0, integer=True)
        check_number("min_size", self.min_size, low=0, integer=True)
        check_number("min_peak_distance", self.min_peak_distance, low=1, high=MAX_PEAK_DISTANCE, integer=True)
        check_number("interface_threshold", self.interface_threshold, low=0, high=1)
        check_number("seed_join_threshold", self.seed_join_threshold, low=0, high=1)
        if self.probability_threshold is not None:
            check_number("probability_threshold", self.probability_threshold, low=0, high=1)


@dataclass(frozen=True)
class PostProcessing:
    """How a model's probabilities become semantic and instance labels.

    Attributes:
        method: ``"watershed"`` (seeded watershed, :mod:`.instances`) or
            ``"growth"`` (the partial-mask head's objects grown with
            ``lambda_final``, :func:`.growth.final_growth`).
        lambda_final: the growth speed of the final growth (``growth`` only).
        instances: the instance settings both methods use.
        rescale: the image is resized by this factor before the network sees
            it, and the results are resized back: 2 when the objects look half
            as large (in pixels) as those the model was trained on, 0.5 when
            twice as large. ``None`` (the default): from the pixel sizes when
            both the image's and the training images' are known (image pixel
            size / training pixel size), else 1. The size settings of
            ``instances`` are in pixels of the resized image.
        flips: test-time augmentation: the network's probabilities are the mean over the image and
            its three flips (four times the prediction time).
    """

    method: str = WATERSHED
    lambda_final: float = 10.0
    instances: InstanceParams = field(default_factory=InstanceParams)
    rescale: float | None = None
    flips: bool = False

    def __post_init__(self):
        if self.method not in METHODS:
            raise SettingsError(f"post-processing method must be one of {METHODS}, got {self.method!r}")
        check_number("lambda_final", self.lambda_final, low=0, infinite=True)
        if self.rescale is not None:
            check_number("rescale", self.rescale, low=RESCALE_RANGE[0], high=RESCALE_RANGE[1])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> PostProcessing:
        d = dict(d)
        params = d.pop("instances", None) or {}
        return from_known_fields(cls, {**d, "instances": from_known_fields(InstanceParams, params)})
