""""Annotate here next" (part of the Train & predict widget): the k boxes, over every image of the
session, where one more label would help the current model most
(:mod:`napari_lazylabels.engine.suggest`), shown as a Shapes layer; Alt-N (or *Next box*) steps
through them and moves the view there. *Train on* continues the current model on the labels as
they are now (a new run from its weights: ``train --init-from``).

The images and their labels are copied on the GUI thread; the model runs in a background thread at
the GUI's priority. A nicer thread, as training uses, was measured worse here (docs/benchmarks.md,
"Suggestion latency"): on a loaded CPU it waited longer for its share, the user waited 2-4 times
longer for the boxes, and the GUI stalled longer (it holds the GIL in its Python parts while
descheduled); training runs for minutes, a suggestion for seconds that the user is waiting for.
"""

from __future__ import annotations

import weakref
from typing import Callable

import numpy as np
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QFormLayout, QGroupBox, QLabel, QPushButton, QSpinBox, QVBoxLayout

from ...engine.annotations import LazyAnnotations
from ...engine.suggest import DEFAULT_BOX, DEFAULT_K, SuggestedBox, check_request, suggest
from ...engine.trained_model import LazyLabelsModel
from ...errors import AnnotationError, LazyLabelsError
from ..data import snapshot_labels
from ..layers import input_plane, plane_data, plane_name, planes, source_images, spatial_placement
from ..training_worker import lower_thread_priority
from .background import BackgroundCall
from .fit import button_grid

#: The Shapes layer of the suggestions, and the key that steps through them.
LAYER_NAME = "Annotate here next"
NEXT_KEY = "Alt-N"


def session_items(viewer) -> tuple[list[LazyAnnotations], list[tuple[object, tuple[int, ...]]]]:
    """Every plane of every image of the viewer with what is painted on it (copies), and for each
    its (image layer, plane)."""
    items, where = [], []
    for layer in source_images(viewer):
        try:
            stacks = snapshot_labels(viewer, layer)
        except AnnotationError:
            stacks = {}
        for plane in planes(layer):
            labels = {k: np.array(input_plane(k, d, plane)) for k, d in stacks.items()}
            items.append(LazyAnnotations(np.array(plane_data(layer, plane)), labels,
                                         name=plane_name(layer.name, plane)))
            where.append((layer, plane))
    return items, where


