"""Write files and folders so that a crash never leaves half an output behind.

Every output of the engine (label TIFFs, manifests, OME-Zarr stores, projects,
model folders) goes through these helpers:

* the target is refused up front, before any work, when it exists and
  ``overwrite`` is false (:func:`check_writable`); :func:`check_can_write`
  also makes sure its folder can be written and has room for it;
* the content is written to a hidden temporary sibling of the target (same
  folder, hence same file system) and renamed into place only once complete;
* on any exception the temporary is removed and an existing target is left
  exactly as it was;
* what is written gets the permissions the process umask gives (0644 files,
  0755 folders under umask 022), whichever library wrote it.

A folder is replaced in three renames, each atomic::

    .NAME.tmp-ID   (being written)  ->  .NAME.new-ID   (complete)
    NAME                            ->  .NAME.old-ID   (the previous content, if any)
    .NAME.new-ID                    ->  NAME           (then .NAME.old-ID is deleted)

``ID`` is ``<pid>-<host>-<random>``, the writer's process id and a hash of its
host name. A process killed in between leaves these hidden siblings; the next
access to ``NAME`` (:func:`recover`: a load, a save, a check) puts the complete
content back in place when ``NAME`` is missing (``.NAME.new-*`` first, else
``.NAME.old-*``) and deletes the leftovers of writers that are gone (same
host, process ended; another host's after :data:`STALE_AFTER_S`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from ..errors import OutputError, OutputExistsError, warn

__all__ = ["check_writable", "check_can_write", "check_not_current_folder", "atomic_write_file",
           "atomic_write_dir", "recover", "scratch_dir", "write_error", "process_umask", "pid_alive", "HOST_ID",
           "size_text"]

#: A hash of this machine's host name (leftover names and lock files carry it).
HOST_ID = hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]
#: Leftovers written on another host are taken for abandoned after this long (their writer cannot be asked).
STALE_AFTER_S = 3600.0
#: Room kept free beyond an output's estimated size.
SPARE_BYTES = 1 << 20

# leftovers of a write to NAME: ".NAME." + one of these (pid and host missing: an earlier version's)
_LEFTOVER = re.compile(r"(?P<kind>tmp|new|old)-(?:(?P<pid>\d+)-(?P<host>[0-9a-f]{8})-)?(?P<id>[A-Za-z0-9_]+)"
                       r"(?:\..*)?")
# the random parts of the writes this process has in progress (its own leftovers are those not in it)
_ACTIVE: set[str] = set()
_UMASK_LOCK = threading.Lock()


def check_writable(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse an existing ``path`` unless ``overwrite``; return it as a Path.

    An interrupted earlier write of ``path`` is recovered first (:func:`recover`).

    Raises:
        OutputExistsError: ``path`` exists (file, folder or link) and
            ``overwrite`` is false.
    """
    path = Path(path)
    recover(path)
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise OutputExistsError("output exists; pass --overwrite to replace it", source=str(path))
    return path


def check_not_current_folder(path: str | os.PathLike) -> Path:
    """Refuse a target that is the current folder or one of the folders above it (``--model .``)."""
    path = Path(path)
    target, here = path.absolute(), Path.cwd()
    if target.name in ("", ".", "..") or target.resolve() in (here, *here.parents):
        raise OutputError("is the current folder (or holds it); name a new folder inside it",
                          source=str(path))
    return path


def _existing_folder(path: Path) -> Path:
    """The nearest folder above ``path`` that exists (the one a write creates the rest in)."""
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def free_bytes(folder: str | os.PathLike) -> int | None:
    """Free space in ``folder`` for this user, or None where it cannot be told."""
    try:
        return int(shutil.disk_usage(folder).free)
    except OSError:
        return None


def size_text(n: float) -> str:
    """A number of bytes for people: ``512 bytes``, ``40.0 KiB``, ``2.0 GiB``."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def check_can_write(path: str | os.PathLike, need_bytes: int = 0) -> Path:
    """Make sure ``path`` can be written before the work starts.

    A probe file is created and removed in the folder that will hold ``path``
    (or the nearest existing folder above it), and that file system must have
    ``need_bytes`` (plus a spare MiB) free.

    Raises:
        OutputError: the folder cannot be written (read-only, not a
            folder, no permission) or has too little free space.
    """
    path = Path(path)
    folder = _existing_folder(path)
    if not folder.is_dir():
        raise OutputError(f"cannot be written: {folder} is not a folder", source=str(path))
    try:
        fd, probe = tempfile.mkstemp(prefix=".lazylabels-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"cannot be written: {folder} is not writable ({exc.strerror or exc})",
                                source=str(path)) from None
    free = free_bytes(folder)
    if free is not None and need_bytes > 0 and free < need_bytes + SPARE_BYTES:
        raise OutputError(f"not enough free space: needs about {size_text(need_bytes + SPARE_BYTES)}, "
                                f"{folder} has {size_text(free)} free", source=str(path))
    return path


# ----------------------------------------------------------------- permissions

def process_umask() -> int:
    """The process umask (read without changing it where the OS tells it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _apply_umask(path: Path, umask: int, directory: bool) -> None:
    try:
        os.chmod(path, (0o777 if directory else 0o666) & ~umask)
    except OSError:
        pass


def _finish_tree(root: Path) -> None:
    """Give every folder and file under ``root`` the umask's permissions, then flush it to disk
    (``mkdtemp`` makes 0700 folders, ``mkstemp`` and some writers 0600 files)."""
    umask = process_umask()
    for dirpath, _dirnames, filenames in os.walk(root):
        for f in filenames:
            _apply_umask(Path(dirpath) / f, umask, directory=False)
            _fsync_path(Path(dirpath) / f)
        _apply_umask(Path(dirpath), umask, directory=True)
        _fsync_path(Path(dirpath), directory=True)


def _fsync_path(path: Path, directory: bool = False) -> None:
    """Flush ``path`` to disk; silently skipped where the OS does not allow it."""
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    """Remove a file, link or folder if it exists; ignore errors (best effort clean-up)."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink()
    except OSError:
        pass


# ----------------------------------------------------------------- leftovers

def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (where that cannot be told: assumed so)."""
    if pid <= 0:
        return False
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _owner() -> str:
    return f"{os.getpid()}-{HOST_ID}"


def _writer_gone(match: re.Match, entry: Path) -> bool:
    """Whether the write that left ``entry`` has ended (so the entry may be recovered or removed)."""
    if match["pid"] is None:
        return True                                  # an earlier version's (no owner recorded)
    pid = int(match["pid"])
    if match["host"] != HOST_ID:
        try:
            return time.time() - entry.lstat().st_mtime > STALE_AFTER_S
        except OSError:
            return False
    if pid == os.getpid():
        return match["id"] not in _ACTIVE
    return not pid_alive(pid)


def _leftovers(path: Path) -> list[tuple[str, Path]]:
    """(kind, entry) of the hidden siblings that ended writes of ``path`` left behind."""
    prefix = f".{path.name}."
    try:
        names = os.listdir(path.parent if str(path.parent) else ".")
    except OSError:
        return []
    out = []
    for name in names:
        if not name.startswith(prefix):
            continue
        match = _LEFTOVER.fullmatch(name[len(prefix):])
        entry = path.parent / name
        if match is not None and _writer_gone(match, entry):
            out.append((match["kind"], entry))
    return out


def recover(path: str | os.PathLike) -> Path:
    """Finish or undo an interrupted write of ``path`` and delete its leftovers (see the module docstring).

    When ``path`` is missing, a complete new version left by the interrupted
    write (``.NAME.new-*``) is renamed into place, else the previous version
    (``.NAME.old-*``); a warning says so. Temporaries of writes still in
    progress (another live process or thread) are never touched.
    """
    path = Path(path)
    if not path.name or path.name in (".", ".."):
        return path
    found = _leftovers(path)
    if not found:
        return path
    if not (path.exists() or path.is_symlink()):
        for kind, what in (("new", "the interrupted save"), ("old", "before the interrupted save")):
            candidates = sorted((e for k, e in found if k == kind), key=_mtime, reverse=True)
            if candidates:
                try:
                    os.rename(candidates[0], path)
                except OSError:
                    break
                found = [(k, e) for k, e in found if e != candidates[0]]
                warn(f"put back the version of {what} (it was left as {candidates[0].name})", source=str(path))
                break
    for _, entry in found:
        _remove(entry)
    return path


def _mtime(entry: Path) -> float:
    try:
        return entry.lstat().st_mtime
    except OSError:
        return 0.0


# ----------------------------------------------------------------- writes

def atomic_write_file(path: str | os.PathLike, write_fn: Callable[[Path], object],
                      overwrite: bool = False) -> Path:
    """Write one file atomically.

    ``write_fn(tmp_path)`` writes the whole content to ``tmp_path``, a hidden
    file in the target's folder that ends with the target's suffix (so writers
    that pick the format by extension, like ``cv2.imwrite``, work). The file
    is then given the umask's permissions, flushed to disk and renamed onto
    ``path`` with :func:`os.replace`. Missing parent folders are created.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false (checked
            before ``write_fn`` is called), or ``path`` is a folder.
    """
    path = check_writable(path, overwrite)
    if path.is_dir() and not path.is_symlink():
        raise OutputExistsError("is a folder; refusing to replace it with a file", source=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.tmp-{_owner()}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    ident = _LEFTOVER.fullmatch(tmp.name[len(path.name) + 2:])["id"]
    _ACTIVE.add(ident)
    try:
        write_fn(tmp)
        _apply_umask(tmp, process_umask(), directory=False)
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    finally:
        _ACTIVE.discard(ident)
    _fsync_path(path.parent, directory=True)
    return path


def _check_replaceable(path: Path, replaceable: Callable[[Path], bool] | None, what: str) -> None:
    """With ``overwrite``, an existing folder is replaced only when it is empty or ``replaceable`` says so."""
    if replaceable is None or not (path.exists() or path.is_symlink()):
        return
    empty = path.is_dir() and not path.is_symlink() and not any(path.iterdir())
    if not empty and not replaceable(path):
        raise OutputExistsError(f"is not {what}; --overwrite only replaces {what}, so it is left alone",
                                source=str(path))


def atomic_write_dir(path: str | os.PathLike, write_fn: Callable[[Path], object],
                     overwrite: bool = False, *, replaceable: Callable[[Path], bool] | None = None,
                     what: str = "a folder this tool wrote") -> Path:
    """Write one folder atomically.

    ``write_fn(tmp_dir)`` fills ``tmp_dir``, an empty hidden folder next to
    ``path``. When it returns, the folder gets the umask's permissions, is
    flushed to disk and renamed into place (the three renames of the module
    docstring). With ``overwrite``, an existing ``path`` is replaced, but only
    when it is empty or ``replaceable(path)`` is true (``what`` names such a
    folder in the error); the previous folder is deleted only once the new one
    is in place (if that rename fails the old one is put back). Missing parent
    folders are created.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false, or it is
            not replaceable (checked before ``write_fn`` is called and again
            before the swap).
    """
    path = check_writable(path, overwrite)
    _check_replaceable(path, replaceable, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{_owner()}-", dir=path.parent))
    ident = _LEFTOVER.fullmatch(tmp.name[len(path.name) + 2:])["id"]
    _ACTIVE.add(ident)
    new = path.parent / f".{path.name}.new-{_owner()}-{ident}"
    old = path.parent / f".{path.name}.old-{_owner()}-{ident}"
    moved = False
    try:
        write_fn(tmp)
        _finish_tree(tmp)
        os.rename(tmp, new)                       # complete: recoverable from here on
        if path.exists() or path.is_symlink():
            check_writable(path, overwrite)       # it may have appeared meanwhile
            _check_replaceable(path, replaceable, what)
            os.rename(path, old)
            moved = True
        try:
            os.rename(new, path)
        except BaseException:
            if moved:
                os.rename(old, path)
                moved = False
            raise
    except BaseException:
        _remove(tmp)
        _remove(new)
        raise
    finally:
        _ACTIVE.discard(ident)
    _fsync_path(path.parent, directory=True)
    if moved:
        _remove(old)
    return path


@contextlib.contextmanager
def scratch_dir(path: str | os.PathLike) -> Iterator[Path]:
    """A hidden working folder beside ``path`` (``.NAME.tmp-PID-HOST-ID``, what :func:`recover` deletes
    once its writer is gone), removed when the block ends."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{_owner()}-", dir=path.parent))
    ident = _LEFTOVER.fullmatch(tmp.name[len(path.name) + 2:])["id"]
    _ACTIVE.add(ident)
    try:
        yield tmp
    finally:
        _remove(tmp)
        _ACTIVE.discard(ident)


def write_error(exc: OSError, path: str | os.PathLike) -> OutputError:
    """An OSError of a write as a one-line error naming ``path`` (a full disk, a folder gone read-only)."""
    return OutputError(f"could not be written ({exc.strerror or exc})", source=str(path))
