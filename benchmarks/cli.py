"""The benchmarks' one entry point: ``python -m benchmarks [--suite lazy|fgbg|points|plateau] ...``
(``python benchmarks/accuracy.py ...`` is the same command).

    lazy     lazy labels against the baselines and the peer (the default; suites/lazy.py)
    fgbg     fg/bg scribbles with and without the mixture loss (suites/fgbg.py)
    points   points + a foreground mask, clicked or machine-made (suites/points.py)
    plateau  accuracy at milestones of one run (``--milestones``; the lazy suite's options)
"""

from __future__ import annotations

import argparse
import sys

from benchmarks.harness.config import BenchConfig
from benchmarks.suites import fgbg, lazy, points

SUITES = {"lazy": lazy.main, "fgbg": fgbg.main, "points": points.main}


def main(argv=None, config: BenchConfig | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--suite", choices=(*SUITES, "plateau"), default="lazy")
    known, rest = pre.parse_known_args(argv)
    if known.suite == "plateau":
        if "--milestones" not in rest:
            raise SystemExit("--suite plateau needs --milestones STEPS ... (e.g. --milestones 400 800 1600)")
        return lazy.main(rest, config)
    if known.suite == "lazy" and any(a in ("-h", "--help") for a in rest):
        print(__doc__)
    return SUITES[known.suite](rest, config)
