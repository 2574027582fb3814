"""The tasks of a model as data: a head of the network, its labels and its loss.

The trainer, the model and the sampler only ever loop over a list of
:class:`TaskSpec`; the regimes (:mod:`napari_lazylabels.engine.regimes`) make
those lists. A task also says what its head means to the post-processing
(``role``), so turning probabilities into instances never names a task.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Mapping, Sequence

from ..errors import SettingsError
from .config import check_number

#: The largest head a task may have: classes (class 0 included), mixture components per class,
#: statistics per component and image channel (a model file asking for more is refused).
MAX_CLASSES = 1024
MAX_COMPONENTS = 64
MAX_STATISTICS = 8

#: The decoder paths of the multi-task U-Net a head can sit on (see :mod:`.model`):
#: ``plain`` = x (the shared blocks F_W), ``refined`` = z (F_W plus its residual
#: sub-block), ``boundary`` = y (the block G fed by the refined path); ``local``: a
#: few convolutions on the image itself, beside the U-Net, with a field of view of
#: 7 px (``model.LOCAL_LAYERS``; a low field-of-view head, e.g. an auxiliary boundary head).
PLAIN, REFINED, BOUNDARY, LOCAL = "plain", "refined", "boundary", "local"
FEATURE_PATHS = (PLAIN, REFINED, BOUNDARY, LOCAL)

#: What a head means to the post-processing (:mod:`.postprocess`):
#: ``foreground``: the class map of the objects (semantic labels, the extent of instances);
#: ``seeds``: a region well inside each object (watershed seeds);
#: ``boundaries``: class 1 on interfaces between touching objects;
#: ``partial``: partial masks that reach towards the boundaries (seeds of a growth).
FOREGROUND, SEEDS, BOUNDARIES, PARTIAL = "foreground", "seeds", "boundaries", "partial"
HEAD_ROLES = (FOREGROUND, SEEDS, BOUNDARIES, PARTIAL)

#: The losses a task may name (``TaskSpec.loss``): ``partial_ce``, the partial cross-entropy of the
#: lazy labels, and ``scribble_mixture``, ImPartial's strokes plus blind-spot mixture reconstruction.
#: What a model file may hold (:mod:`napari_lazylabels.io.model_schema`); the trainer's functions are
#: :data:`napari_lazylabels.engine.training.losses.LOSSES`, one per name.
LOSS_NAMES = ("partial_ce", "scribble_mixture")


@dataclass(frozen=True)
class MixtureHead:
    """A head whose classes are mixtures, trained with a self-supervised reconstruction: ImPartial's
    (:mod:`.regimes.impartial` makes it from its options; no other task has one).

    Attributes:
        components: mixture components per class: the head has
            ``n_classes * components`` logits under one softmax, class ``k``
            owns components ``k * components .. (k + 1) * components - 1`` and
            its probability is the sum of theirs.
        statistics: sufficient statistics each component also outputs per
            image channel (a fixed-variance Gaussian: its mean, 1), for a
            loss that reconstructs the image; 0: none.
        blind_spot: the fraction of each training patch's pixels replaced by a
            random neighbour's value (Noise2Void blind spots) before the
            network sees it; the loss gets the clean patch and where the
            blind spots are. 0: none. Training only: prediction sees the image.
        self_supervised_weight: the weight of the self-supervised part of the
            task's loss (the blind-spot mixture reconstruction); above 0 the
            task trains on every image of the run, labelled for it or not.
    """

    components: int = 1
    statistics: int = 0
    blind_spot: float = 0.0
    self_supervised_weight: float = 0.0


#: A task without a mixture head: a plain softmax head, no reconstruction.
PLAIN_HEAD = MixtureHead()
#: The mixture head's fields, kept flat among a task's fields in a model file.
MIXTURE_FIELDS = tuple(f.name for f in fields(MixtureHead))


@dataclass(frozen=True)
class TaskSpec:
    """One task: which labels it learns from and how.

    Attributes:
        name: the task's name; also the key of its targets in the training items.
        n_classes: number of output classes, class 0 included.
        features: the decoder path its head reads (one of ``FEATURE_PATHS``).
        role: what the head means to the post-processing (one of
            ``HEAD_ROLES``), or None for a head the post-processing ignores.
        loss: the name of its loss, one of :data:`LOSS_NAMES`.
        weight: the task weight alpha_k of the total loss.
        class_weights: weight per class; ``None`` means "computed from the
            label frequencies of the training set, capped".
        unlabelled_value: a label value meaning "not annotated here" (scribble
            regimes); those pixels give no loss. ``None``: every pixel of an
            annotated image counts. It may lie above the classes (e.g.
            ``n_classes``), so that class 0 can be painted too.
        mixture: the :class:`MixtureHead` of an ImPartial task, or None (a
            plain softmax head); read through :attr:`components`,
            :attr:`statistics`, :attr:`blind_spot` and :attr:`self_supervised_weight`.
        description: what a user paints for it, shown in help and widgets.
    """

    name: str
    n_classes: int
    features: str
    role: str | None = None
    loss: str = "partial_ce"
    weight: float = 1.0
    class_weights: tuple[float, ...] | None = None
    unlabelled_value: int | None = None
    mixture: MixtureHead | None = field(default=None, metadata={"flat": MixtureHead})
    description: str = ""

    def __post_init__(self):
        if self.features not in FEATURE_PATHS:
            raise SettingsError(f"task {self.name!r}: features must be one of {FEATURE_PATHS}")
        if self.role is not None and self.role not in HEAD_ROLES:
            raise SettingsError(f"task {self.name!r}: role must be one of {HEAD_ROLES} or None")
        if not isinstance(self.n_classes, int) or self.n_classes < 2:
            raise SettingsError(f"task {self.name!r}: needs at least 2 classes")
        check_number(f"task {self.name!r}: n_classes", self.n_classes, high=MAX_CLASSES, integer=True)
        if self.unlabelled_value is not None:
            check_number(f"task {self.name!r}: unlabelled_value", self.unlabelled_value, low=0, high=MAX_CLASSES,
                         integer=True)
        if not (isinstance(self.weight, (int, float)) and 0 <= self.weight < float("inf")):
            raise SettingsError(f"task {self.name!r}: weight must be a finite number >= 0, got {self.weight}")
        if self.class_weights is not None and len(self.class_weights) != self.n_classes:
            raise SettingsError(f"task {self.name!r}: {len(self.class_weights)} class weights for "
                                f"{self.n_classes} classes")
        if self.mixture is not None and not isinstance(self.mixture, MixtureHead):
            raise SettingsError(f"task {self.name!r}: mixture must be a MixtureHead, got {self.mixture!r}")
        check_number(f"task {self.name!r}: components", self.components, low=1, high=MAX_COMPONENTS, integer=True)
        check_number(f"task {self.name!r}: statistics", self.statistics, low=0, high=MAX_STATISTICS, integer=True)
        check_number(f"task {self.name!r}: blind-spot fraction", self.blind_spot, low=0, high=0.5)
        check_number(f"task {self.name!r}: self-supervised weight", self.self_supervised_weight, low=0)

    @property
    def head(self) -> MixtureHead:
        """Its mixture head, or :data:`PLAIN_HEAD` (one component, no statistics, no blind spots)."""
        return self.mixture or PLAIN_HEAD

    @property
    def components(self) -> int:
        """Mixture components per class (1: a plain softmax head)."""
        return self.head.components

    @property
    def statistics(self) -> int:
        """Statistics each component outputs per image channel (0: none)."""
        return self.head.statistics

    @property
    def blind_spot(self) -> float:
        """The fraction of each training patch made blind spots for this task (0: none)."""
        return self.head.blind_spot

    @property
    def self_supervised_weight(self) -> float:
        """The weight of the self-supervised part of its loss (0: none)."""
        return self.head.self_supervised_weight

    @property
    def max_label(self) -> int:
        """Largest label value allowed in this task's targets (the unlabelled value included)."""
        return max(self.n_classes - 1, self.unlabelled_value or 0)

    @property
    def class_channels(self) -> int:
        """Logits under the head's softmax: one per component of every class."""
        return self.n_classes * self.components

    def head_channels(self, in_channels: int = 1) -> int:
        """Output channels of the task's head for images of ``in_channels`` channels."""
        return self.class_channels * (1 + self.statistics * int(in_channels))

    @property
    def self_supervised(self) -> bool:
        """Whether the task trains on every image (its loss has a self-supervised part)."""
        return self.self_supervised_weight > 0

    def to_dict(self) -> dict:
        """Its fields as JSON values (a model file's ``tasks`` entry; the mixture head's fields flat
        among them, as they always were)."""
        d = asdict(self)
        d.pop("mixture")
        d.update(asdict(self.head))
        d["class_weights"] = list(self.class_weights) if self.class_weights is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TaskSpec:
        d = dict(d)
        if d.get("class_weights") is not None:
            d["class_weights"] = tuple(float(w) for w in d["class_weights"])
        head = {k: d.pop(k) for k in MIXTURE_FIELDS if k in d}
        if head and MixtureHead(**head) != PLAIN_HEAD:
            d["mixture"] = MixtureHead(**head)
        return cls(**d)

    @classmethod
    def file_fields(cls) -> tuple[str, ...]:
        """The keys of a model file's ``tasks`` entry (:meth:`to_dict`)."""
        return tuple(f.name for f in fields(cls) if f.name != "mixture") + MIXTURE_FIELDS


def heads_by_role(probabilities: Mapping, tasks: Sequence[TaskSpec]) -> dict:
    """Task name -> probabilities, re-keyed by the tasks' roles (the first task of each role).

    The post-processing works on this: it asks for the ``foreground`` head,
    never for a task by name.
    """
    out = {}
    for t in tasks:
        if t.role is not None and t.role not in out and t.name in probabilities:
            out[t.role] = probabilities[t.name]
    return out
