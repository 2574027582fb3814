"""A trained model as a bioimage.io model package (spec 0.5), and back.

:func:`export_bioimageio` writes one ``.zip`` that Fiji (deepImageJ), QuPath,
ilastik and the bioimage.io tools run, made with ``bioimageio.spec`` (the
optional ``bioimageio`` extra)::

    rdf.yaml                  the description (spec 0.5): inputs, outputs, weights, provenance, citations
    weights.pt                pytorch_state_dict weights (a plain state dict); the architecture is
                              ``napari_lazylabels.engine.model.ProbabilityUNet`` with the network and
                              tasks as its keyword arguments
    weights_torchscript.pt    TorchScript weights (traced): run without this package
    test_input.npy            a raw image (1, C, Y, X), float32
    test_output_<task>.npy    the network's softmax probabilities (1, K, Y, X) on it, one per task
    cover.png                 the test input and the instances the model finds on it
    README.md                 what the model is, its classes, post-processing, provenance
    lazylabels_config.json    the model file's config.json (tasks, classes, normalisation,
                              post-processing, provenance): what ``lazylabels predict`` reads back

The input ``raw`` is (batch, channel, y, x), y and x multiples of the
network's pooling factor, normalised per image and channel by ``scale_range``
with the model's percentiles (1 and 99.8 by default), as
:func:`~napari_lazylabels.engine.normalize.normalize` does. Each task is one
output: its class probabilities (softmax inside the network). The instances
are not part of the package (they need this package's post-processing);
``lazylabels predict --model M.zip`` gives them.

:func:`~napari_lazylabels.io.modelio.load_model` reads a package written here back as a
:class:`~napari_lazylabels.engine.trained_model.LazyLabelsModel`, without
``bioimageio`` installed and without unpickling (``torch.load(weights_only=True)``).
ONNX weights are not written: the exporter of this torch version needs the
``onnx`` package, which this project does not depend on.
"""

from __future__ import annotations

import getpass
import json
import re
import string
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..engine.model import ProbabilityUNet, receptive_radius
from ..engine.normalize import normalize
from ..engine.pipeline import segmentation_from_probabilities
from ..engine.synthetic import make_image
from ..engine.tasks import FOREGROUND, PARTIAL, SEEDS, TaskSpec
from ..engine.trained_model import LazyLabelsModel
from ..errors import LazyLabelsError, SettingsError
from .atomic import atomic_write_file, check_writable
from .figures import overlay_rgb, pyplot
from .modelio import PACKAGE_CONFIG as CONFIG_NAME, PACKAGE_WEIGHTS as STATE_DICT_NAME, config_dict

__all__ = ["export_bioimageio", "package_name", "CITATIONS"]

TORCHSCRIPT_NAME = "weights_torchscript.pt"
INPUT_ID = "raw"
#: Heads whose channels are background and the object classes.
CLASS_ROLES = (FOREGROUND, SEEDS, PARTIAL)
#: The papers of the method (Ke et al. 2020; the recursive approximation of Ke et al. 2021).
CITATIONS = (
    ("Ke, Bugeau, Papadakis, Schuetz, Schönlieb: Learning to segment microscopy images with lazy labels. "
     "ECCV 2020 Workshops (BioImage Computing)", "10.48550/arXiv.1906.12177"),
    ("Ke, Bugeau, Papadakis, Kirkland, Schuetz, Schönlieb: Multi-task deep learning for image segmentation "
     "using recursive approximation tasks. IEEE Transactions on Image Processing, 2021", "10.48550/arXiv.2005.13053"),
)
#: Tags of every package; the imaging modality (e.g. "fluorescence-light-microscopy") is the user's to add.
BASE_TAGS = ("napari-lazylabels", "lazy-labels", "semantic-segmentation", "instance-segmentation", "unet", "2d",
             "pytorch")
#: Login names that are no one's name.
SYSTEM_ACCOUNTS = frozenset({"root", "admin", "administrator", "user", "jovyan", "ubuntu", "runner"})
#: Imaging modalities a user can tag a package with (bioimage.io's tag names).
MODALITY_TAGS = ("fluorescence-light-microscopy", "brightfield-microscopy", "phase-contrast-microscopy",
                 "histology", "electron-microscopy")
REPOSITORY = "https://github.com/napari-lazylabels/napari-lazylabels"


def _require_spec():
    try:
        import bioimageio.spec  # noqa: F401
    except ImportError:
        raise LazyLabelsError('bioimage.io export needs the bioimageio extra: pip install '
                              '"napari-lazylabels[bioimageio]"') from None


