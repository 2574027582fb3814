"""The engine: lazy labels and their regimes, the network, training, inference, post-processing.

Pure computation on arrays: no files (see :mod:`napari_lazylabels.io`), no Qt or napari.
"""
