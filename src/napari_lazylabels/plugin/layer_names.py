"""The names of an image's lazy layers, in plain words, the distinguishing word first (no Qt, no napari import).

napari's layer list cuts a long name in the middle, and a combo box cuts it at
the end, so each name starts with what the layer holds and ends with the
image: ``blobs · nuclei``, ``interfaces · nuclei``, ``objects · nuclei`` (the
cells or nuclei found), ``P(object) · nuclei`` (the probability that a pixel
belongs to an object). Asked for (*Show every head*), each other head gets
``P(<painted kind>) · nuclei`` (``P(interfaces)``: a different first word from
the painted ``interfaces``, so the two differ even when cut short), the class
map ``classes · nuclei`` and a mixture head ``parts of <painted kind> · nuclei``.

Layers saved by earlier versions were called ``<image> <suffix>``
(``nuclei blobs``, ``nuclei instances``...): :func:`older_names` lists those,
so such a layer is still found by its name.
"""

from __future__ import annotations

from ..engine.regimes import registry
from ..engine.regimes.base import LabelInput
from ..engine.regimes.words import head_words
from ..engine.tasks import FOREGROUND

#: Between what a layer holds and its image.
SEPARATOR = " · "
INSTANCES, SEMANTIC = "instances", "semantic"
PREDICTION_KINDS = (SEMANTIC, INSTANCES)
#: The words of the prediction layers that are not a head's probabilities.
KIND_WORDS = {INSTANCES: "objects", SEMANTIC: "classes"}
MAIN_PROBABILITY = "P(object)"


def input_spec(key: str) -> LabelInput:
    spec = registry.find_input(key)
    if spec is None:
        raise KeyError(f"no regime has the input {key!r}")
    return spec


def named(words: str, image_name: str) -> str:
    return f"{words}{SEPARATOR}{image_name}"


def label_layer_name(image_name: str, key: str) -> str:
    """``blobs · nuclei``: the painted kind, then the image."""
    return named(input_spec(key).suffix, image_name)


def main_task(tasks) -> str | None:
    """The head whose probability is shown by default: the first one trained on the cells' extent
    (the foreground), else the first head."""
    tasks = list(tasks)
    for task in tasks:
        template = registry.task_template(task)
        if template is not None and template.role == FOREGROUND:
            return task
    return tasks[0] if tasks else None


def probability_layer_name(image_name: str, task: str, main: bool = False) -> str:
    """``P(object) · nuclei`` for the main head (:func:`main_task`), ``P(<painted kind>) · nuclei`` for another."""
    return named(MAIN_PROBABILITY if main else f"P({head_words(task)})", image_name)


def prediction_layer_name(image_name: str, kind: str) -> str:
    """``objects · nuclei`` (instances), ``classes · nuclei`` (semantic), ``parts of <kind> · nuclei``
    (components of a mixture head)."""
    if kind.startswith("components(") and kind.endswith(")"):
        return named(f"parts of {head_words(kind[len('components('):-1])}", image_name)
    return named(KIND_WORDS.get(kind, kind), image_name)


def older_names(image_name: str, role: str) -> list[str]:
    """What earlier versions called the layer of ``role``: ``<image> <suffix>``, ``<image> instances``,
    ``<image> <words> (probability)``."""
    spec = registry.find_input(role)
    if spec is not None:
        return [f"{image_name} {suffix}" for suffix in spec.suffixes]
    if role.startswith("P(") and role.endswith(")"):
        return [f"{image_name} {head_words(role[2:-1])} (probability)"]
    return [f"{image_name} {role}"]


def conventional_names(image_name: str, role: str) -> list[str]:
    """The names a layer of ``role`` may have: today's, then the earlier ones."""
    spec = registry.find_input(role)
    if spec is not None:
        now = [named(suffix, image_name) for suffix in spec.suffixes]
    elif role.startswith("P(") and role.endswith(")"):
        now = [probability_layer_name(image_name, role[2:-1])]     # the main one is found by its metadata
    else:
        now = [prediction_layer_name(image_name, role)]
    return now + older_names(image_name, role)
