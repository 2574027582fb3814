"""The peer: Cellpose 3.1 trained from scratch on our training tiles, through its own code.

Its network (``CPnet`` inside ``cellpose.models.CellposeModel(pretrained_model=False)``), its flows
(``cellpose.dynamics.labels_to_flows``), its training loop (``cellpose.train.train_seg`` with its
defaults: AdamW, learning rate 0.005 with its warm-up over 10 epochs and its decay, weight decay 1e-5,
batch 8 of 224 px, each image rescaled by its masks' diameter to ``diam_mean`` 30, images with fewer
than ``min_train_masks`` = 5 masks left out) and its mask reconstruction (``CellposeModel.eval`` with
the mean training diameter, as a user who knows the cell size would give it).

Channels: a grey image is Cellpose's channels [0, 0] (grey, no nuclear channel); an RGB image (H&E) is
given with its channel axis and channels [0, 0] too, which Cellpose turns into grey (the mean of R, G
and B): the setting its documentation gives for images without a separate nuclear stain.

The budget (:class:`PeerBudget`) is wall-clock seconds, steps or epochs. Cellpose counts epochs (one
epoch: every kept image once, in batches of 8), so a step budget is rounded up to whole epochs, and a
time budget is turned into epochs from the step time measured first on a throw-away copy (the
calibration, not counted as training). ``train_seg``'s saving (``net.save_model``) is intercepted:
nothing is written to disk, and the weights are kept in memory at the milestones asked for.

Cellpose is an optional install (``bash scripts/setup_peer.sh``); without it :func:`require_cellpose`
stops with one line. Nothing outside the peer imports it.
"""

from __future__ import annotations

import math
import re
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

INSTALL = ("the Cellpose peer (methods cp, cp10) needs cellpose 3.1: bash scripts/setup_peer.sh "
           "(pip install --no-deps cellpose==3.1.1.3 fastremap fill-voids numba natsort roifile)")
#: train_seg's own defaults (cellpose 3.1), written into every record.
SETTINGS = {"optimizer": "AdamW", "learning_rate": 0.005, "weight_decay": 1e-5, "batch_size": 8, "bsize": 224,
            "diam_mean": 30.0, "rescale": True, "min_train_masks": 5, "channels": [0, 0]}
#: Steps of the calibration run that times a step (the first one included: a slight over-estimate).
CALIBRATION_STEPS = 3


def require_cellpose() -> Any:
    """The cellpose package (3.x), or one clear line saying how to install it."""
    try:
        import cellpose
        from cellpose import dynamics, models, train, utils  # noqa: F401
    except ImportError:
        raise SystemExit(INSTALL) from None
    version = cellpose_version()
    if version and not version.startswith("3."):
        raise SystemExit(f"cellpose {version} is installed; {INSTALL}")
    return cellpose