#: What bioimage.io takes as a model's name (spec 0.5): these characters, 5 to 128 of them (64 advised).
NAME_CHARACTERS = frozenset(string.ascii_letters + string.digits + "_+- ()")
NAME_LENGTH = (5, 128)
ADVISED_LENGTH = 64
#: The name of a package whose folder name gives none.
DEFAULT_NAME = "lazylabels model"


def package_name(text: str) -> str:
    """A valid bioimage.io name made from any text, e.g. a model folder's name: characters it does not
    take become ``_``, a name shorter than 5 is prefixed (``m`` -> ``lazylabels m``), one longer than
    the advised 64 cut; :data:`DEFAULT_NAME` when nothing of ``text`` is left."""
    name = re.sub(r"_+", "_", "".join(c if c in NAME_CHARACTERS else "_" for c in str(text))).strip(" _")
    if not name:
        return DEFAULT_NAME
    if len(name) < NAME_LENGTH[0]:
        name = f"lazylabels {name}"
    return name[:ADVISED_LENGTH].rstrip()


def check_package_name(name: str) -> str:
    """Refuse, before any work, a name bioimage.io does not take, saying one it does.

    Raises:
        SettingsError: naming the rule and a valid name made from it (:func:`package_name`).
    """
    low, high = NAME_LENGTH
    if not (isinstance(name, str) and low <= len(name) <= high and set(name) <= NAME_CHARACTERS
            and name == name.strip()):
        raise SettingsError(f"{name!r} is not a bioimage.io model name ({low} to {high} letters, digits, spaces "
                            f"or _+-()); give another with --name, e.g. --name {package_name(name)!r}")
    return name


def _identifier(text: str, fallback: str) -> str:
    ident = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_").lower()
    return ident if ident and not ident[0].isdigit() else fallback


def _channel_names(task: TaskSpec, class_names) -> list[str]:
    """Names of a task's output channels: background and the classes for a class head, else the task's values."""
    if task.role in CLASS_ROLES:
        names = ["background", *(_identifier(c, f"class{i}") for i, c in enumerate(class_names, 1))]
        names += [f"class{i}" for i in range(len(names), task.n_classes)]
        return names[: task.n_classes]
    if task.n_classes == 2:
        return [f"not_{_identifier(task.name, 'task')}", _identifier(task.name, "task")]
    return [f"{_identifier(task.name, 'task')}{i}" for i in range(task.n_classes)]


def _test_image(model: LazyLabelsModel, image: np.ndarray | None, size: int) -> np.ndarray:
    """A YX/YXC test image cropped (or reflect-padded) to ``size`` x ``size``; a synthetic one by default."""
    channels = model.network_config.in_channels
    if image is None:
        image = make_image(0, (size, size)).image.astype(np.float32)
        if channels > 1:
            image = np.repeat(image[..., None], channels, axis=-1)
    image = np.asarray(image, np.float32)
    if (image.shape[2] if image.ndim == 3 else 1) != channels:
        raise LazyLabelsError(f"the test image has {image.shape[2] if image.ndim == 3 else 1} channel(s), "
                              f"the model expects {channels}")
    pad = [(0, max(0, size - n)) for n in image.shape[:2]] + [(0, 0)] * (image.ndim - 2)
    image = np.pad(image, pad, mode="reflect")
    return np.ascontiguousarray(image[:size, :size])


