"""The second reading of labels that look wrong (engine/autolabel_halo.py): dark rods in bright halos, read
first as a mask over the whole image, are read again as dark objects cut apart at the bright lines between
them, one point per rod; labels that look right are never read again, and the setting turns it off."""

import numpy as np
import pytest
import tifffile

from colonies import rod_colony
from napari_lazylabels.cli.main import main
from napari_lazylabels.engine.autolabel import AutolabelConfig, autolabel, classical_instances
from napari_lazylabels.engine.autolabel_halo import cut_large, halo_reading, one_sided_threshold, without_lines
from napari_lazylabels.engine.autolabel_tiling import one_per_piece
from napari_lazylabels.engine.metrics import average_precision
from napari_lazylabels.engine.synthetic import make_image
from napari_lazylabels.errors import SettingsError
from napari_lazylabels.io.points import read_points_csv


def test_rods_in_a_halo_are_read_again_one_point_per_rod():
    img, rods = rod_colony()
    first = autolabel(img, AutolabelConfig(second_reading="off"))
    assert np.mean(first.foreground) > 0.95 and first.concerns()          # the halo taken for the objects
    again = autolabel(img)
    assert again.reading.halo and again.concerns() == []
    assert "read again as dark objects in bright halos" in again.describe()
    hit = rods[np.round(again.points[:, 0]).astype(int), np.round(again.points[:, 1]).astype(int)]
    assert sorted(hit.tolist()) == list(range(1, 7))                        # one point in each rod
    assert average_precision(classical_instances(again.points, again.foreground), rods) >= 0.9
    assert np.mean(again.foreground[rods == 0] > 0) < 0.01                   # no halo in the mask


def test_pieces_of_two_rods_are_cut_apart_end_to_end_or_side_by_side():
    pieces = np.zeros((150, 160), np.int32)
    for i, x in enumerate((10, 30, 50, 70)):                  # four single rods (10 x 40 px)
        pieces[10:50, x:x + 10] = i + 1
    pieces[60:140, 10:20] = 5                                 # two rods end to end: a dividing cell
    pieces[70:110, 100:120] = 6                               # two rods side by side
    cut = cut_large(pieces)
    assert cut.max() == 8 and np.array_equal(cut[pieces <= 4], pieces[pieces <= 4])
    ends = np.unique(cut[60:140, 10:20])
    assert len(ends) == 2 and set(np.unique(cut[60:100, 10:20])) == {5}          # cut across its length
    sides = np.unique(cut[70:110, 100:120])
    assert len(sides) == 2 and len(np.unique(cut[70:110, 100:110])) == 1         # cut along it
    points = one_per_piece(without_lines(cut), cut)
    assert len(points) == 8 and len(np.unique(cut[points[:, 0].astype(int), points[:, 1].astype(int)])) == 8
    assert np.array_equal(cut_large(pieces[:55]), pieces[:55])                  # all of one size: nothing cut


def test_what_the_user_set_is_never_read_again():
    img, _ = rod_colony()
    for given in (dict(polarity="dark"), dict(threshold="li"), dict(object_size=20.0)):
        labels = autolabel(img, AutolabelConfig(**given))
        assert not labels.reading.halo


def test_labels_that_look_right_are_not_read_again():
    for seed in (0, 1):
        im = make_image(seed, shape=(192, 192), density=0.15, touching=0.2).image
        on, off = autolabel(im), autolabel(im, AutolabelConfig(second_reading="off"))
        assert not on.reading.halo and np.array_equal(on.points, off.points)
        assert np.array_equal(on.foreground, off.foreground)


def test_the_threshold_is_taken_on_the_objects_side_and_lines_between_pieces_stay_out():
    values = np.concatenate([np.full(900, 0.5), np.linspace(0.55, 0.9, 60), np.linspace(0.0, 0.3, 40) * -1])
    t, method = one_sided_threshold(values)
    assert 0.5 < t < 0.9                                                     # not among the low values
    pieces = np.zeros((5, 8), np.int32)
    pieces[:, :4], pieces[:, 4:] = 1, 2
    kept = without_lines(pieces)
    assert not kept[:, 3].any() and not kept[:, 4].any() and kept[:, :3].all() and kept[:, 5:].all()
    flat = np.full((64, 64), 0.5)
    assert len(halo_reading(flat)[1]) == 0                                   # nothing to read: no point


def test_an_unknown_second_reading_is_a_settings_error_and_the_cli_says_it_read_again(tmp_path, capsys):
    with pytest.raises(SettingsError, match="second reading must be one of auto, off"):
        AutolabelConfig(second_reading="maybe")
    img, _ = rod_colony()
    path = tmp_path / "rods.tif"
    tifffile.imwrite(path, (img * 1000).astype(np.uint16))
    out = ["--points", str(tmp_path / "p.csv"), "--foreground", str(tmp_path / "m.tif"), "--overwrite"]
    assert main(["autolabel", "--image", str(path), *out]) == 0
    said = capsys.readouterr()
    assert "read again as dark objects in bright halos" in said.out and "warning" not in said.err
    assert len(read_points_csv(tmp_path / "p.csv", img.shape)) == 6
    assert main(["autolabel", "--image", str(path), *out, "--second-reading", "off"]) == 0
    said = capsys.readouterr()
    assert "read again" not in said.out and "warning:" in said.err
