"""The napari dock widgets of napari-lazylabels (the only part that imports Qt and napari).

* :class:`AnnotationWidget` - lazy-label layers, class names, shortcuts, GrabCut drafts, summary;
* :class:`TrainWidget` - training in the background with live previews, Save/Load, Predict;
* :class:`ExportWidget` - image, lazy labels and predictions into the project's OME-Zarr.
"""

from .annotation import AnnotationWidget
from .export import ExportWidget
from .training_widget import TrainWidget

__all__ = ["AnnotationWidget", "ExportWidget", "TrainWidget"]
