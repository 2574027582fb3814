"""The regimes the benchmarks train, found in the regime registry by the role of their head: the
benchmarks name none."""

from __future__ import annotations

from typing import Any

from napari_lazylabels.engine.regimes import registry
from napari_lazylabels.engine.regimes.base import Regime
from napari_lazylabels.engine.tasks import BOUNDARIES, FOREGROUND, PARTIAL, SEEDS


def _regime_with_role(role: str) -> Regime:
    regime = registry.regime_with_role(role)
    if regime is None:
        raise SystemExit(f"no registered regime has a {role} head")
    return regime


def foreground_regime() -> Regime:
    """The regime of the exact masks: the one task of the single-task baselines."""
    return _regime_with_role(FOREGROUND)


def strong_key() -> str:
    """The input key of the exact (strong) masks."""
    return foreground_regime().inputs[0].key


def seeds_regime() -> Regime:
    """The regime of the blobs: the seeds of the instances, the cheapest lazy label (what GrabCut drafts
    from)."""
    return _regime_with_role(SEEDS)


def seeds_key() -> str:
    """The input key of the blobs."""
    return seeds_regime().inputs[0].key


def boundaries_key() -> str | None:
    """The input key of the interface scribbles (None without such a regime)."""
    found = registry.input_with_role(BOUNDARIES)
    return None if found is None else found.key


def partial_regime() -> Regime:
    """The opt-in regime whose head gives partial masks (the recursive approximation of mtr)."""
    regime = next((r for r in registry.opt_in_regimes() if r.role == PARTIAL), None)
    if regime is None or regime.options is None:
        raise SystemExit("no registered opt-in regime has a partial-mask head with options")
    return regime


def partial_options(**settings) -> Any:
    """The options of the partial-mask regime (its defaults, with ``settings`` changed)."""
    return partial_regime().options(**settings)


def lazy_regimes() -> list[Regime]:
    """The lazy regime of Ke et al.: the regimes with required inputs (blobs, interfaces, masks)."""
    return [r for r in registry.regimes() if not r.opt_in and any(i.required for i in r.inputs)]