def _cover(path: Path, image: np.ndarray, instances: np.ndarray) -> None:
    """A 2:1 cover: the test input, and the instances the model finds on it."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 4), dpi=100)
    axes[0].imshow(overlay_rgb(image, np.zeros_like(instances)))
    axes[1].imshow(overlay_rgb(image, instances))
    for ax in axes:
        ax.set_axis_off()
    fig.subplots_adjust(0, 0, 1, 1, 0.01, 0)
    fig.savefig(path)
    plt.close(fig)


def _readme(model: LazyLabelsModel, name: str, n_objects: int) -> str:
    prov = model.provenance
    pixel = model.training_pixel_size
    lines = [
        f"# {name}", "",
        "A multi-task U-Net trained with [napari-lazylabels](" + REPOSITORY + ") on lazy labels "
        "(inner blobs, interface scribbles and a few exact masks; Ke et al. 2020).", "",
        "## Inputs and outputs", "",
        f"- input `{INPUT_ID}`: (batch, channel, y, x), {model.network_config.in_channels} channel(s), y and x "
        f"multiples of {model.network_config.size_multiple}; normalised per image and channel: percentile "
        f"{model.normalization.low:g} -> 0, percentile {model.normalization.high:g} -> 1.",
        *(f"- output `{t.name}`: (batch, {t.n_classes}, y, x) softmax probabilities "
          f"({', '.join(['background', *model.class_names][: t.n_classes])})" for t in model.tasks),
        "", "## Instances", "",
        "The instances come from the probabilities by this post-processing (`lazylabels predict --model "
        "THIS.zip` applies it; see the napari-lazylabels docs):", "",
        "```json", json.dumps(model.postprocess.to_dict(), indent=2), "```", "",
        f"On the test input it finds {n_objects} objects (the cover's right half).", "",
        "## Training", "",
        f"- classes: {', '.join(model.class_names) or 'one'}",
        f"- steps: {prov.get('trained_steps', '?')}, date: {prov.get('date', '?')}, device: {prov.get('device', '?')}",
        f"- data: {prov.get('data') or '?'} ({len(prov.get('images') or [])} images)",
        f"- training pixel size: {pixel if pixel is not None else 'unknown'}",
        f"- versions: {json.dumps(prov.get('versions') or {})}",
        "", "## Citation", "",
        *(f"- {text}. doi:{doi}" for text, doi in CITATIONS), "",
    ]
    return "\n".join(lines)


def _trace(network: ProbabilityUNet, example: torch.Tensor):
    """TorchScript by tracing (what bioimage.io consumers run; deprecated by torch in favour of torch.export,
    which they do not read yet)."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.trace(network, example, check_trace=False, strict=False)


