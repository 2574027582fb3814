"""Fg/bg scribbles with the self-supervised blind-spot mixture loss (ImPartial, Martinez et al. 2021;
METHOD sections 1 and 6).

The user draws a few strokes across some objects (value k for an object of
class k, 1..K) and a few across the background (value K+1; with one class: 1
object, 2 background), on noisy images. One head learns from them, on the
refined decoder path, with

* the partial cross-entropy on the stroke pixels, each class normalised by its
  number of stroke pixels in the batch and weighted (0.45 object classes,
  0.45 background by default);
* the blind-spot mixture reconstruction (weight 0.1 by default): the head's
  classes are mixtures of M components each (their probabilities summed), and
  each component also predicts a mean intensity; on Noise2Void blind spots
  each pixel's value must be explained by the component the network assigns
  it to (:func:`~..training.losses.scribble_mixture_loss`). This part needs no
  labels, so every image of the run trains it, including images with no
  stroke at all.

Its task plays the ``foreground`` role: instances come from the seeded
watershed of the post-processing (seeds from the blobs head when the blobs'
regime is trained too, otherwise from the peaks of the foreground's distance
transform), with the model file's instance settings. A mixture weight of 0 is
ImPartial's baseline "Base" (the same network and strokes, blind spots, no
mixture loss). :meth:`ImPartial.simulate` makes strokes from ground truth the
way the paper did (random 32x32 fields of view).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

from ..config import check_number
from ..groundtruth import check_instances
from ..labels import smallest_uint
from ..tasks import FOREGROUND, REFINED, MixtureHead, TaskSpec
from .base import LabelInput, Regime

SCRIBBLES = "scribbles"
_EIGHT = np.ones((3, 3), dtype=bool)

#: Stroke colours: object classes in greens and blues, the background in red (the paper's Fig. 1).
OBJECT_GREENS = ((0, 220, 0), (0, 170, 255), (170, 255, 0), (0, 255, 170))
BACKGROUND_RED = ((255, 40, 40),)


@dataclass(frozen=True)
class ImPartialConfig:
    """Settings of the fg/bg scribble regime (the paper's defaults).

    Attributes:
        components: mixture components per class (object classes and the
            background); the paper used 2 each.
        blind_spot: fraction of each training patch's pixels replaced by a
            random neighbour's value (Noise2Void), where the mixture loss is
            taken.
        foreground_weight: weight of each object class's stroke loss.
        background_weight: weight of the background strokes' loss.
        mixture_weight: weight of the self-supervised mixture loss; 0 gives
            ImPartial's baseline "Base" (strokes only), which then trains on
            the images with strokes only.
    """

    components: int = field(default=2, metadata={
        "help": "mixture components per class (object classes and background)", "metavar": "M"})
    blind_spot: float = field(default=0.02, metadata={
        "help": "fraction of each training patch's pixels made blind spots (Noise2Void) for the mixture "
                "loss", "metavar": "F"})
    foreground_weight: float = field(default=0.45, metadata={
        "help": "loss weight of the object strokes (each class)", "metavar": "W"})
    background_weight: float = field(default=0.45, metadata={
        "help": "loss weight of the background strokes", "metavar": "W"})
    mixture_weight: float = field(default=0.1, metadata={
        "help": "loss weight of the self-supervised blind-spot mixture loss, which also trains on images "
                "without strokes; 0: strokes only", "metavar": "W"})

    def __post_init__(self):
        check_number("components", self.components, low=1, high=16, integer=True)
        check_number("blind-spot fraction", self.blind_spot, low=0, high=0.5)
        check_number("foreground weight", self.foreground_weight, low=0)
        check_number("background weight", self.background_weight, low=0)
        check_number("mixture weight", self.mixture_weight, low=0)


def stroke_summary(array: np.ndarray, class_names) -> str:
    """Summary cell: strokes and stroke pixels of each object class and of the background."""
    array = np.asarray(array)
    k = max(len(class_names), 1)
    names = [*(class_names or ["object"]), "background"]
    parts = []
    for value in range(1, k + 2):
        mask = array == value
        if mask.any():
            n = int(ndimage.label(mask, structure=_EIGHT)[1])
            parts.append(f"{names[value - 1]}: {n} stroke{'s' if n != 1 else ''}, {int(mask.sum())} px")
    return "; ".join(parts) or "0"


def simulate_scribbles(instances: np.ndarray, classes: Mapping[int, int] | None = None, *,
                       rng: np.random.Generator | int | None = None, budget: float = 0.1,
                       fov_size: int = 32, n_classes: int | None = None) -> np.ndarray:
    """Fg/bg strokes made from ground truth as ImPartial's annotator was simulated.

    A field of view of ``fov_size`` x ``fov_size`` px is placed at random;
    each object it touches gets the skeleton of its mask as a stroke (valued
    by its class), and the background inside the field of view the skeleton
    of the background there (valued K+1). Fields of view that touch no object
    without a stroke yet are skipped. This repeats until ``budget`` (a
    fraction of the image's objects, at least one) objects have a stroke.

    Args:
        instances: YX instance map, 0 = background.
        classes: instance id -> class (1..K); None: every object is class 1.
        rng: a numpy Generator or a seed.
        budget: the fraction of the objects to stroke (0..1).
        fov_size: the edge of a field of view (px).
        n_classes: K (the background value is K+1); default: the largest class.
    """
    inst = check_instances(instances)
    rng = np.random.default_rng(rng)
    check_number("scribble budget", budget, low=0, high=1)
    ids = np.unique(inst[inst > 0])
    cls = {int(i): int((classes or {}).get(int(i), 1)) for i in ids}
    k = int(n_classes) if n_classes is not None else max(cls.values(), default=1)
    out = np.zeros(inst.shape, smallest_uint(k + 1))
    target = 0 if budget <= 0 or not len(ids) else max(1, int(round(budget * len(ids))))
    boxes = ndimage.find_objects(inst)
    h, w = inst.shape
    fov = int(min(fov_size, h, w))
    done: set[int] = set()
    tries = 0
    while len(done) < target and tries < 100 * max(target, 1):
        tries += 1
        y0, x0 = int(rng.integers(0, h - fov + 1)), int(rng.integers(0, w - fov + 1))
        window = inst[y0:y0 + fov, x0:x0 + fov]
        touched = [int(i) for i in rng.permutation(np.unique(window[window > 0])) if int(i) not in done]
        if not touched:
            continue
        for i in touched[:target - len(done)]:
            sl = boxes[i - 1]
            obj = inst[sl] == i
            line = skeletonize(obj) if obj.sum() > 2 else obj
            out[sl][line] = cls[i]
            done.add(i)
        background = window == 0
        if background.any():
            line = skeletonize(background) & (out[y0:y0 + fov, x0:x0 + fov] == 0)
            out[y0:y0 + fov, x0:x0 + fov][line] = k + 1
    return out


class ImPartial(Regime):
    name = "impartial"
    title = "fg/bg scribbles (ImPartial)"
    description = ("a few strokes across objects (value k, class 1..K) and across the background (K+1), "
                   "learned with the self-supervised blind-spot mixture loss of ImPartial (Martinez et al. "
                   "2021), which also trains on images without strokes")
    inputs = (LabelInput(
        key=SCRIBBLES, title="Fg/bg scribbles", suffix="fg-bg scribbles",
        values="1..K: a stroke inside an object of class k, K+1: a stroke on the background "
               "(one class: 1 object, 2 background), 0 elsewhere",
        tooltip="Fg/bg scribbles (ImPartial): a few strokes across objects (painted with the object's "
                "class) and across the background (the value after the classes: 2 with one class).",
        extra_values=("background",), palette=OBJECT_GREENS, extra_palette=BACKGROUND_RED, brush_size=3,
        opacity=0.9, shortcut="Alt-4", summary=stroke_summary),)
    options = ImPartialConfig
    features = REFINED
    role = FOREGROUND
    colour = (0, 200, 0)
    probability_colormap = "green"
    simulated_by_default = False

    def tasks(self, n_classes: int, options: ImPartialConfig) -> list[TaskSpec]:
        k = int(n_classes)
        return [TaskSpec(
            SCRIBBLES, k + 1, self.features, role=self.role, loss="scribble_mixture",
            class_weights=(float(options.background_weight),) + (float(options.foreground_weight),) * k,
            unlabelled_value=k + 1, mixture=self.head(options), description=self.inputs[0].values)]

    @staticmethod
    def head(options: ImPartialConfig) -> MixtureHead:
        """The task's mixture head: ``components`` per class, one mean per component and channel (the
        image reconstruction), blind spots and the mixture loss's weight."""
        return MixtureHead(components=int(options.components), statistics=1, blind_spot=float(options.blind_spot),
                           self_supervised_weight=float(options.mixture_weight))

    def targets(self, item, done, tasks, options):
        """Class ids for the head: object strokes keep their class, background strokes (K+1)
        become class 0, and unpainted pixels the unlabelled value K+1."""
        task = next(t for t in tasks if t.name == SCRIBBLES)
        labels = item.labels.get(SCRIBBLES)
        if labels is None:
            return {SCRIBBLES: (None, False)}
        labels = np.asarray(labels)
        background = task.n_classes          # K + 1
        out = np.where(labels == 0, background, np.where(labels == background, 0, labels)).astype(np.int32)
        return {SCRIBBLES: (out, item.is_annotated(SCRIBBLES))}

    def simulate(self, instances, classes=None, rng=None, *, scribble_budget: float = 0.1,
                 fov_size: int = 32, n_classes: int | None = None):
        return {SCRIBBLES: simulate_scribbles(instances, classes, rng=rng, budget=scribble_budget,
                                              fov_size=fov_size, n_classes=n_classes)}

    def cost(self, labels, instances=None):
        lab = labels.get(SCRIBBLES)
        if lab is None:
            return {"painted_pixels": 0, "strokes": 0}
        lab = np.asarray(lab)
        strokes = sum(int(ndimage.label(lab == v, structure=_EIGHT)[1]) for v in np.unique(lab[lab > 0]))
        out = {"painted_pixels": int(np.count_nonzero(lab)), "strokes": strokes}
        if instances is not None:
            inst = np.asarray(instances)
            on_objects = (lab > 0) & (inst > 0)
            out.update(object_stroke_pixels=int(on_objects.sum()),
                       background_stroke_pixels=int(((lab > 0) & (inst == 0)).sum()),
                       objects_scribbled=int(len(np.unique(inst[on_objects]))))
        return out


REGIME = ImPartial()
