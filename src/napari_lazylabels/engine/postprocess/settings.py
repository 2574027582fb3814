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


@dataclass(frozen=True)
class InstanceParams:
    """Settings of the instance post-processing.

    The defaults suit nuclei of radius 6-20 px (areas of about 110-1300 px).

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
    """

    min_seed_area: int = 5
    min_size: int = 30
    interface_threshold: float = 0.5
    seed_source: str = SEEDS
    min_peak_distance: int = 5

    def __post_init__(self):
        if self.seed_source not in SEED_SOURCES:
            raise SettingsError(f"seed_source must be one of {SEED_SOURCES}, got {self.seed_source!r}")
        check_number("min_seed_area", self.min_seed_area, low=0, integer=True)
        check_number("min_size", self.min_size, low=0, integer=True)
        check_number("min_peak_distance", self.min_peak_distance, low=1, integer=True)
        check_number("interface_threshold", self.interface_threshold, low=0, high=1)


@dataclass(frozen=True)
class PostProcessing:
    """How a model's probabilities become semantic and instance labels.

    Attributes:
        method: ``"watershed"`` (seeded watershed, :mod:`.instances`) or
            ``"growth"`` (the partial-mask head's objects grown with
            ``lambda_final``, :func:`.growth.final_growth`).
        lambda_final: the growth speed of the final growth (``growth`` only).
        instances: the instance settings both methods use.
    """

    method: str = WATERSHED
    lambda_final: float = 10.0
    instances: InstanceParams = field(default_factory=InstanceParams)

    def __post_init__(self):
        if self.method not in METHODS:
            raise SettingsError(f"post-processing method must be one of {METHODS}, got {self.method!r}")
        check_number("lambda_final", self.lambda_final, low=0, infinite=True)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> PostProcessing:
        d = dict(d)
        params = d.pop("instances", None) or {}
        return from_known_fields(cls, {**d, "instances": from_known_fields(InstanceParams, params)})