def export_bioimageio(model: LazyLabelsModel, out: str | Path, *, name: str = DEFAULT_NAME,
                      test_image: np.ndarray | None = None, authors: list[str] | None = None,
                      license: str = "CC-BY-4.0", overwrite: bool = False, tags: list[str] | None = None) -> Path:
    """Write ``model`` as a bioimage.io model package (``.zip``), atomically.

    ``name``: a valid bioimage.io name (:func:`check_package_name`; :func:`package_name` makes one
    from a folder's name).

    Raises:
        SettingsError: ``name`` is not a valid bioimage.io name.
        LazyLabelsError: ``bioimageio.spec`` is not installed, ``out`` does not end in ``.zip``,
            the test image does not fit the model, or the description does not validate.
        OutputExistsError: ``out`` exists and ``overwrite`` is false.
    """
    check_package_name(name)
    _require_spec()
    from bioimageio.spec import save_bioimageio_package
    from bioimageio.spec.model import v0_5 as bio

    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise LazyLabelsError("a bioimage.io package is a .zip file", source=str(out))
    check_writable(out, overwrite)
    tasks = model.tasks
    net_kwargs = {"network": model.network_config.to_dict(), "tasks": [t.to_dict() for t in tasks]}
    network = ProbabilityUNet(**net_kwargs)
    network.load_state_dict(model.network.state_dict())
    network = network.cpu().float().eval()
    multiple = model.network_config.size_multiple
    halo = receptive_radius(model.network)
    min_size = -(-(2 * halo + multiple) // multiple) * multiple
    size = max(min_size, -(-128 // multiple) * multiple)
    image = _test_image(model, test_image, size)
    norm = normalize(image, model.normalization)[None]
    with torch.no_grad():
        probs = [p.numpy() for p in network(torch.from_numpy(norm))]
    seg = segmentation_from_probabilities({t.name: p[0] for t, p in zip(tasks, probs)}, tasks, model.postprocess)

    with tempfile.TemporaryDirectory(prefix="lazylabels-bioimageio-") as tmp_dir:
        tmp = Path(tmp_dir)
        torch.save({k: v.detach().cpu() for k, v in network.state_dict().items()}, tmp / STATE_DICT_NAME)
        _trace(network, torch.from_numpy(norm)).save(str(tmp / TORCHSCRIPT_NAME))
        np.save(tmp / "test_input.npy", np.moveaxis(image[..., None] if image.ndim == 2 else image, -1, 0)[None])
        for t, p in zip(tasks, probs):
            np.save(tmp / f"test_output_{t.name}.npy", p.astype(np.float32))
        _cover(tmp / "cover.png", image, seg.instances)
        (tmp / "README.md").write_text(_readme(model, name, seg.n_objects), encoding="utf-8")
        (tmp / CONFIG_NAME).write_text(json.dumps({**config_dict(model), "weights": STATE_DICT_NAME}, indent=2),
                                       encoding="utf-8")

        channels = [bio.Identifier(f"channel{i}") for i in range(model.network_config.in_channels)]
        space = [bio.SpaceInputAxis(id=bio.AxisId(a), size=bio.ParameterizedSize(min=min_size, step=multiple))
                 for a in "yx"]
        inputs = [bio.InputTensorDescr(
            id=bio.TensorId(INPUT_ID), description="the raw image",
            axes=[bio.BatchAxis(), bio.ChannelAxis(channel_names=channels), *space],
            test_tensor=bio.FileDescr(source=tmp / "test_input.npy"),
            data=bio.IntervalOrRatioDataDescr(type="float32"),
            preprocessing=[bio.ScaleRangeDescr(kwargs=bio.ScaleRangeKwargs(
                axes=[bio.AxisId("y"), bio.AxisId("x")], min_percentile=model.normalization.low,
                max_percentile=model.normalization.high, eps=1e-6))])]
        outputs = []
        for t in tasks:
            names = [bio.Identifier(n) for n in _channel_names(t, model.class_names)]
            axes = [bio.BatchAxis(), bio.ChannelAxis(channel_names=names),
                    *(bio.SpaceOutputAxisWithHalo(id=bio.AxisId(a), halo=halo, size=bio.SizeReference(
                        tensor_id=bio.TensorId(INPUT_ID), axis_id=bio.AxisId(a))) for a in "yx")]
            outputs.append(bio.OutputTensorDescr(
                id=bio.TensorId(t.name), description=f"{t.name} probabilities ({t.role or 'auxiliary'} head)",
                axes=axes, test_tensor=bio.FileDescr(source=tmp / f"test_output_{t.name}.npy"),
                data=bio.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0))))
        version = bio.Version(torch.__version__.split("+")[0])
        weights = bio.WeightsDescr(
            pytorch_state_dict=bio.PytorchStateDictWeightsDescr(
                source=tmp / STATE_DICT_NAME, pytorch_version=version,
                architecture=bio.ArchitectureFromLibraryDescr(
                    callable=bio.Identifier("ProbabilityUNet"), import_from="napari_lazylabels.engine.model",
                    kwargs=net_kwargs)),
            torchscript=bio.TorchscriptWeightsDescr(source=tmp / TORCHSCRIPT_NAME, pytorch_version=version,
                                                   parent="pytorch_state_dict"))
        people = [a.strip() for a in authors or [] if a.strip()] or [_user()]
        tags = [*BASE_TAGS, *(t.strip().lower() for t in tags or [] if t.strip() and t.strip().lower() not in BASE_TAGS)]
        try:
            descr = bio.ModelDescr(
                name=name, description=f"Multi-task U-Net trained on lazy labels with napari-lazylabels "
                                       f"{__version__} ({', '.join(model.task_names)}; classes: "
                                       f"{', '.join(model.class_names) or 'one'})",
                authors=[bio.Author(name=p) for p in people],
                cite=[bio.CiteEntry(text=text, doi=bio.Doi(doi)) for text, doi in CITATIONS],
                license=bio.LicenseId(license), tags=tags, git_repo=bio.HttpUrl(REPOSITORY),
                covers=[bio.FileDescr(source=tmp / "cover.png")], documentation=bio.FileDescr(source=tmp / "README.md"),
                attachments=[bio.FileDescr(source=tmp / CONFIG_NAME)],
                inputs=inputs, outputs=outputs, weights=weights,
                config={"napari_lazylabels": {"version": __version__, "provenance": model.provenance,
                                              "postprocess": model.postprocess.to_dict(),
                                              "class_names": list(model.class_names)}})
        except Exception as exc:  # pydantic's validation error: many lines
            first = str(exc).strip().splitlines()
            raise LazyLabelsError(f"the bioimage.io description does not validate ({' '.join(first[:6])})",
                                  source=str(out)) from None
        return atomic_write_file(out, lambda path: save_bioimageio_package(descr, output_path=path),
                                 overwrite=overwrite)


def _user() -> str:
    """The author when none is given: the login name, unless it is a system account's (root, ...)."""
    try:
        login = getpass.getuser() or ""
    except (KeyError, OSError):
        login = ""
    return login if login and login not in SYSTEM_ACCOUNTS else "anonymous (napari-lazylabels user)"
