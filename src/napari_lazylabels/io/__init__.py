"""Files: images and label layers, manifests, OME-Zarr stores and projects, model folders, figures.

Every write is atomic and refuses to replace an existing output unless asked to.
"""
