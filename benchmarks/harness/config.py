"""Where a benchmark run reads and writes: one typed value, made once at the entry point and passed in.

Nothing in the package reads these places from module globals, so a test (or a second checkout) passes
its own :class:`BenchConfig` instead of patching anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

#: The checkout this package sits in.
REPO = Path(__file__).resolve().parents[2]


def _data_dirs(root: Path) -> tuple[Path, ...]:
    """$LAZYLABELS_DATA, then ../shared/data beside the checkout (or beside the folder of a git worktree)."""
    env = os.environ.get("LAZYLABELS_DATA")
    return tuple(Path(p) for p in filter(None, [env])) + (root.parent / "shared" / "data",
                                                           root.parents[1] / "shared" / "data")


def _cache() -> Path:
    return Path(os.environ.get("LAZYLABELS_CACHE", Path.home() / ".cache" / "napari-lazylabels-benchmarks"))


@dataclass(frozen=True)
class BenchConfig:
    """The places of one benchmark run.

    ``root``: the checkout (git commit stamps); ``results``: the folder of the JSON-lines results;
    ``docs_file``: the Markdown file whose marked blocks the reports rewrite; ``img_dir``: its figures;
    ``cache``: GrabCut pseudo-masks and overlay crops ($LAZYLABELS_CACHE); ``data_dirs``: where the real
    sets may be, the first that exists is used ($LAZYLABELS_DATA first).
    """

    root: Path = REPO
    results: Path = field(default=REPO / "benchmarks" / "results")
    docs_file: Path = field(default=REPO / "docs" / "benchmarks.md")
    img_dir: Path = field(default=REPO / "docs" / "img")
    cache: Path = field(default_factory=_cache)
    data_dirs: tuple[Path, ...] = field(default_factory=lambda: _data_dirs(REPO))

    def data_dir(self) -> Path:
        """The first folder of :attr:`data_dirs` that exists (one clear line when none does)."""
        found = next((d for d in self.data_dirs if d.is_dir()), None)
        if found is None:
            raise SystemExit(f"no real data in {' or '.join(map(str, self.data_dirs))}")
        return found

    def with_results(self, results: Path | None) -> "BenchConfig":
        return self if results is None else replace(self, results=Path(results))
