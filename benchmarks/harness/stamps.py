"""What a record says about where and when it was made: the machine, the commit, the date."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

import torch


def machine() -> str:
    """Cores and CPU model, torch threads and version, Python version."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({cpu}), {torch.get_num_threads()} torch thread(s), "
            f"torch {torch.__version__}, Python {platform.python_version()}")


def git_commit(root: Path) -> str:
    """The short commit of the checkout at ``root`` ("" outside git)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def load_average() -> float:
    return round(os.getloadavg()[0], 2)
