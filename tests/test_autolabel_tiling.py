"""Objects that tile the image (engine/autolabel_tiling.py): when the background is a thin network between
the mask's pieces (an EM section's membranes), each piece is one object and takes one point; an image of
separate objects keeps its blob points, and the setting can force either way."""

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi
from skimage.draw import disk

from napari_lazylabels.cli.main import main
from napari_lazylabels.engine.autolabel import AutolabelConfig, autolabel, classical_instances
from napari_lazylabels.engine.autolabel_tiling import background_gap, one_per_piece, tiles_image
from napari_lazylabels.engine.metrics import average_precision
from napari_lazylabels.errors import SettingsError
from napari_lazylabels.io.points import read_points_csv


def membrane_section(size: int = 192, cells: int = 36, seed: int = 0):
    """Voronoi cells (bright, with dark organelles inside) between dark membranes 3 px wide, and the cells."""
    rng = np.random.default_rng(seed)
    side = int(np.sqrt(cells))
    step = size / side
    centres = np.array([((i + 0.5) * step + rng.uniform(-0.2, 0.2) * step,
                         (j + 0.5) * step + rng.uniform(-0.2, 0.2) * step) for i in range(side) for j in range(side)])
    yy, xx = np.mgrid[:size, :size]
    d = np.stack([np.hypot(yy - cy, xx - cx) for cy, cx in centres])
    owner = d.argmin(0)
    edge = ndi.maximum_filter(owner, 3) != ndi.minimum_filter(owner, 3)
    img = np.full((size, size), 0.8)
    img[edge] = 0.1
    for cy, cx in centres:        # organelles: dark specks that make blobs of the bright rest
        for _ in range(5):
            sy, sx = rng.uniform(-0.3, 0.3, 2) * step
            rr, cc = disk((cy + sy, cx + sx), 2.5, shape=img.shape)
            img[rr, cc] = 0.45
    truth = np.where(edge, 0, owner + 1)
    return img + rng.normal(0, 0.01, img.shape), truth


def separate_discs(size: int = 192, seed: int = 1):
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 0.1)
    for y in range(24, size, 48):
        for x in range(24, size, 48):
            rr, cc = disk((y, x), 12, shape=img.shape)
            img[rr, cc] = 0.9
    return img + rng.normal(0, 0.01, img.shape)


def test_a_membrane_section_tiles_and_separate_objects_do_not():
    img, truth = membrane_section()
    assert tiles_image(truth > 0, 32.0)
    assert not tiles_image(separate_discs() > 0.5, 24.0)
    # a mask that covers almost everything (a failed threshold) is no tiling, nor is a single piece
    assert not tiles_image(np.ones((64, 64), bool), 10.0)
    one = np.ones((64, 64), bool)
    one[::8] = False
    one[:, 0] = True         # the stripes joined at the left: a single piece
    assert not tiles_image(one, 30.0)
    few = np.ones((64, 64), bool)
    few[::16] = few[1::16] = False     # lines 2 px wide: a thin background, but four pieces are a tissue
    assert ndi.label(few)[1] == 4 and not tiles_image(few, 30.0)
    few[40:42] = False                 # five pieces
    assert tiles_image(few, 30.0)
    assert background_gap(np.zeros((8, 8), bool)) == float("inf")


def test_one_point_per_piece_at_its_deepest_pixel():
    mask = np.zeros((40, 80), bool)
    for x in (20, 60):
        rr, cc = disk((20, x), 12, shape=mask.shape)
        mask[rr, cc] = True
    pts = one_per_piece(mask)
    assert pts.shape == (2, 3) and np.all(pts[:, 2] == 1)
    assert {(int(y), int(x)) for y, x, _ in pts} == {(20, 20), (20, 60)}
    assert one_per_piece(np.zeros((5, 5), bool)).shape == (0, 3)
    # pieces that touch only at a corner (a membrane one pixel wide, cut diagonally) are two cells
    corner = np.zeros((10, 10), bool)
    corner[:5, :5] = corner[5:, 5:] = True
    assert len(one_per_piece(corner)) == 2


def test_a_section_of_textured_cells_takes_one_point_per_cell():
    img, truth = membrane_section()
    tiled = autolabel(img)
    assert tiled.reading.tiled and "objects tile the image" in tiled.describe()
    pix = np.floor(tiled.points[:, :2] + 0.5).astype(int)
    hit = truth[pix[:, 0], pix[:, 1]]
    n_cells = len(np.unique(truth)) - 1
    assert np.all(hit > 0)                                  # every point in a cell
    assert len(np.unique(hit)) >= 0.9 * n_cells and len(hit) <= 1.1 * n_cells     # about one each
    blobs = autolabel(img, AutolabelConfig(tiling="off"))
    assert not blobs.reading.tiled
    ap_tiled = average_precision(classical_instances(tiled.points, tiled.foreground), truth)
    ap_blobs = average_precision(classical_instances(blobs.points, blobs.foreground), truth)
    assert ap_tiled >= 0.9 and ap_tiled > ap_blobs


def test_separate_objects_keep_their_blob_points_unless_tiling_is_forced():
    img = separate_discs()
    auto = autolabel(img)
    assert not auto.reading.tiled and len(auto.points) == 16
    assert np.array_equal(auto.points, autolabel(img, AutolabelConfig(tiling="off")).points)
    forced = autolabel(img, AutolabelConfig(tiling="on"))
    assert forced.reading.tiled and len(forced.points) == 16


def test_an_unknown_tiling_setting_is_a_settings_error():
    with pytest.raises(SettingsError, match="tiling must be one of auto, on, off"):
        AutolabelConfig(tiling="maybe")


def test_cli_autolabel_says_when_the_objects_tile_and_takes_the_setting(tmp_path, capsys):
    img, _ = membrane_section()
    path = tmp_path / "section.tif"
    tifffile.imwrite(path, (img * 1000).astype(np.uint16))
    out = ["--points", str(tmp_path / "p.csv"), "--foreground", str(tmp_path / "m.tif"), "--overwrite"]
    assert main(["autolabel", "--image", str(path), *out]) == 0
    assert "objects tile the image: one point per piece of the mask" in capsys.readouterr().out
    tiled = read_points_csv(tmp_path / "p.csv", img.shape)
    assert main(["autolabel", "--image", str(path), *out, "--tiling", "off"]) == 0
    assert "objects tile the image" not in capsys.readouterr().out
    assert not np.array_equal(read_points_csv(tmp_path / "p.csv", img.shape), tiled)
    with pytest.raises(SystemExit):
        main(["autolabel", "--image", str(path), *out, "--tiling", "maybe"])
    assert "invalid choice: 'maybe'" in capsys.readouterr().err
