"""A lock file that gives one run a folder (a model folder while it trains).

::

    with FolderLock("runs/my_model"):      # runs/.my_model.lock: {"pid", "host", "hostname", "started", ...}
        ...                                # a second FolderLock("runs/my_model") raises InUseError

The lock file sits beside the folder (in its parent), so it exists before the
folder does and survives the folder being replaced. It is created with
``O_EXCL`` (one winner) and holds the owner's process id and host. A lock
whose owner has ended (same host, process gone, or an earlier run of this
process that never released it) is taken over with a warning; a lock of
another host is never taken over, since its owner cannot be asked: the error
says which file to delete once that run is known to be gone.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..errors import InUseError, LazyLabelsError, warn
from .atomic import HOST_ID, pid_alive
from .jsonfile import read_json

__all__ = ["FolderLock", "LockOwner", "lock_path", "check_unlocked", "lock_owner"]

#: A lock file that cannot be read is taken for one being written for this long, then for abandoned.
UNREADABLE_GRACE_S = 30.0

# the tokens of the locks this process holds now
_HELD: set[str] = set()


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of folder ``path``: ``.NAME.lock`` in its parent."""
    path = Path(path).absolute()
    return path.parent / f".{path.name}.lock"


@dataclass(frozen=True)
class LockOwner:
    """Who holds a lock (as its file says)."""

    pid: int
    host: str
    hostname: str
    started: str
    token: str
    command: str = ""

    def describe(self) -> str:
        return f"pid {self.pid} on {self.hostname or self.host}, since {self.started}"


def lock_owner(lock: Path) -> LockOwner | None:
    """The owner recorded in lock file ``lock``; None when it is missing or cannot be read."""
    try:
        raw = read_json(lock, "a lock file")
        return LockOwner(pid=int(raw["pid"]), host=str(raw["host"]), hostname=str(raw.get("hostname", "")),
                         started=str(raw.get("started", "?")), token=str(raw["token"]),
                         command=str(raw.get("command", "")))
    except (LazyLabelsError, ValueError, KeyError, TypeError):
        return None


def _gone(owner: LockOwner | None, lock: Path) -> bool:
    """Whether the lock's owner has ended (so the lock may be taken over)."""
    if owner is None:
        try:
            return time.time() - lock.stat().st_mtime > UNREADABLE_GRACE_S
        except OSError:
            return True
    if owner.host != HOST_ID:
        return False
    if owner.pid == os.getpid():
        return owner.token not in _HELD
    return not pid_alive(owner.pid)


def _in_use(path: Path, lock: Path, owner: LockOwner | None) -> InUseError:
    if owner is None:
        return InUseError(f"is being locked by another run right now (lock file {lock})", source=str(path))
    elsewhere = owner.host != HOST_ID
    hint = (f"if that run is gone, delete {lock}" if elsewhere else
            f"wait for it to finish (or stop it); {lock} goes away with it")
    return InUseError(f"in use by another training run ({owner.describe()}); {hint}", source=str(path))


def check_unlocked(path: str | os.PathLike) -> None:
    """Refuse, before any work, a folder whose lock is held by a run that is still going.

    Raises:
        InUseError: naming the owner.
    """
    path = Path(path)
    lock = lock_path(path)
    if lock.exists():
        owner = lock_owner(lock)
        if not _gone(owner, lock):
            raise _in_use(path, lock, owner)


class FolderLock:
    """Hold ``path``'s lock file (see the module docstring); a context manager, or acquire()/release()."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.file = lock_path(self.path)
        self.token = uuid.uuid4().hex
        self.held = False

    def acquire(self) -> FolderLock:
        """Take the lock.

        Raises:
            InUseError: another run that is still going holds it.
        """
        self.file.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(10):
            try:
                fd = os.open(self.file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                self._take_over_if_gone()
                continue
            content = {"pid": os.getpid(), "host": HOST_ID, "hostname": socket.gethostname(),
                       "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "token": self.token, "command": " ".join(sys.argv[:1] + sys.argv[1:2])}
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(content) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            _HELD.add(self.token)
            self.held = True
            return self
        raise _in_use(self.path, self.file, lock_owner(self.file))

    def _take_over_if_gone(self) -> None:
        owner = lock_owner(self.file)
        if not _gone(owner, self.file):
            raise _in_use(self.path, self.file, owner)
        # move the stale lock aside first: of several runs taking it over at once, one moves it
        aside = self.file.with_name(f"{self.file.name}.stale-{self.token}")
        try:
            os.rename(self.file, aside)
        except FileNotFoundError:
            return
        moved = lock_owner(aside)
        if owner is not None and (moved is None or moved.token != owner.token):
            try:                       # a fresh lock was moved: put it back
                os.link(aside, self.file)
            except OSError:
                pass
        else:
            who = owner.describe() if owner is not None else "unreadable lock file"
            warn(f"took over the lock of a run that ended without releasing it ({who})", source=str(self.path))
        try:
            os.unlink(aside)
        except OSError:
            pass

    def release(self) -> None:
        """Give the lock back (only if the file is still this lock's)."""
        if not self.held:
            return
        self.held = False
        _HELD.discard(self.token)
        owner = lock_owner(self.file)
        if owner is not None and owner.token == self.token:
            try:
                os.unlink(self.file)
            except OSError:
                pass

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
