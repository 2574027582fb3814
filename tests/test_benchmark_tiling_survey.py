"""benchmarks/tiling_survey.py: one record per frame of a set's folder (tiled or not, with the gap and the
cover the rule reads), skipped on a rerun, and a table per set."""

import json

import numpy as np
import tifffile
from scipy import ndimage as ndi

from benchmarks.harness.config import BenchConfig
from benchmarks.tiling_survey import main
from test_autolabel_tiling import membrane_section, separate_discs     # tests/ is on the path (rootdir import)


def _section():
    img, truth = membrane_section()      # Voronoi cells between thin dark membranes
    return (img * 1000).astype(np.uint16), truth.astype(np.uint16)


def _discs():
    img = separate_discs()              # 16 bright discs apart on a dark background
    return (img * 1000).astype(np.uint16), ndi.label(img > 0.5)[0].astype(np.uint16)


def test_the_survey_records_each_frame_once_and_tells_tiled_from_separate(tmp_path, capsys):
    for name, (img, truth) in (("walls", _section()), ("discs", _discs())):
        (tmp_path / "em").mkdir(exist_ok=True)
        tifffile.imwrite(tmp_path / "em" / f"{name}_image.tif", img)
        tifffile.imwrite(tmp_path / "em" / f"{name}_labels.tif", truth)
    results = tmp_path / "survey.jsonl"
    config = BenchConfig(data_dirs=(tmp_path,))
    assert main(["--datasets", "em", "--results", str(results)], config) == 0
    recs = {r["frame"]: r for r in map(json.loads, results.read_text().splitlines())}
    assert recs["walls"]["tiled"] and not recs["discs"]["tiled"]
    assert recs["walls"]["gap"] < recs["discs"]["gap"] and recs["walls"]["cover"] > 0.45 > recs["discs"]["cover"]
    assert recs["walls"]["classical_ap50"] > 0.9
    assert main(["--datasets", "em", "--results", str(results)], config) == 0     # nothing new
    assert len(results.read_text().splitlines()) == 2
    assert "| em | 2 | 1 |" in capsys.readouterr().out
