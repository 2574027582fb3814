"""Seeded synthetic fluorescence images of nuclei, with ground truth and lazy labels.

Each image holds nuclei of varied size and shape (ellipses with a random
orientation and a smooth boundary wobble), some of them pressed together in
touching pairs and small clusters, with chromatin-like texture, a faint or
absent dimmer line where touching nuclei meet (so telling them apart needs the
separation task), an uneven background, out-of-focus haze, optical blur and
Poisson plus Gaussian noise. With several classes, higher classes are smaller,
rounder, brighter and speckled, so the class is learnable from the image.

Everything is deterministic per seed; one 256x256 image takes a few ms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import ndimage
from skimage.segmentation import relabel_sequential

from .annotations import LazyAnnotations
from .groundtruth import interface_edges, semantic_from_instances
from .simulate import simulate_lazy_labels

#: Streams of :func:`_derive_seed`, so training and test images never coincide.
_TRAIN, _TEST, _LABELS = 0, 1, 2

#: Harmonics of the boundary wobble.
_HARMONICS = np.arange(2, 6)


@dataclass
class SyntheticImage:
    """One synthetic image and its ground truth.

    Attributes:
        image: float32 YX intensities, not normalised (background about
            0.03-0.2, nuclei mostly 0.2-1.5 with speckles up to about 3;
            noise can make a few pixels slightly negative).
        instances: int32 YX instance map, 0 = background, ids 1..n.
        semantic: int32 YX class map, 0 = background, classes 1..K.
        classes: instance id -> class.
        seed: the seed it was made from.
    """

    image: np.ndarray
    instances: np.ndarray
    semantic: np.ndarray
    classes: dict[int, int] = field(default_factory=dict)
    seed: int = 0


@dataclass(frozen=True)
class _ClassLook:
    r_lo: float
    r_hi: float
    max_elongation: float
    brightness: float
    smooth_texture: float
    speckle: float


def _class_look(k: int, n_classes: int) -> _ClassLook:
    """Class 1: large, dim, smooth; class K: small, round, bright, speckled."""
    s = (k - 1) / (n_classes - 1) if n_classes > 1 else 0.0
    return _ClassLook(r_lo=7.0 - 2.0 * s, r_hi=17.0 - 7.0 * s, max_elongation=1.7 - 0.45 * s,
                      brightness=0.5 + 0.5 * s, smooth_texture=0.22 - 0.07 * s, speckle=0.9 * s)


@dataclass
class _Nucleus:
    cy: float
    cx: float
    a: float            # semi-axis along the orientation
    b: float            # the other semi-axis
    angle: float
    amps: np.ndarray    # wobble amplitude per harmonic
    phases: np.ndarray
    cls: int

    def radius(self, theta: np.ndarray | float) -> np.ndarray | float:
        """Boundary distance from the centre in direction ``theta`` (atan2(dy, dx))."""
        return self._radius_unit(np.exp(1j * np.asarray(theta, dtype=np.float64)))

    def _radius_unit(self, u: np.ndarray) -> np.ndarray:
        """Boundary distance in the directions given as unit complex numbers ``dx + i dy``."""
        v = u * np.exp(-1j * self.angle)
        c, s = v.real, v.imag
        ell = self.a * self.b / np.sqrt((self.b * c) ** 2 + (self.a * s) ** 2)
        wob = np.ones_like(c)
        power = u * u                          # u**2: the first harmonic is 2
        for amp, phase in zip(self.amps, self.phases):
            wob += amp * (power * np.exp(1j * phase)).real
            power = power * u
        return ell * wob

    def rho(self, shape: tuple[int, int], reach: float) -> tuple[tuple[slice, slice], np.ndarray] | None:
        """Normalised radial coordinate (1 on the boundary) on the bounding box of ``rho < reach``."""
        rmax = max(self.a, self.b) * (1.0 + float(np.abs(self.amps).sum())) * reach + 1.0
        y0, y1 = max(int(self.cy - rmax), 0), min(int(self.cy + rmax) + 2, shape[0])
        x0, x1 = max(int(self.cx - rmax), 0), min(int(self.cx + rmax) + 2, shape[1])
        if y1 <= y0 or x1 <= x0:
            return None
        dy = (np.arange(y0, y1, dtype=np.float32) - np.float32(self.cy))[:, None]
        dx = (np.arange(x0, x1, dtype=np.float32) - np.float32(self.cx))[None, :]
        d = np.sqrt(dy * dy + dx * dx)
        u = (dx + 1j * dy).astype(np.complex64) / np.maximum(d, np.float32(1e-6))
        return (slice(y0, y1), slice(x0, x1)), (d / self._radius_unit(u)).astype(np.float32)


def _random_nucleus(rng: np.random.Generator, cls: int, look: _ClassLook) -> _Nucleus:
    r = rng.uniform(look.r_lo, look.r_hi)
    e = rng.uniform(1.0, look.max_elongation)
    amps = rng.uniform(0.0, 1.0, len(_HARMONICS)) * np.array([0.06, 0.04, 0.025, 0.015])
    return _Nucleus(cy=0.0, cx=0.0, a=r * np.sqrt(e), b=r / np.sqrt(e),
                    angle=rng.uniform(0, np.pi), amps=amps,
                    phases=rng.uniform(0, 2 * np.pi, len(_HARMONICS)), cls=cls)


def _place(rng: np.random.Generator, shape: tuple[int, int], n_target: int, n_classes: int,
           touching: float) -> tuple[np.ndarray, np.ndarray, list[_Nucleus]]:
    """Place nuclei one by one; some pressed against an earlier one.

    Returns the instance map, each pixel's normalised radial coordinate in its
    own nucleus, and the nuclei (instance id = index + 1). Where two nuclei
    overlap, each pixel goes to the one whose boundary it is relatively
    further from (smaller rho), which flattens the shared boundary as in
    nuclei pressed together.
    """
    looks = [_class_look(k, n_classes) for k in range(1, n_classes + 1)]
    labels = np.zeros(shape, dtype=np.int32)
    best = np.full(shape, np.inf, dtype=np.float32)
    nuclei: list[_Nucleus] = []
    attempts = 0
    while len(nuclei) < n_target and attempts < 30 * n_target:
        attempts += 1
        cls = int(rng.integers(1, n_classes + 1))
        nuc = _random_nucleus(rng, cls, looks[cls - 1])
        attach = bool(nuclei) and rng.random() < touching
        if attach:
            j = int(rng.integers(len(nuclei)))
            other = nuclei[j]
            theta = rng.uniform(-np.pi, np.pi)
            dist = (float(other.radius(theta)) + float(nuc.radius(theta + np.pi))
                    - rng.uniform(2.0, 6.0))
            nuc.cy, nuc.cx = other.cy + dist * np.sin(theta), other.cx + dist * np.cos(theta)
            if not (0 <= nuc.cy < shape[0] and 0 <= nuc.cx < shape[1]):
                continue
            got = nuc.rho(shape, 1.0)
            if got is None:
                continue
            sl, rho = got
            hit = labels[sl][rho < 1.0]
            others = np.unique(hit[hit > 0])
            if len(others) != 1 or others[0] != j + 1:
                continue            # must overlap exactly the nucleus it leans on
            # and nothing else may come close (keeps clusters tidy)
            near = labels[sl][rho < 1.15]
            if np.any((near > 0) & (near != j + 1)):
                continue
        else:
            nuc.cy, nuc.cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
            got = nuc.rho(shape, 1.25)
            if got is None:
                continue
            sl, rho = got
            if np.any(labels[sl][rho < 1.25] > 0):
                continue            # free nuclei keep a gap to every other
        take = (rho < 1.0) & (rho < best[sl])
        if not take.any():
            continue
        nuclei.append(nuc)
        labels[sl][take] = len(nuclei)
        best[sl][take] = rho[take]
    return labels, best, nuclei


def _clean_instances(labels: np.ndarray) -> np.ndarray:
    """Keep each instance's largest connected part; renumber 1..n."""
    out = labels.copy()
    for idx, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        m = labels[sl] == idx
        lab, n = ndimage.label(m)
        if n > 1:
            sizes = np.bincount(lab.ravel())[1:]
            out[sl][m & (lab != 1 + int(np.argmax(sizes)))] = 0
    return relabel_sequential(out)[0].astype(np.int32)


