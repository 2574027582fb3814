"""Which Labels layers hold an image's lazy labels (one combo per regime input: blobs, scribbles, ...).

By default the layers are those the annotation widget made (found by their
metadata, then by their names); a user who painted elsewhere picks the layer
here. The choice is recorded in the layers' metadata, so training, the
summary and the export all use the same layers.
"""

from __future__ import annotations

from functools import partial

from qtpy.QtWidgets import QComboBox, QFormLayout, QGroupBox

from .combo import set_combo_items
from ..layers import assign_label_layer, candidate_layers, input_keys, input_spec, label_layers
from .tooltips import tip

#: Shown when an image has no layer for an input.
NO_LAYER = "(none)"


class LabelLayerPicker(QGroupBox):
    """For one image: the Labels layer of each input."""

    def __init__(self, viewer, parent=None):
        super().__init__("Label layers", parent)
        self.viewer = viewer
        self.image_name: str | None = None
        self.combos = {key: QComboBox() for key in input_keys()}
        form = QFormLayout(self)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)    # the layer names get the dock's width
        form.setVerticalSpacing(1)
        for key, combo in self.combos.items():
            spec = input_spec(key)
            combo.setToolTip(tip("input_layer", title=spec.title.lower(), values=spec.values))
            combo.currentTextChanged.connect(partial(self._chosen, key))
            form.addRow(spec.title, combo)
        self.setToolTip(tip("label_layers"))
        self.refresh()

    def show_image(self, name: str | None) -> None:
        self.image_name = name
        self.refresh()

    def _image_layer(self):
        name = self.image_name
        return self.viewer.layers[name] if name is not None and name in self.viewer.layers else None

    def refresh(self) -> None:
        image = self._image_layer()
        self.setTitle(f"Label layers of {image.name}" if image is not None else "Label layers")
        current = label_layers(self.viewer, image.name) if image is not None else {}
        for task, combo in self.combos.items():
            names = [layer.name for layer in candidate_layers(self.viewer, image, task)] if image is not None else []
            chosen = current.get(task)
            items = names if chosen is not None and chosen.name in names else [NO_LAYER, *names]
            set_combo_items(combo, items)
            combo.blockSignals(True)
            combo.setCurrentText(chosen.name if chosen is not None and chosen.name in names else NO_LAYER)
            combo.blockSignals(False)
            combo.setEnabled(bool(names))

    def choose(self, task: str, layer_name: str) -> None:
        """Make the named layer the current image's ``task`` layer (what picking it in the combo does)."""
        self.combos[task].setCurrentText(layer_name)

    def _chosen(self, task: str, text: str) -> None:
        image = self._image_layer()
        if image is None or text == NO_LAYER or text not in self.viewer.layers:
            return
        layer = self.viewer.layers[text]
        current = label_layers(self.viewer, image.name).get(task)
        if current is not layer:
            assign_label_layer(self.viewer, image.name, task, layer)
        self.refresh()
