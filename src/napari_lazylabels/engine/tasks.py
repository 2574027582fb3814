"""The lazy-label tasks as data.

A task is a label layer, a head of the network and a loss. The trainer, the
model and the sampler only ever loop over a list of :class:`TaskSpec`, so a new
lazy regime (fg/bg scribbles, points plus a foreground mask, the recursive
approximation task) is a new entry here, not a new code path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

DETECTION = "detection"
SEPARATION = "separation"
SEGMENTATION = "segmentation"

#: The decoder paths of the multi-task U-Net a head can sit on.
FEATURE_PATHS = (DETECTION, SEGMENTATION, SEPARATION)


@dataclass(frozen=True)
class TaskSpec:
    """One task: which labels it learns from and how.

    Attributes:
        name: the task's name; also the key of its labels in
            :class:`~napari_lazylabels.annotations.LazyAnnotations`.
        n_classes: number of output classes, class 0 included.
        features: the decoder path its head reads (one of ``FEATURE_PATHS``).
        loss: name of the loss in :data:`napari_lazylabels.losses.LOSSES`.
        weight: the task weight alpha_k of the total loss.
        class_weights: weight per class; ``None`` means "computed from the
            label frequencies of the training set, capped" (see
            :func:`napari_lazylabels.losses.auto_class_weights`).
        unlabelled_value: a label value meaning "not annotated here" (scribble
            regimes); those pixels give no loss. ``None``: every pixel of an
            annotated image counts.
        description: what a user paints for it, shown in help and widgets.
    """

    name: str
    n_classes: int
    features: str
    loss: str = "partial_ce"
    weight: float = 1.0
    class_weights: tuple[float, ...] | None = None
    unlabelled_value: int | None = None
    description: str = ""

    def __post_init__(self):
        if self.features not in FEATURE_PATHS:
            raise ValueError(f"task {self.name!r}: features must be one of {FEATURE_PATHS}")
        if self.n_classes < 2:
            raise ValueError(f"task {self.name!r}: needs at least 2 classes")
        if self.class_weights is not None and len(self.class_weights) != self.n_classes:
            raise ValueError(f"task {self.name!r}: {len(self.class_weights)} class weights for {self.n_classes} classes")

    @property
    def max_label(self) -> int:
        """Largest label value allowed in this task's layer."""
        return self.n_classes - 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["class_weights"] = list(self.class_weights) if self.class_weights is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TaskSpec:
        d = dict(d)
        if d.get("class_weights") is not None:
            d["class_weights"] = tuple(float(w) for w in d["class_weights"])
        return cls(**d)


def lazy_tasks(n_classes: int = 1, weights: dict[str, float] | None = None) -> list[TaskSpec]:
    """The three tasks of Ke et al. (2020) for ``n_classes`` object classes."""
    weights = weights or {}
    return [
        TaskSpec(DETECTION, n_classes + 1, DETECTION, weight=weights.get(DETECTION, 1.0),
                 description="a quick blob well inside each object, valued by class (1..K)"),
        TaskSpec(SEPARATION, 2, SEPARATION, weight=weights.get(SEPARATION, 1.0),
                 description="a scribble (1) on the interface between touching objects"),
        TaskSpec(SEGMENTATION, n_classes + 1, SEGMENTATION, weight=weights.get(SEGMENTATION, 1.0),
                 description="exact masks by class (1..K) on a few images"),
    ]


def single_task(name: str = SEGMENTATION, n_classes: int = 1) -> list[TaskSpec]:
    """One segmentation task, for the plain U-Net baselines."""
    return [TaskSpec(name, n_classes + 1, SEGMENTATION, description="masks by class")]


@dataclass
class TaskSet:
    """An ordered list of tasks with look-up by name."""

    tasks: list[TaskSpec] = field(default_factory=lazy_tasks)

    def __iter__(self):
        return iter(self.tasks)

    def __len__(self):
        return len(self.tasks)

    def __getitem__(self, name: str) -> TaskSpec:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tasks]
