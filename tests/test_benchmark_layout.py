"""The benchmarks' structure: layers and no import cycle (benchmarks/importlinter.toml), the package
never importing them, small modules, and the entry points that docs/benchmarks.md and
../shared/tools/device_sweep.sh call."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from benchmark_support import ROOT, config_in

from benchmarks import cli


def test_the_benchmark_imports_keep_their_contracts():
    lint = shutil.which("lint-imports", path=str(ROOT / ".venv" / "bin")) or shutil.which("lint-imports")
    if lint is None:
        pytest.skip("import-linter is not installed")
    out = subprocess.run([lint, "--no-logo", "--no-cache", "benchmarks/importlinter.toml"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout and "No import cycles in the benchmarks" in out.stdout


def test_no_benchmark_module_is_over_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "benchmarks").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 500}
    assert not long


def test_the_script_entry_point_runs_from_any_folder(tmp_path):
    """`python benchmarks/accuracy.py` (the command of the docs and of device_sweep.sh) lists a queue
    with only the package on the path."""
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "accuracy.py"), "--list", "--datasets", "he",
                          "--methods", "mt", "cp", "--seeds", "0", "--ratios", "0.1", "--results", str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT / "src"),
                                                                             "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["to do he/mt/0.1/s0/default/800x8x128r10",
                                       "to do he/cp/1/s0/default/800x8x128r10"]


@pytest.mark.parametrize("suite", ["fgbg", "points"])
def test_the_other_suites_report_from_their_results_file(tmp_path, suite):
    config = config_in(tmp_path)
    assert cli.main(["--suite", suite, "--report-only", "--no-docs"], config) == 0
    assert cli.main(["--suite", suite, "--report-only"], config) == 0
    assert not config.docs_file.exists()                       # no records: nothing to write


def test_the_plateau_suite_needs_its_milestones():
    with pytest.raises(SystemExit, match="--milestones"):
        cli.main(["--suite", "plateau"])
