"""napari-lazylabels: segmentation of microscopy images from lazy labels.

The engine (everything but :mod:`napari_lazylabels.widgets`) imports neither Qt
nor napari and can be used from scripts and the ``lazylabels`` CLI.
"""

__version__ = "0.1.0"
