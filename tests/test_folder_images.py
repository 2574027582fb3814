"""Predict folder's images: label files beside them are left out, a user's own images are not."""

from __future__ import annotations

import numpy as np
import tifffile

from napari_lazylabels.io.folder_images import images_to_predict
from napari_lazylabels.io.label_tiff import write_labels_tiff


def test_label_files_are_left_out_and_user_images_kept(tmp_path):
    image = (np.arange(64 * 64).reshape(64, 64) % 4000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "cells.tif", image, compression="zlib")       # the user's, saved by tifffile
    tifffile.imwrite(tmp_path / "other.tif", image)
    write_labels_tiff(tmp_path / "old_result.tif", np.ones((64, 64), np.int32))  # ours, under any name
    tifffile.imwrite(tmp_path / "cells_labels.tif", image)                     # the result of cells.tif
    tifffile.imwrite(tmp_path / "painted.tif", image)
    (tmp_path / "m.csv").write_text("image,detection,segmentation\nother.tif,painted.tif,\n")
    found = images_to_predict(tmp_path)
    assert [p.name for p in found.images] == ["cells.tif", "other.tif"]
    assert {p.name: why for p, why in found.left_out.items()} == {
        "cells_labels.tif": "the result of cells.tif", "old_result.tif": "a label image this tool wrote",
        "painted.tif": "a label file of m.csv"}