def _texture(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    t = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigma)
    return t / (t.std() + 1e-6)


#: Looks of the generated images: widefield fluorescence (the default), or the sparse,
#: Poisson-limited counts of a multiplexed ion-beam (MIBI) dsDNA channel.
FLUORESCENCE, MIBI = "fluorescence", "mibi"
STYLES = (FLUORESCENCE, MIBI)


def make_image(seed: int, shape: tuple[int, int] = (256, 256), n_classes: int = 1,
               density: float = 0.25, touching: float = 0.2, style: str = FLUORESCENCE) -> SyntheticImage:
    """One synthetic image of nuclei with its ground truth.

    Args:
        seed: the same seed always gives the same image.
        shape: YX size.
        n_classes: number of nucleus classes (1..K, each of a distinct look).
        density: the fraction of the image nuclei should cover, roughly.
        touching: probability that a new nucleus is pressed against an earlier
            one (about 30-40 % of nuclei then touch another at 0.2).
        style: ``"fluorescence"`` (blurred, photon and read noise) or
            ``"mibi"``: ion counts as a MIBI dsDNA channel shows them, sparse
            and pixelated (a granular signal, no optical blur), Poisson at low
            counts (about 0.5-6 counts a pixel in nuclei, some nuclei dim), an
            uneven background of about 0.03-1.5 counts and small bright debris
            (see :func:`_mibi_counts`).
    """
    if n_classes < 1:
        raise ValueError("n_classes must be at least 1")
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    rng = np.random.default_rng(seed)
    h, w = int(shape[0]), int(shape[1])
    looks = [_class_look(k, n_classes) for k in range(1, n_classes + 1)]
    mean_area = np.mean([np.pi * ((lk.r_hi - lk.r_lo) ** 2 / 12 + ((lk.r_lo + lk.r_hi) / 2) ** 2)
                         for lk in looks])
    n_target = max(1, int(round(density * h * w / mean_area * rng.uniform(0.8, 1.2))))
    raw, rho, nuclei = _place(rng, (h, w), n_target, n_classes, touching)

    # ground truth; the class of a renumbered instance comes from its nucleus
    inst = _clean_instances(raw)
    keep = inst > 0
    link = np.unique(inst[keep].astype(np.int64) * (len(nuclei) + 1) + raw[keep])
    link = np.stack([link // (len(nuclei) + 1), link % (len(nuclei) + 1)], axis=1)
    classes = {int(i): nuclei[int(r) - 1].cls for i, r in link}
    semantic = semantic_from_instances(inst, classes).astype(np.int32)

    # nuclei: brightness per nucleus, darker rim, chromatin texture, speckles
    n = len(nuclei)
    cls = np.array([0] + [nu.cls for nu in nuclei])
    bright = np.zeros(n + 1, np.float32)
    bright[1:] = [looks[c - 1].brightness for c in cls[1:]]
    bright[1:] *= rng.uniform(0.75, 1.25, n)
    smooth_amp = np.array([0.0] + [looks[c - 1].smooth_texture for c in cls[1:]], np.float32)
    speck_amp = np.array([0.0] + [looks[c - 1].speckle for c in cls[1:]], np.float32)
    fg = raw > 0
    r2 = np.where(fg, rho, 1.0) ** 2
    tex = (1.0 + smooth_amp[raw] * _texture(rng, (h, w), 2.5)
           + speck_amp[raw] * np.maximum(_texture(rng, (h, w), 0.8) - 0.5, 0.0))
    obj = np.where(inst > 0, bright[raw] * (1.0 - 0.3 * r2) * np.maximum(tex, 0.1), 0.0)
    obj = obj.astype(np.float32)

    # where touching nuclei meet: no line (30 %) or a faint dim one
    first, second, edge_pairs = interface_edges(inst)
    if len(edge_pairs):
        uniq, which = np.unique(edge_pairs, axis=0, return_inverse=True)
        dim = np.where(rng.random(len(uniq)) < 0.3, 1.0, 1.0 - rng.uniform(0.1, 0.35, len(uniq)))
        factor = np.ones(h * w, np.float32)
        f = dim[which.reshape(-1)].astype(np.float32)
        np.minimum.at(factor, first, f)
        np.minimum.at(factor, second, f)
        obj *= factor.reshape(h, w)

    if style == MIBI:
        return SyntheticImage(image=_mibi_counts(rng, obj, inst), instances=inst, semantic=semantic,
                              classes=classes, seed=int(seed))

    # uneven background, haze from out-of-focus light, optical blur, noise
    bg_level = rng.uniform(0.04, 0.12)
    coarse = rng.uniform(0.4, 1.6, (3, 3)).astype(np.float32)
    background = bg_level * cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    haze = rng.uniform(0.05, 0.15) * cv2.GaussianBlur(obj, (0, 0), 8.0)
    clean = cv2.GaussianBlur(obj + haze + background, (0, 0), rng.uniform(0.8, 1.6))
    photons = rng.uniform(40.0, 300.0)
    img = rng.poisson(np.maximum(clean, 0.0) * photons) / photons
    img = img + rng.normal(0.0, rng.uniform(0.005, 0.02), (h, w))
    return SyntheticImage(image=img.astype(np.float32), instances=inst, semantic=semantic,
                          classes=classes, seed=int(seed))


def _mibi_counts(rng: np.random.Generator, obj: np.ndarray, inst: np.ndarray) -> np.ndarray:
    """Ion counts of a MIBI-like dsDNA image (float32 whole numbers) from the nuclei's brightness.

    The expected count of a pixel is an uneven background (a smooth field of
    about 0.03-1.5 counts: some regions as bright as dim nuclei) plus the
    nucleus's brightness times a random scale (1.5-4) times a per-nucleus
    factor (log-normal: some nuclei are dim) times a granular factor
    (gamma-distributed, mean 1: the signal is sparse and pixelated), plus a
    few small bright specks of debris off the nuclei; each pixel then holds a
    Poisson count. No optical blur.
    """
    h, w = obj.shape
    coarse = rng.uniform(0.1, 3.0, (3, 3)).astype(np.float32)
    background = rng.uniform(0.1, 0.5) * cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    per_nucleus = rng.lognormal(0.0, 0.4, int(inst.max()) + 1).astype(np.float32)
    grain = rng.gamma(0.8, 1 / 0.8, (h, w)).astype(np.float32)
    rate = np.maximum(background, 0.03) + rng.uniform(1.5, 4.0) * obj * per_nucleus[inst] * grain
    n_debris = int(rng.poisson(h * w / 4000))
    ys, xs = rng.integers(0, h, n_debris), rng.integers(0, w, n_debris)
    specks = np.zeros((h, w), np.float32)
    specks[ys, xs] = rng.uniform(3.0, 8.0, n_debris)
    specks = cv2.GaussianBlur(specks, (0, 0), 0.8) * 4.0
    rate += np.where(inst > 0, 0.0, specks)
    return rng.poisson(rate).astype(np.float32)


def _derive_seed(seed: int, stream: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), stream, int(index)]).generate_state(1)[0])


