"""The lazy suite: lazy labels against every baseline of METHOD section 8, and against a peer tool, on
easy and hard images.

    python benchmarks/accuracy.py --threads 1           # the full run: resumable, hours on 2 CPU cores
    python benchmarks/accuracy.py --quick               # about 10-15 min on 2 CPU cores
    python benchmarks/accuracy.py --report-only         # tables and figures from the results file
    python benchmarks/accuracy.py --methods full cp --datasets he --seeds 0    # the peer beside ours
    python benchmarks/accuracy.py --milestones 400 800 1600 --datasets he --methods full   # a plateau

Our methods, all with the same network size (the ``cpu`` preset: a plain U-Net for the single-task
baselines, the multi-task U-Net otherwise), the same training settings and the same number of steps,
on the same images:

    wl        single-task U-Net trained on the blobs as if they were masks
    sl        single-task U-Net trained on the few strong masks only
    pl        single-task U-Net on GrabCut pseudo-masks drafted from every blob
              (the strong masks where an image has them)
    mt        multi-task U-Net on lazy labels: blobs + interface scribbles on
              every image, strong masks on a few
    mtr       mt plus the recursive approximation task (Ke et al. 2021), final
              growth at inference
    full      full supervision, what a user tracing every object gives: the same
              multi-task U-Net with every label the traced instances give (exact
              masks on every image, the blobs and interfaces made from them)
    fullst    the single-task U-Net on the exact masks of every image (foreground
              only; the old upper bound, a reference row)

The peers (on request: ``--methods ... cp cp10``; they need ``bash scripts/setup_peer.sh``), Cellpose 3
trained from scratch through its own code (``suites/peer_cellpose.py``), for the training wall time of
our ``full`` on the same set, seed, budget and device (or ``--peer-seconds/--peer-steps/--peer-epochs``):

    cp        every exact mask of the training tiles
    cp10      the strong tiles only, at the run's ratio (the same tiles as mt and sl)

Every run of ours trains through the one training recipe (``napari_lazylabels.recipes.train``); the
regimes are found in the registry by the role of their head (``harness/regimes.py``). Data and splits:
``harness/data.py``. Scoring (one ``score`` for ours and the peers): ``suites/scoring.py``; our models
are also scored with test-time flips and, the multi-task ones, with instance settings tuned on their
own strong training images (never on test data).

Resumable: every finished run is one JSON line of ``benchmarks/results/accuracy_<mode>.jsonl`` (its
key: data set, method, ratio, training seed, variant and budget); a rerun skips what is there (a
killed run loses the setting it was in). After each run the tables of docs/benchmarks.md (the block
between the mode's markers) and the figures are rewritten from that file (``--merge`` adds records of
other files, e.g. made on a lent GPU). ``--variant`` runs a method change (``harness.methods.VARIANTS``)
under its own name. ``--milestones`` runs the plateau suite (``suites/plateau.py``) instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.harness.config import BenchConfig
from benchmarks.harness.data import HARD, Dataset
from benchmarks.harness.lazy_sets import dataset_name, load, test_sets
from benchmarks.harness.methods import DEFAULT_METHODS, METHODS, MODES, PEER_METHODS, VARIANTS, Mode, run_key
from benchmarks.harness.options import stopwatch, suite_options
from benchmarks.harness.queue import Job, queue, strong_of
from benchmarks.harness.results import append_record, done_keys, prediction_file, read_results, write_csv
from benchmarks.harness.stamps import git_commit, machine, now
from benchmarks.report.figures import overlay_window
from benchmarks.report.lazy_block import report
from benchmarks.report.plateau import report as plateau_report
from benchmarks.report.tables import peer_targets, targets
from benchmarks.suites import ours, peer, plateau
from benchmarks.suites.peer_cellpose import require_cellpose


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="accuracy.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", choices=("lazy",), default="lazy", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true",
                    help="synthetic (40 images), HeLa and E. coli, 200 steps of batch 4 x 64 px, 3 rounds, every "
                         "method at 10 %% strong labels plus a multi-task ratio sweep on synthetic data; about "
                         "10-15 min on 2 CPU cores. Without it: phase, em, he, synthetic and HeLa at the training "
                         "defaults (800 steps of batch 8 x 128 px), 10 rounds, every ratio (2.5, 5, 10, 100 %%), "
                         "three training seeds at 10 %% and full supervision: many hours on 2 CPU cores")
    ap.add_argument("--datasets", nargs="*", choices=("synthetic", "hela", "ecoli", *HARD), default=None)
    ap.add_argument("--methods", nargs="*", choices=METHODS, default=None,
                    help="default: ours (" + " ".join(DEFAULT_METHODS) + "); the peers cp and cp10 on request")
    ap.add_argument("--ratios", nargs="*", type=float, default=None, help="only these strong-label ratios")
    ap.add_argument("--seeds", nargs="*", type=int, default=None,
                    help="training seeds of the settings the targets compare (default: the mode's)")
    ap.add_argument("--variant", choices=tuple(VARIANTS), default="default",
                    help="a method change of ours to measure (harness/methods.py VARIANTS)")
    ap.add_argument("--steps", type=int, default=None, help="override the steps of the mode (a probe budget)")
    ap.add_argument("--rounds", type=int, default=None, help="override the recursive rounds of the mode")
    ap.add_argument("--device", default="cpu", choices=("cpu", "auto", "cuda", "mps"),
                    help="where to train and predict (default cpu; auto: a GPU when there is one). The device "
                         "is recorded with each run; the budget is the same")
    ap.add_argument("--max-runs", type=int, default=None, help="stop after this many runs")
    ap.add_argument("--no-flips", action="store_true", help="do not score our models with test-time flips too")
    ap.add_argument("--list", action="store_true", help="print the queue (done or to do) and exit")
    peer_budget = ap.add_mutually_exclusive_group()
    peer_budget.add_argument("--peer-seconds", type=float, default=None,
                             help="the peer's training wall time (default: our full run's train_s, same set, "
                                  "seed, budget and device, from the results)")
    peer_budget.add_argument("--peer-steps", type=int, default=None,
                             help="a fixed step budget for the peer (rounded up to whole epochs)")
    peer_budget.add_argument("--peer-epochs", type=int, default=None, help="a fixed epoch budget for the peer")
    ap.add_argument("--milestones", nargs="+", type=int, default=None,
                    help="the plateau suite: one run per setting to the largest milestone, scored at each "
                         "(plateau_<mode>.jsonl)")
    suite_options(ap, "torch threads (default 1: on a 2-core machine shared with other work one thread trained "
                      "3x faster than two; use 2 on an idle machine)")
    return ap


def main(argv=None, config: BenchConfig | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    config = (config or BenchConfig()).with_results(args.results)
    mode = MODES["quick" if args.quick else "full"]
    mode = replace(mode, steps=args.steps or mode.steps, rounds=args.rounds or mode.rounds, device=args.device)
    families = list(args.datasets or mode.datasets)
    methods = list(args.methods or DEFAULT_METHODS)
    log = stopwatch(args.threads)
    if args.milestones:
        return run_plateau(args, mode, families, methods, config, log)
    path = config.results / f"accuracy_{mode.name}.jsonl"
    merged = list(args.merge)
    report_mode = MODES[mode.name]      # the tables and figures are of the mode's own budget
    doc_command = "python benchmarks/accuracy.py" + (" --quick" if args.quick else "") + \
        "".join(f" --merge {m}" for m in merged)
    if args.report_only:
        if not args.no_docs:
            records = read_results(path, *merged)
            report(records, report_mode, doc_command, config, test_sets(records, report_mode, config),
                   [str(m) for m in merged])
        return 0
    budget, peer_variant = peer.given_budget(args.peer_seconds, args.peer_steps, args.peer_epochs)
    if any(m in PEER_METHODS for m in methods):
        if args.variant != "default":
            raise SystemExit("--variant changes our methods; the peers (cp, cp10) have none")
        if not args.list:
            require_cellpose()
    datasets: dict[str, Dataset] = {}

    def load_once(fam: str) -> Dataset:
        if fam not in datasets:
            datasets[fam] = load(fam, mode, pseudo="pl" in methods, config=config)
            log(f"data ready: {datasets[fam].name} ({len(datasets[fam].train)} training images, "
                f"{len(datasets[fam].test)} test)")
        return datasets[fam]

    def run(method: str, ds: Dataset, ratio: float, seed: int, variant: str) -> dict:
        if method not in PEER_METHODS:
            return ours.run_one(method, ds, ratio, mode, log, seed, variant, tta=not args.no_flips)
        given, source = (budget, "given") if budget else peer.time_of_full(ds, seed, mode, [path, *merged])
        return peer.run_one(method, ds, ratio, mode, log, seed, given, variant, source)

    def after_each(records: list[dict]) -> None:
        write_csv(path.with_suffix(".csv"), records)
        if not args.no_docs:
            report(read_results(path, *merged), report_mode, doc_command, config, datasets, [str(m) for m in merged])

    todo = queue(mode, families, methods, args.seeds, args.ratios)
    n_run = run_queue(todo, mode, path, config, load_once, run, log, args.variant, peer_variant,
                      max_runs=args.max_runs, list_only=args.list, after_each=after_each)
    if args.list:
        return 0
    records = [r for r in read_results(path) if r.get("variant", "default") == "default" and
               r.get("budget") == report_mode.budget]
    for line in targets(records, families, report_mode.budget) + peer_targets(records, families, report_mode.budget):
        print(line)
    log(f"done: {n_run} runs")
    return 0


def run_queue(todo: list[Job], mode: Mode, path: Path, config: BenchConfig, load: Callable[[str], Dataset],
              run: Callable[..., dict], log: Callable[[str], None], variant: str = "default",
              peer_variant: str = "default", *, key_suffix: str = "", max_runs: int | None = None,
              list_only: bool = False, after_each: Callable[[list[dict]], None] | None = None) -> int:
    """Run the jobs of ``todo`` not yet in the results file ``path`` (``run(method, dataset, ratio, seed,
    variant)`` -> a record, ``load(family)`` -> its data set); each record is appended with its stamps
    and the overlay crop of its first prediction (``_predictions``, when it has them) is kept in the
    cache. A run's key is the lazy suite's key plus ``key_suffix``. Returns the number of runs."""
    done = done_keys(path)
    n_run, seen = 0, set()
    for fam, method, ratio, seed in todo:
        v = peer_variant if method in PEER_METHODS else variant
        key = run_key(dataset_name(fam, mode), method, ratio, seed, v, mode.budget) + key_suffix
        if list_only:
            print(("done  " if key in done else "to do ") + key)
            continue
        if key in done or key in done_keys(path):     # the second: another worker on the file did it meanwhile
            continue
        if max_runs is not None and n_run >= max_runs:
            break
        ds = load(fam)
        same = (ds.name, method, frozenset(strong_of(method, ds, ratio)), seed)
        if same in seen:
            log(f"{key}: the same strong images as a ratio already run; skipped")
            continue
        seen.add(same)
        record = run(method, ds, ratio, seed, v)
        predictions = record.pop("_predictions", None)
        if predictions:
            f = prediction_file(config.cache, mode.name, record["key"])
            f.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(f, instances=predictions[0][overlay_window(ds.test[0][2])].astype(np.int32))
        record.update(split=ds.split, machine=machine(), commit=git_commit(config.root), date=now())
        append_record(path, record)
        n_run += 1
        if after_each is not None:
            after_each(read_results(path))
    return n_run


def run_plateau(args, mode: Mode, families: list[str], methods: list[str], config: BenchConfig, log) -> int:
    """The plateau suite (``--milestones``): one run per setting to the largest milestone, its own results
    file (``plateau_<mode>.jsonl``) and docs block."""
    milestones = tuple(sorted(set(args.milestones)))
    name = mode.name
    mode = replace(mode, steps=max(milestones))
    path = config.results / f"plateau_{name}.jsonl"
    command = "python benchmarks/accuracy.py --milestones " + " ".join(map(str, milestones))
    if not args.report_only:
        if any(m in PEER_METHODS for m in methods) and not args.list:
            require_cellpose()
        datasets: dict[str, Dataset] = {}

        def run(method, ds, ratio, seed, variant):
            if method in PEER_METHODS:
                return plateau.run_peer(method, ds, ratio, mode, log, seed, milestones)
            return plateau.run_ours(method, ds, ratio, mode, log, seed, milestones, variant)

        def load_once(fam):
            if fam not in datasets:
                datasets[fam] = load(fam, mode, pseudo="pl" in methods, config=config)
            return datasets[fam]

        run_queue(queue(mode, families, methods, args.seeds, args.ratios), mode, path, config, load_once, run, log,
                  args.variant, key_suffix=plateau.plateau_key("", milestones), max_runs=args.max_runs,
                  list_only=args.list)
    if not args.no_docs and not args.list:
        plateau_report(read_results(path, *args.merge), name, command, config.docs_file, config.img_dir)
    return 0
