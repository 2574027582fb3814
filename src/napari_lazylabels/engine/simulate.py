"""Lazy labels simulated from ground-truth instance labels, and their annotation cost.

Used for the synthetic data (tests, the demo, napari's sample), for the
benchmarks on real data that comes with instance labels only, and wherever a
"user" must paint without a user. Every regime that can be simulated makes its
own labels (:meth:`~.regimes.base.Regime.simulate`); this module asks each in
registry order, with one random generator, and routes each keyword setting to
the regime that declares it.

:func:`annotation_cost` adds up the effort the labels represent (each regime
counts its own), for plots of accuracy per unit of annotation effort.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .groundtruth import check_instances
from .regimes import registry
from .regimes.base import Regime


def simulated_regimes(regimes: Sequence[Regime] | None = None) -> list[Regime]:
    """The regimes (default: every registered one simulated by default) whose labels can be simulated."""
    chosen = [r for r in registry.regimes() if r.simulated_by_default] if regimes is None else regimes
    return [r for r in chosen if r.inputs and r.can_simulate]


def simulate_lazy_labels(instances: np.ndarray, classes: Mapping[int, int] | None = None, *,
                         rng: np.random.Generator | int | None, regimes: Sequence[Regime] | None = None,
                         **settings) -> dict[str, np.ndarray | None]:
    """The lazy labels a biologist would paint for these ground-truth instances.

    Args:
        instances: YX integer instance map, 0 = background, ids arbitrary.
        classes: instance id -> class (1..K); ``None``: every object is class 1.
        rng: a numpy Generator (or seed), shared by the regimes in turn.
        regimes: which regimes paint (default: every one that can be simulated).
        settings: keyword settings of the regimes' simulators, each routed to
            the regime that accepts it (e.g. ``strong=True``: give the exact
            masks too; see each regime's ``simulate``).

    Returns:
        input key -> labels (None where the regime gave nothing, e.g. no
        strong mask on this image).

    Raises:
        TypeError: a setting no regime accepts.
    """
    inst = check_instances(instances)
    rng = np.random.default_rng(rng)
    chosen = simulated_regimes(regimes)
    accepted = {r.name: r.simulation_settings() for r in chosen}
    unknown = set(settings) - set().union(*accepted.values()) if accepted else set(settings)
    if unknown:
        raise TypeError(f"no regime simulates with setting(s) {', '.join(sorted(unknown))}")
    out: dict[str, np.ndarray | None] = {}
    for r in chosen:
        out.update(r.simulate(inst, classes, rng, **{k: v for k, v in settings.items() if k in accepted[r.name]}))
    return out


def annotation_cost(labels: Mapping[str, np.ndarray | None],
                    instances: np.ndarray | None = None) -> dict[str, int]:
    """The effort a set of lazy labels for one image represents (input key -> labels).

    Returns the regimes' counts added up: at least ``painted_pixels`` (non-zero
    pixels over all layers) and ``strokes`` (brush strokes); the built-in
    regimes add ``blobs``/``blob_pixels``, ``interfaces``/``interface_pixels``
    and ``objects_traced``/``mask_pixels``/``strong_images`` (objects outlined
    in the strong masks: the instances of ``instances`` inside them when given).
    """
    total: dict[str, int] = {"painted_pixels": 0, "strokes": 0, "objects_traced": 0}
    for r in registry.regimes():
        if not any(i.key in labels for i in r.inputs):
            continue
        for k, v in r.cost(labels, instances).items():
            total[k] = total.get(k, 0) + int(v)
    return total


def total_annotation_cost(costs: Sequence[Mapping[str, int]]) -> dict[str, int]:
    """Sum :func:`annotation_cost` results over images."""
    total: dict[str, int] = {}
    for c in costs:
        for k, v in c.items():
            total[k] = total.get(k, 0) + int(v)
    return total
