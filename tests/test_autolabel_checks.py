"""Warnings about machine-made labels that look wrong (engine/autolabel_checks.py): a mask over almost the
whole image (the halo of a phase-contrast colony), a single point for the size read; sound labels give
none, and the CLI prints them while still writing its outputs."""

import numpy as np
import tifffile

from colonies import halo_colony
from napari_lazylabels.cli.main import main
from napari_lazylabels.engine.autolabel import AutolabelConfig, autolabel
from napari_lazylabels.engine.autolabel_checks import FULL_COVER, concerns
from napari_lazylabels.engine.synthetic import make_image


def test_a_mask_over_almost_the_whole_image_is_warned_about():
    full = np.ones((100, 100), np.uint8)
    full[:3] = 0                                                 # 97 % foreground
    (text,) = concerns(full, 40, 10.0)
    assert "covers 97 % of the image" in text and "polarity or the threshold" in text
    half = np.zeros((100, 100), np.uint8)
    half[:, :50] = 1
    assert concerns(half, 40, 10.0) == []
    edge = np.ones((100, 100), np.uint8)
    edge.ravel()[: int(round((1 - FULL_COVER) * edge.size)) + 1] = 0          # just under the limit
    assert concerns(edge, 40, 10.0) == []


def test_a_single_point_is_warned_about_only_where_there_is_room_for_many():
    mask = np.zeros((512, 512), np.uint8)
    mask[200:300, 200:300] = 1
    (text,) = concerns(mask, 1, 40.0)                            # room for ~210 objects of 40 px
    assert text.startswith("only 1 point for objects read as 40 px across") and "object size" in text
    assert concerns(mask, 2, 40.0) == []                         # two: a small image may hold two nuclei
    assert concerns(mask[:100, :100], 1, 40.0) == []             # a small image: one object may be all
    assert concerns(mask, 1, None) == []                         # no size known


def test_the_halo_of_a_colony_is_warned_about_and_sound_labels_are_not():
    bad = autolabel(halo_colony(), AutolabelConfig(second_reading="off"))     # the first reading, as it was
    assert np.mean(bad.foreground) >= FULL_COVER                 # the failure the warning is for
    assert any("covers" in c for c in bad.concerns())
    for seed in (0, 1):
        im = make_image(seed, shape=(192, 192), density=0.15, touching=0.2)
        assert autolabel(im.image).concerns() == []
    dark = dict(polarity="dark", threshold="fixed", threshold_value=0.35, second_reading="off")
    thresholded = autolabel(halo_colony(), AutolabelConfig(**dark))           # the mask right, the size still
    assert 0.01 < np.mean(thresholded.foreground) < 0.2                       # read as the cluster's
    assert [c[:12] for c in thresholded.concerns()] == ["only 1 point"]
    sized = autolabel(halo_colony(), AutolabelConfig(**dark, object_size=16))
    assert len(sized.points) >= 3 and sized.concerns() == []


def test_cli_autolabel_prints_the_warning_and_still_writes_the_labels(tmp_path, capsys):
    path = tmp_path / "colony.tif"
    tifffile.imwrite(path, (halo_colony() * 1000).astype(np.uint16))
    pts, mask = tmp_path / "p.csv", tmp_path / "m.tif"
    assert main(["autolabel", "--image", str(path), "--points", str(pts), "--foreground", str(mask),
                 "--second-reading", "off"]) == 0
    said = capsys.readouterr()
    assert f"warning: {path}: the mask covers" in said.err
    assert f"{path}: 1 point, foreground" in said.out                 # one point, in the singular
    assert pts.exists() and tifffile.imread(mask).mean() >= FULL_COVER