def cellpose_version() -> str:
    """The installed cellpose's version ("" when it has none)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("cellpose")
    except PackageNotFoundError:
        return ""


@dataclass(frozen=True)
class PeerBudget:
    """How long the peer trains: exactly one of wall-clock ``seconds``, ``steps`` or ``epochs``."""

    seconds: float | None = None
    steps: int | None = None
    epochs: int | None = None

    def __post_init__(self):
        given = [v for v in (self.seconds, self.steps, self.epochs) if v is not None]
        if len(given) != 1 or given[0] <= 0:
            raise SystemExit("the peer's budget is one positive number of seconds, steps or epochs")

    @property
    def kind(self) -> str:
        return "seconds" if self.seconds is not None else "steps" if self.steps is not None else "epochs"


@dataclass
class PeerTraining:
    """A trained peer and what its training took."""

    model: Any                     # cellpose.models.CellposeModel
    diameter: float                # mean diameter of the training masks (px): given to eval
    epochs: int
    steps_per_epoch: int
    n_used: int                    # training images kept (min_train_masks)
    train_s: float                 # flows + train_seg
    flows_s: float
    calibration_s: float = 0.0
    step_s: float | None = None    # the calibrated step time (time budgets)
    milestones: list[dict] = field(default_factory=list)   # {"steps", "epochs", "train_s", "state"}

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _channel_axis(images: list[np.ndarray]) -> int | None:
    return 2 if images[0].ndim == 3 else None


def _new_model(seed: int, device: torch.device):
    from cellpose import models
    torch.manual_seed(seed)
    return models.CellposeModel(pretrained_model=False, diam_mean=SETTINGS["diam_mean"], device=device,
                                gpu=device.type == "cuda")


def _train_seg(model, images, flows, n_epochs: int, workdir: str, nimg_per_epoch: int | None = None,
               on_save=None) -> None:
    """cellpose.train.train_seg with its defaults; its saving goes to ``on_save(epoch_index)``."""
    from cellpose import train

    def save(filename):
        m = re.search(r"_epoch_(\d+)$", str(filename))
        if on_save is not None:
            on_save(int(m.group(1)) if m else n_epochs - 1)

    model.net.save_model = save
    train.train_seg(model.net, train_data=images, train_labels=flows, channels=SETTINGS["channels"],
                    channel_axis=_channel_axis(images), n_epochs=n_epochs, save_path=workdir,
                    save_every=1, save_each=True, nimg_per_epoch=nimg_per_epoch, model_name="peer",
                    min_train_masks=SETTINGS["min_train_masks"])


def _kept(masks: list[np.ndarray]) -> int:
    return sum(len(np.unique(m[m > 0])) >= SETTINGS["min_train_masks"] for m in masks)


def train_cellpose(images: list[np.ndarray], masks: list[np.ndarray], budget: PeerBudget, *, seed: int = 0,
                   device: str = "cpu", milestones: tuple[int, ...] = (), log=None) -> PeerTraining:
    """Train Cellpose from scratch on ``images`` and their instance ``masks`` for ``budget``; keep the
    weights after the epochs that reach each of ``milestones`` (steps)."""
    require_cellpose()
    from cellpose import dynamics
    n_used = _kept(masks)
    if n_used == 0:
        raise SystemExit(f"no training image has {SETTINGS['min_train_masks']} objects or more: Cellpose "
                         "leaves such images out, so it has nothing to train on")
    spe = math.ceil(n_used / SETTINGS["batch_size"])
    dev = _device(device)
    t0 = time.perf_counter()
    flows = dynamics.labels_to_flows([np.asarray(m, np.int32) for m in masks], device=dev)
    flows_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="peer_cellpose_") as workdir:
        calibration_s, step_s = 0.0, None
        if budget.seconds is not None:
            c0 = time.perf_counter()
            _train_seg(_new_model(seed, dev), images, flows, 1, workdir,
                       nimg_per_epoch=CALIBRATION_STEPS * SETTINGS["batch_size"])
            calibration_s = time.perf_counter() - c0
            step_s = calibration_s / CALIBRATION_STEPS
            epochs = max(1, int((budget.seconds - flows_s) / (step_s * spe)))
        elif budget.steps is not None:
            epochs = math.ceil(budget.steps / spe)
        else:
            epochs = int(budget.epochs)
        marks = {max(1, math.ceil(m / spe)) for m in milestones if math.ceil(m / spe) <= epochs}
        if log:
            log(f"peer: {n_used} images, {spe} steps an epoch, {epochs} epochs"
                + (f" (step {step_s:.2f} s, budget {budget.seconds:.0f} s)" if step_s else ""))
        model = _new_model(seed, dev)
        kept: list[dict] = []
        t1 = time.perf_counter()

        def on_save(epoch_index: int) -> None:
            done = epoch_index + 1
            if done in marks and all(k["epochs"] != done for k in kept):
                kept.append({"epochs": done, "steps": done * spe, "train_s": flows_s + time.perf_counter() - t1,
                             "state": {k: v.detach().clone() for k, v in model.net.state_dict().items()}})

        _train_seg(model, images, flows, epochs, workdir, on_save=on_save)
        train_s = flows_s + time.perf_counter() - t1
    diameter = float(model.net.diam_labels.item())
    return PeerTraining(model, diameter, epochs, spe, n_used, train_s, flows_s, calibration_s, step_s,
                        sorted(kept, key=lambda k: k["epochs"]))


def segment_cellpose(training: PeerTraining, image: np.ndarray, state: dict | None = None) -> np.ndarray:
    """Cellpose's masks of ``image`` (an int32 instance map), by the trained weights or by the weights
    ``state`` kept at a milestone (loaded into a fresh model: Cellpose's CPU evaluation turns the
    network it runs into MKL-DNN layout, which takes no new weights)."""
    model = training.model if state is None else _model_with(training, state)
    masks = model.eval(image, channels=SETTINGS["channels"], channel_axis=_channel_axis([image]),
                       diameter=training.diameter)[0]
    return np.asarray(masks, np.int32)


def _model_with(training: PeerTraining, state: dict):
    cached = training.__dict__.setdefault("_models", {})
    if id(state) not in cached:
        model = _new_model(0, training.model.device)
        model.net.load_state_dict(state)
        cached.clear()                      # one milestone's model at a time
        cached[id(state)] = model
    return cached[id(state)]