def make_test_set(n_images: int, seed: int = 0, shape: tuple[int, int] = (256, 256),
                  n_classes: int = 1, density: float = 0.25, style: str = FLUORESCENCE) -> list[SyntheticImage]:
    """Held-out images with ground truth only (never equal to a training image of any seed)."""
    return [make_image(_derive_seed(seed, _TEST, i), shape, n_classes, density, style=style)
            for i in range(n_images)]


def make_lazy_dataset(n_images: int, *, seed: int = 0, shape: tuple[int, int] = (256, 256),
                      n_classes: int = 1, strong_fraction: float = 0.1, density: float = 0.25,
                      style: str = FLUORESCENCE, regimes=None,
                      **simulate_kwargs) -> tuple[list[LazyAnnotations], list[SyntheticImage]]:
    """Synthetic training images with simulated lazy labels.

    Every image gets the labels of every regime simulated by default (blobs
    and interface scribbles; ``regimes``: those regimes instead, e.g. the
    fg/bg scribbles'); strong masks go to ``round(strong_fraction *
    n_images)`` images chosen at random (at least one when ``strong_fraction >
    0``). The simulator knows the truth, so each image is marked explicitly as
    annotated for every input it was given (an image whose nuclei do not touch
    is a true "no interface here"), and for the masks where it has them. Images are named
    ``synthetic_000``, ``synthetic_001``, ... Extra keyword arguments go to
    :func:`~napari_lazylabels.engine.simulate.simulate_lazy_labels`.

    Returns:
        the annotations and the matching ground truth.
    """
    n_strong = int(round(strong_fraction * n_images))
    if strong_fraction > 0 and n_images > 0:
        n_strong = max(1, n_strong)
    n_strong = min(n_strong, n_images)
    pick = np.random.default_rng([int(seed), _LABELS]).permutation(n_images)[:n_strong]
    strong = np.zeros(n_images, dtype=bool)
    strong[pick] = True
    items, truths = [], []
    for i in range(n_images):
        truth = make_image(_derive_seed(seed, _TRAIN, i), shape, n_classes, density, style=style)
        settings = dict(simulate_kwargs)
        if regimes is None or any("strong" in r.simulation_settings() for r in regimes):
            settings["strong"] = bool(strong[i])
        labels = simulate_lazy_labels(truth.instances, truth.classes,
                                      rng=np.random.default_rng([int(seed), _LABELS, i]),
                                      regimes=regimes, **settings)
        items.append(LazyAnnotations(
            image=truth.image, labels=labels, name=f"synthetic_{i:03d}",
            annotated={k: v is not None for k, v in labels.items()}))
        truths.append(truth)
    return items, truths
