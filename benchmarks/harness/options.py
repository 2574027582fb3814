"""Command-line options every suite shares, and the log every suite writes."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from benchmarks.harness.config import BenchConfig


def suite_options(ap: argparse.ArgumentParser, threads_help: str = "torch threads (default 1)") -> None:
    """--threads, --results, --merge, --no-docs, --report-only."""
    ap.add_argument("--threads", type=int, default=1, help=threads_help)
    ap.add_argument("--results", type=Path, default=None,
                    help="folder of the results files (default benchmarks/results)")
    ap.add_argument("--merge", type=Path, nargs="*", default=[],
                    help="more results files of the same format for the report (e.g. records made on a "
                         "lent GPU); the run's own file wins where both hold a key")
    ap.add_argument("--no-docs", action="store_true", help="do not write docs/ (tables and figures)")
    ap.add_argument("--report-only", action="store_true", help="rewrite the tables and figures from the results")


def kept_model_options(ap: argparse.ArgumentParser, datasets: list[str], seeds: list[int], results: Path) -> None:
    """--models, --datasets, --seeds, --results of a command that scores the models a points-suite run kept
    (``benchmarks.suites.points.kept_machine_models``)."""
    ap.add_argument("--models", type=Path, help="the --models folder of a points-suite run")
    ap.add_argument("--datasets", nargs="*", default=datasets)
    ap.add_argument("--seeds", type=int, nargs="*", default=seeds)
    ap.add_argument("--results", type=Path, default=results)


def stopwatch(threads: int) -> Callable[[str], None]:
    """Set the torch threads and return a logger that stamps each line with the seconds since now."""
    torch.set_num_threads(max(1, threads))
    start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - start:7.0f} s] {msg}", file=sys.stderr, flush=True)
    return log


@dataclass
class SuiteStart:
    """What a suite of its own results file starts from: its places, budget, results file, command, log."""

    config: BenchConfig
    budget: Any
    path: Path
    command: str
    log: Callable[[str], None]


def start_suite(args: argparse.Namespace, config: BenchConfig | None, suite: str, mode: str, budgets: dict,
                argv: list[str] | None) -> SuiteStart:
    """The start of the fgbg and points suites: the places (``--results`` over ``config``), the mode's
    budget (``--steps`` over it), ``<suite>_<mode>.jsonl``, the command line, the log."""
    config = (config or BenchConfig()).with_results(args.results)
    budget = budgets[mode] if args.steps is None else replace(budgets[mode], steps=args.steps)
    command = " ".join([f"python benchmarks/accuracy.py --suite {suite}", *(sys.argv[1:] if argv is None else argv)])
    return SuiteStart(config, budget, config.results / f"{suite}_{mode}.jsonl", command, stopwatch(args.threads))
