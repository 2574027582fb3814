"""Plain words for what a user painted, from the ids the code uses (tasks, inputs, heads).

A person paints blobs, interfaces, masks, fg/bg strokes, points or a
foreground mask; the code trains tasks ("detection", "cell_boundaries",
"locations"...). Every message a person reads names the painted kind:
:func:`input_words` for an input key, :func:`task_words` for a task (the
inputs that train it). The words come from the regimes' own titles, so a new
regime needs no entry here; a few titles read better in a sentence
(:data:`SENTENCE_WORDS`).
"""

from __future__ import annotations

from . import registry

#: A title -> its wording inside a sentence.
SENTENCE_WORDS = {"fg/bg scribbles": "fg/bg strokes", "foreground": "foreground mask"}


def _plain(title: str) -> str:
    text = title.lower()
    return SENTENCE_WORDS.get(text, text)


def input_words(key: str) -> str:
    """What the user painted for the input ``key`` ("blobs", "fg/bg strokes"); the key itself if unknown."""
    spec = registry.find_input(key)
    return _plain(spec.title) if spec is not None else key


def task_words(task: str) -> str:
    """The painted kinds that train ``task`` ("points and foreground mask"); the task id if it has none."""
    regime = registry.regime_of_task(task)
    if regime is None:
        return task
    if not regime.inputs:             # a regime that trains on another's labels: its own title
        return _plain(regime.title)
    return " and ".join(_plain(i.title) for i in regime.inputs)


def painted_counts(counts: dict[str, int]) -> str:
    """``{task: images}`` as "blobs 1, interfaces 1, points and foreground mask 1": one entry per painted
    kind (tasks trained by the same inputs counted once, the larger count)."""
    merged: dict[str, int] = {}
    for task, n in counts.items():
        words = task_words(task)
        merged[words] = max(merged.get(words, 0), n)
    return ", ".join(f"{w} {n}" for w, n in merged.items())


def head_words(task: str) -> str:
    """A prediction head in plain words: what was painted for it ("masks", "interfaces"), or, for a regime
    with several heads or none painted, the task's own name in words ("cell boundaries")."""
    regime = registry.regime_of_task(task)
    if regime is not None and regime.inputs and len(regime.task_names) == 1:
        return task_words(task)
    return task.replace("_", " ")