class SuggestPanel(QGroupBox):
    """k, box size, *Suggest*, *Next box* and *Train on*."""

    def __init__(self, viewer, get_model: Callable[[], LazyLabelsModel], parent=None, *,
                 get_device: Callable[[], str] = lambda: "cpu", train_on: Callable[[], None] | None = None):
        super().__init__("Annotate here next", parent)
        self.viewer = viewer
        self._get_model = get_model
        self._get_device = get_device
        self.k = QSpinBox()
        self.k.setRange(1, 100)
        self.k.setValue(DEFAULT_K)
        self.k.setToolTip("How many places to propose.")
        self.box = QSpinBox()
        self.box.setRange(8, 4096)
        self.box.setValue(DEFAULT_BOX)
        self.box.setToolTip("The edge of each proposed box, in pixels.")
        self.suggest_button = QPushButton("Suggest where to paint")
        self.suggest_button.setToolTip("Propose the places, over every image, where labels would help the "
                                       "current model most: where it is unsure, where its heads disagree, "
                                       "or far from any label. They appear as boxes in a Shapes layer.")
        self.suggest_button.clicked.connect(lambda: self.suggest())
        self.next_button = QPushButton(f"Next box ({NEXT_KEY})")
        self.next_button.setToolTip("Move the view to the next proposed box.")
        self.next_button.clicked.connect(lambda: self.next_box())
        self.train_on_button = QPushButton("Train on")
        self.train_on_button.setToolTip("Go on training the current model on the labels as they are now "
                                        "(its weights kept; a new run of the set number of steps).")
        self.train_on_button.setEnabled(train_on is not None)
        if train_on is not None:
            self.train_on_button.clicked.connect(train_on)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Boxes", self.k)
        form.addRow("Box size (px)", self.box)
        row = button_grid((self.suggest_button, self.next_button, self.train_on_button), columns=2)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(self.status)
        self._call = BackgroundCall(self)
        self.lower_priority = False         # True: the background thread nicer than the GUI's (for comparisons)
        self.boxes: list[SuggestedBox] = []
        self._where: list[tuple[object, tuple[int, ...]]] = []
        self.current = -1
        me = weakref.ref(self)          # the viewer's key map must not keep the panel (and the viewer) alive
        viewer.bind_key(NEXT_KEY, lambda v: me() is not None and me().next_box(), overwrite=True)

    @property
    def busy(self) -> bool:
        return self._call.busy

    def suggest(self) -> None:
        """Compute the boxes in the background; they show as a Shapes layer when done."""
        if self._call.busy:
            return
        try:
            model = self._get_model()
            items, where = session_items(self.viewer)
            check_request(model, items, self.k.value(), self.box.value())
        except LazyLabelsError as exc:
            show_error(str(exc))
            return
        k, box, device = self.k.value(), self.box.value(), self._get_device()
        self.suggest_button.setEnabled(False)
        self.status.setText(f"looking at {len(items)} image(s)...")

        def done(boxes: list[SuggestedBox]) -> None:
            self.suggest_button.setEnabled(True)
            self.show_boxes(boxes, where)

        def failed(message: str) -> None:
            self.suggest_button.setEnabled(True)
            self.status.setText("")
            show_error(message)

        nicer = self.lower_priority

        def work() -> list[SuggestedBox]:
            if nicer:
                lower_thread_priority()
            return suggest(model, items, k, box, device=device)

        self._call.start(work, done, failed)

    def show_boxes(self, boxes: list[SuggestedBox], where: list[tuple[object, tuple[int, ...]]]) -> None:
        """The boxes as the Shapes layer (replacing the previous suggestions), the view on the first."""
        self.boxes, self._where, self.current = list(boxes), where, -1
        rects = [np.array([[b.y, b.x], [b.y, b.x + b.width], [b.y + b.height, b.x + b.width],
                           [b.y + b.height, b.x]], float) for b in boxes]
        features = {"rank": [b.rank for b in boxes], "reason": [b.reason for b in boxes],
                    "image": [b.image for b in boxes]}
        if LAYER_NAME in self.viewer.layers:
            self.viewer.layers.remove(LAYER_NAME)
        place = spatial_placement(where[boxes[0].index][0]) if boxes else {"scale": [1, 1], "translate": [0, 0]}
        self.viewer.add_shapes(rects, shape_type="rectangle", name=LAYER_NAME, edge_color="yellow",
                               face_color="transparent", edge_width=2, features=features,
                               scale=place["scale"][-2:], translate=place["translate"][-2:],
                               text={"string": "{rank}: {reason}", "color": "yellow", "anchor": "upper_left"})
        self.status.setText("; ".join(f"{b.rank}. {b.image}: {b.reason}" for b in boxes) +
                            f" ({NEXT_KEY} steps through them)")
        if boxes:
            self.next_box()

    def next_box(self) -> None:
        """Move the view to the next box (round the list)."""
        if not self.boxes:
            show_info("no suggestions yet: press 'Suggest where to paint'")
            return
        self.current = (self.current + 1) % len(self.boxes)
        b = self.boxes[self.current]
        layer, plane = self._where[b.index]
        place = spatial_placement(layer)
        centre = (np.array([*plane, b.y + b.height / 2, b.x + b.width / 2]) * np.asarray(place["scale"])
                  + np.asarray(place["translate"]))
        for axis, value in enumerate(centre[:-2]):
            self.viewer.dims.set_point(self.viewer.dims.ndim - len(centre) + axis, value)
        camera_of(self.viewer).center = tuple(centre[-2:])
        self.viewer.layers.selection.active = layer

    def shutdown(self) -> None:
        self._call.wait(5)


def camera_of(viewer):
    """The viewer's camera: ``viewer.scene.camera`` since napari 0.9 (``viewer.camera`` is deprecated there)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera
