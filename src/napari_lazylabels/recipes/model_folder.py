"""The model folder of a training run: checked before any work, held while the run writes, its
checkpoints written once per step, the finished model put in place at the end.

What is in the folder is never lost to a run that does not finish: a run that
replaces an existing model (``overwrite``) writes its checkpoints to
``NAME.partial`` beside it (:func:`partial_dir`) and puts its model in place
only at the end; a ``--resume`` continues ``NAME.partial`` when there is one
(:func:`resume_source`). :func:`check_model_dir` refuses, before any work, a
folder a run may not write; :class:`ModelFolder` does the rest for one run.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..errors import ModelFileError, OutputExistsError, warn
from ..io.atomic import check_can_write, check_not_current_folder, recover, write_error
from ..io.locks import FolderLock, check_unlocked
from ..io.modelio import MODEL_FOLDER, is_model_folder
from ..io.own_outputs import foreign_model_entries, readable_list

#: A run that replaces an existing model writes its checkpoints to ``NAME`` + this, beside it.
PARTIAL_SUFFIX = ".partial"


class ModelFolder:
    """Where one run writes its model: ``path``, or ``NAME.partial`` for the checkpoints while a model
    kept at ``path`` is to be replaced only at the end (``overwrite``), or while the run continues
    ``NAME.partial`` (``resume``)."""

    def __init__(self, path: str | Path, *, overwrite: bool = False, resume: str | Path | None = None):
        self.path = Path(path)
        self.overwrite = overwrite
        self.resume = resume
        self._checkpoint_dir: Path | None = None
        self._saved: tuple[int, Path] | None = None           # the step and folder last written

    @property
    def saved(self) -> tuple[int, Path] | None:
        """The step and folder this run last wrote (None: nothing yet)."""
        return self._saved

    @contextmanager
    def held(self) -> Iterator[None]:
        """The folder's lock held (a second run into it is refused), and the folder checked again
        (:func:`check_model_dir`); a folder this run wrote already is its own to go on with.

        Raises:
            InUseError, OutputExistsError, OutputError.
        """
        with FolderLock(self.path):
            continues = self.path if self._saved is not None else self.resume
            check_model_dir(self.path, overwrite=self.overwrite, resume=continues, lock=False)
            if self._checkpoint_dir is None:
                self._checkpoint_dir = self._checkpoints_go_to()
            yield

    def _checkpoints_go_to(self) -> Path:
        """``path``, or ``NAME.partial`` when a model there is to be kept until the run finishes
        (it exists and is not what this run continues), or when the run continues ``NAME.partial``."""
        partial = partial_dir(self.path)
        if self.resume is not None and _same(self.resume, partial):
            return partial
        if self.path.exists() and not (self.resume is not None and _same(self.resume, self.path)):
            return partial
        return self.path

    @property
    def checkpoint_dir(self) -> Path:
        """Where the checkpoints of this run go."""
        if self._checkpoint_dir is None:
            self._checkpoint_dir = self._checkpoints_go_to()
        return self._checkpoint_dir

    def write(self, step: int, save: Callable[[Path], object], *, final: bool = False) -> Path:
        """``save(folder)`` the model of ``step`` as the run's checkpoint, or (``final``) into ``path``,
        replacing the model kept there, then no ``NAME.partial``; once per step and folder.

        Raises:
            OutputError: the folder could not be written (full disk...); what ``save`` raises.
        """
        target = self.path if final else self.checkpoint_dir
        if not (self._saved == (step, target) and target.exists()):
            try:
                save(target)
            except OSError as exc:
                raise write_error(exc, target) from None
            self._saved = (step, target)
        if final:
            partial = partial_dir(self.path)
            if partial.exists():
                shutil.rmtree(partial, ignore_errors=True)
            self._checkpoint_dir = self.path
        return target


def partial_dir(model_dir: str | Path) -> Path:
    """``NAME.partial`` beside ``NAME``: the checkpoints of a run that replaces the model ``NAME``."""
    path = Path(model_dir)
    return path.with_name(path.name + PARTIAL_SUFFIX)


def _same(a: str | Path, b: str | Path) -> bool:
    return Path(a).absolute().resolve() == Path(b).absolute().resolve()


def _inside(f: str | Path, folder: Path) -> bool:
    f, folder = Path(f).absolute().resolve(), folder.absolute().resolve()
    return f == folder or folder in f.parents


def check_model_dir(model_dir: str | Path, *, overwrite: bool = False, resume: str | Path | None = None,
                    data_files: Iterable[str | Path] = (), lock: bool = True) -> Path:
    """Refuse, before any work, a model folder this run may not write (one line each).

    * the current folder or one above it (``--model .``);
    * a folder another run holds (its lock file; not checked with ``lock=False``,
      by the run that holds it);
    * an existing ``NAME`` or ``NAME.partial``, unless ``overwrite`` or the
      run continues it (``resume``); even then only a model folder (or an
      empty one), never one holding ``data_files`` (the training data), and
      never one holding files this tool did not write (they would be lost);
    * a folder that cannot be written (probe file).

    Interrupted saves of ``NAME`` and ``NAME.partial`` are recovered first.

    Raises:
        OutputError / OutputExistsError / InUseError.
    """
    path = check_not_current_folder(model_dir)
    if lock:
        check_unlocked(path)
    partial = partial_dir(path)
    continuing = resume is not None and (_same(resume, path) or _same(resume, partial))
    for target in (recover(path), recover(partial)):
        if not (target.exists() or target.is_symlink()):
            continue
        if not (overwrite or continuing):
            if target == partial:
                raise OutputExistsError(f"holds an interrupted run of {path.name}: continue it with --resume, "
                                        f"or pass --overwrite to start again", source=str(partial))
            raise OutputExistsError("output exists; pass --overwrite to replace it (or --resume to continue it)",
                                    source=str(target))
        if not is_model_folder(target) and not (target.is_dir() and not any(target.iterdir())):
            raise OutputExistsError(f"is not {MODEL_FOLDER}; --overwrite only replaces such a folder, so it is "
                                    f"left alone", source=str(target))
        for f in data_files:
            if _inside(f, target):
                raise OutputExistsError(f"holds {f}, which this run trains on; a model folder is never "
                                        f"replaced with the training data in it", source=str(target))
        foreign = foreign_model_entries(target)
        if foreign:
            raise OutputExistsError(f"holds {readable_list(foreign)}, which this tool did not write; a model "
                                    f"folder is replaced whole, so it is left alone (move those out, or give "
                                    f"another --model)", source=str(target))
    check_can_write(path)
    return path


def resume_source(model_dir: str | Path) -> Path:
    """The folder to resume ``model_dir`` from: ``NAME.partial`` (an interrupted run that replaces
    the model) when there is one, else ``model_dir`` (one line when neither is there)."""
    path = recover(Path(model_dir))
    partial = recover(partial_dir(path))
    if partial.exists():
        warn(f"continuing the interrupted run in {partial} (its model replaces {path.name} when it finishes)",
             source=str(path))
        return partial
    if not path.exists():
        raise ModelFileError("nothing to resume: model directory not found", source=str(path))
    return path
