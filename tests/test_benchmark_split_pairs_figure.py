"""The picture of what ``--split-pairs`` does (benchmarks/split_pairs_figure.py): each split part loses its
one point for two, on nuclei, and the figure is written."""

import numpy as np

from benchmarks.split_pairs_figure import changed_points, draw
from napari_lazylabels.engine.synthetic import make_image


def test_each_split_part_trades_its_point_for_two_on_nuclei():
    frame = make_image(900, (256, 256), touching=0.3)      # the first training frame of the points suite
    kept, lost, added, split = changed_points(frame.image, "synthetic")
    assert split and len(lost) >= 1 and len(added) - len(lost) >= len(lost)     # one point more per split part
    assert not any(np.allclose(a[:2], k[:2]) for a in added for k in kept)
    pix = np.floor(added[:, :2] + 0.5).astype(int)
    assert np.all(frame.instances[pix[:, 0], pix[:, 1]] > 0)


def test_the_figure_is_written(tmp_path):
    out = draw(tmp_path / "split.png", sets=("synthetic",))
    assert out.stat().st_size > 10_000
