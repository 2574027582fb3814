"""The OME-Zarr store of a block-wise (out-of-core) prediction, written block by block."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..engine.annotations import PixelSize
from .ngff import NGFF_VERSION, STORE_VERSION, check_name, label_colours, multiscales, record_written


class PredictionStore:
    """An OME-Zarr store written block by block (out-of-core prediction), laid out as
    :func:`write_image_store` lays out a prediction: the image, ``labels/instances``,
    ``labels/semantic`` and ``probabilities/<task>``, with the same metadata. Its arrays are the sinks
    of :func:`napari_lazylabels.engine.blockwise.segment.segment_blockwise`; ``keys`` is scratch, deleted by
    :meth:`finish`, which also records the arrays written (the chunk check). With ``keep_image``
    false (a scratch store, from which a TIFF is written) it has no image array: ``image`` is None.
    """

    SCRATCH = "scratch"

    def __init__(self, root_dir: str | os.PathLike, *, image_shape: Sequence[int], image_dtype,
                 channels: Mapping[str, int], semantic_dtype, chunk: int, name: str,
                 metadata: Mapping[str, Any] | None = None, pixel_size: PixelSize | None = None,
                 keep_image: bool = True):
        import zarr
        from zarr.storage import LocalStore

        self.root_dir = Path(root_dir)
        self.pixel_size = pixel_size
        h, w = int(image_shape[0]), int(image_shape[1])
        self.shape = (h, w)
        yxc = len(image_shape) == 3
        meta = json.loads(json.dumps(dict(metadata or {})))
        attrs = {"ome": {"version": NGFF_VERSION,
                         "multiscales": multiscales("cyx" if yxc else "yx", name, pixel_size)},
                 "lazylabels": {"version": STORE_VERSION, "image_axes": "yxc" if yxc else "yx", "metadata": meta}}
        root = zarr.open_group(LocalStore(self.root_dir), mode="w", zarr_format=3, attributes=attrs)
        self.root = root
        yx = (min(chunk, h), min(chunk, w))
        image_chunks = ((int(image_shape[2]),) + yx) if yxc else yx
        self.image = root.create_array("0", shape=((int(image_shape[2]),) if yxc else ()) + (h, w),
                                       dtype=np.dtype(image_dtype), chunks=image_chunks,
                                       dimension_names=list("cyx" if yxc else "yx")) if keep_image else None
        self._labels = root.create_group("labels", attributes={"ome": {"version": NGFF_VERSION,
                                                                       "labels": ["instances", "semantic"]}})
        self.semantic = self._label_array("semantic", np.dtype(semantic_dtype), yx)
        group = root.create_group("probabilities", attributes={"lazylabels": {"probabilities": list(channels)}})
        self.probabilities = {}
        for key, c in channels.items():
            check_name(key, "probability", str(self.root_dir))
            sub = group.create_group(key, attributes={"ome": {"version": NGFF_VERSION,
                                                              "multiscales": multiscales("cyx", key, pixel_size)}})
            self.probabilities[key] = sub.create_array("0", shape=(int(c), h, w), dtype=np.float32,
                                                       chunks=(int(c),) + yx, dimension_names=list("cyx"))
        self.keys = root.create_group(self.SCRATCH).create_array("keys", shape=(h, w), dtype=np.int64,
                                                                 chunks=yx, fill_value=0)
        self._chunks = yx
        self._instances = None

    def _label_array(self, key: str, dtype: np.dtype, chunks):
        attrs = {"ome": {"version": NGFF_VERSION, "multiscales": multiscales("yx", key, self.pixel_size),
                         "image-label": {"version": NGFF_VERSION, "colors": [], "source": {"image": "../../"}}},
                 "lazylabels": {"dtype": str(dtype)}}
        return self._labels.create_group(key, attributes=attrs).create_array(
            "0", shape=self.shape, dtype=dtype, chunks=chunks, dimension_names=["y", "x"], fill_value=0)

    def instances(self, dtype):
        """The instance array, made once the number of objects (hence its dtype) is known."""
        self._instances = self._label_array("instances", np.dtype(dtype), self._chunks)
        return self._instances

    @property
    def instances_array(self):
        return self._instances

    @property
    def labels_dtype(self) -> np.dtype:
        return np.dtype(self._instances.dtype)

    def _max(self, array) -> int:
        h, w = self.shape
        cy, cx = self._chunks
        return max((int(np.max(array[y:y + cy, x:x + cx])) for y in range(0, h, cy) for x in range(0, w, cx)),
                   default=0)

    def finish(self, n_objects: int) -> None:
        """Label colours, the scratch deleted, the record of the arrays written."""
        import shutil
        for key, array, top in (("instances", self._instances, n_objects), ("semantic", self.semantic, None)):
            group = self._labels[key]
            ome = dict(group.attrs["ome"])
            ome["image-label"] = {**ome["image-label"], "colors": label_colours(self._max(array) if top is None else top)}
            group.attrs.update({"ome": ome})
        del self.root[self.SCRATCH]
        shutil.rmtree(self.root_dir / self.SCRATCH, ignore_errors=True)
        record_written(self.root)
