"""Face-mesh points -> model inputs for the ``landmarks`` modality.

A face mesh (:mod:`emomm.faces.mesh`) gives ``[P, 3]`` points in crop pixels per face; a clip
gives one per frame, or None where the mesh found no face. :class:`LandmarkTransform` keeps the
first ``points`` of each (478 -> 468), normalises them (:func:`~emomm.faces.landmark_norm.normalize_landmarks`:
position, size and in-plane rotation removed) and, in training, adds Gaussian jitter. The
datasets, the synthetic data and the :class:`~emomm.inference.predictor.Predictor` all build it
from the same settings (its ``describe()`` is stored in checkpoints as the preprocessing).

A clip's input is its frames *with* a mesh, in order (:func:`clip_points`); a sample with none
lacks the modality (its ``present`` mask is False), like a clip without a face.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from emomm.data.pipelines.occluders import OcclusionSpec, occlude, parse_occlusion
from emomm.data.pipelines.transforms import DEFAULT_AUGMENT
from emomm.faces.landmark_norm import MESH_POINTS, clip_points as first_points, normalize_landmarks
from emomm.faces.landmark_store import MeshStore
from emomm.faces.mesh_mirror import mirror_points

log = logging.getLogger(__name__)

#: Names the normalisation in the preprocessing (a checkpoint trained with another one is refused).
NORMALIZATION = "stable-procrustes-v1"


class LandmarkTransform:
    """``[P', 3]`` (one face) or ``[T, P', 3]`` (a clip) crop-pixel points -> float
    ``[points, 3]`` / ``[T, points, 3]`` normalised (``train``: + ``augment.jitter`` noise and,
    with probability ``augment.mirror_p``, mirrored: :func:`~emomm.faces.mesh_mirror.mirror_points`,
    the mesh of the horizontally flipped face; a clip's frames all or none). A dataset that
    serves face pixels beside the landmarks decides the flip itself (``flip=``), so that both
    flip together."""

    def __init__(self, points: int = MESH_POINTS, train: bool = False, augment: dict[str, Any] | None = None,
                 normalization: str = NORMALIZATION, **_: Any) -> None:
        if normalization != NORMALIZATION:
            raise ValueError(f"landmarks normalisation {normalization!r} is not this version's ({NORMALIZATION}); "
                             "retrain the model with this emomm")
        self.points, self.train = int(points), bool(train)
        self.jitter = float((augment or {}).get("jitter") or 0.0) if train else 0.0
        self.mirror_p = float((augment or {}).get("mirror_p") or 0.0) if train else 0.0
        if not 0.0 <= self.mirror_p <= 1.0:
            raise ValueError(f"landmarks.augment.mirror_p must be in [0, 1], got {self.mirror_p}")
        if self.mirror_p and self.points != MESH_POINTS:
            raise ValueError(f"landmarks.augment.mirror_p needs the {MESH_POINTS}-point mesh (landmarks.points={points})")

    def __call__(self, points: np.ndarray, flip: bool | None = None) -> torch.Tensor:
        """``flip``: mirror (True) or not (False); None: with probability ``augment.mirror_p``."""
        x = torch.from_numpy(normalize_landmarks(first_points(points, self.points)))
        if flip is None:
            flip = bool(self.mirror_p) and float(torch.rand(())) < self.mirror_p
        if flip:
            x = mirror_points(x)
        if self.jitter:
            x = x + self.jitter * torch.randn_like(x)
        return x

    def describe(self) -> dict[str, Any]:
        """The deterministic preprocessing, as stored in checkpoints."""
        return {"points": self.points, "normalization": NORMALIZATION}


def paired_flip(face_augment: dict[str, Any] | None, paired: bool) -> tuple[dict[str, Any] | None, float | None]:
    """Training samples that carry face pixels *and* landmarks flip both or neither: returns the
    face's ``augment`` with its ``hflip`` taken out and that probability, which the dataset then
    draws once per sample (:func:`flip_pixels` + ``LandmarkTransform(..., flip=)``). Not
    ``paired``: ``(face_augment, None)`` (each modality augments on its own)."""
    if not paired:
        return face_augment, None
    p = float({**DEFAULT_AUGMENT, **(face_augment or {})}.get("hflip") or 0.0)
    return {**(face_augment or {}), "hflip": 0.0}, p


def draw_flip(p: float | None) -> bool | None:
    """One paired flip decision with probability ``p`` (torch's generator); None when not paired."""
    return None if p is None else bool(p) and float(torch.rand(())) < p


def flip_pixels(x: torch.Tensor) -> torch.Tensor:
    """A face ``[C, H, W]`` or clip ``[T, C, H, W]`` flipped left/right."""
    return x.flip(-1)


def clip_points(meshes: Sequence[np.ndarray | None]) -> np.ndarray | None:
    """Per-frame meshes (None: no face in that frame) -> ``[T', P, 3]`` of the frames that
    have one, in order; None when no frame has."""
    found = [np.asarray(m, np.float32) for m in meshes if m is not None]
    return np.stack(found) if found else None


class WithLandmarks(Dataset):
    """A dataset of face images (``base``: samples ``{"inputs": {...}, "label", "index"}`` and
    ``labels``) with each sample's face mesh as its ``landmarks`` input.

    ``points [N, P', 3]`` / ``found [N]`` are the meshes of ``base``'s images in order. With
    ``alone`` (landmarks are the only modality served) the base's own inputs are not made;
    then a sample whose mesh was not found is left out of ``keep_missing=False`` splits
    (training) and, in the others (``keep_missing``: every sample is scored), gets an all-zero
    mesh, marked ``empty`` (:mod:`emomm.data.core.collate`). Otherwise it simply lacks the modality (its ``present`` mask is False).
    """

    def __init__(self, base: Dataset, points: np.ndarray, found: np.ndarray, transform: LandmarkTransform,
                 alone: bool = False, keep_missing: bool = True, pair_flip: float | None = None) -> None:
        if len(points) != len(base) or len(found) != len(base):
            raise ValueError(f"{len(points)} meshes for {len(base)} images")
        self.base, self.points, self.found, self.transform, self.alone = base, points, found, transform, alone
        self.pair_flip = pair_flip   # :func:`paired_flip`: the face and its landmarks flip together
        self.order = np.arange(len(base)) if keep_missing or not alone else np.flatnonzero(found)
        base_labels = list(getattr(base, "labels"))
        self.labels = [base_labels[i] for i in self.order]
        self.missing = int((~found[self.order]).sum())

    def __len__(self) -> int:
        return len(self.order)

    def with_meshes(self, points: np.ndarray, found: np.ndarray) -> "WithLandmarks":
        """The same images, every one kept (an evaluation view), with other meshes ``[N, P', 3]``
        / ``found [N]`` (e.g. computed on occluded faces)."""
        return WithLandmarks(self.base, points, found, self.transform, alone=self.alone, keep_missing=True)

    def __getitem__(self, i: int) -> dict[str, Any]:
        j = int(self.order[i])
        sample = ({"inputs": {}, "label": self.labels[i], "index": j} if self.alone
                  else {**self.base[j], "index": j})
        sample["inputs"] = dict(sample["inputs"])
        flip = draw_flip(self.pair_flip)
        if flip and "face" in sample["inputs"]:
            sample["inputs"]["face"] = flip_pixels(sample["inputs"]["face"])
        if self.found[j]:
            sample["inputs"]["landmarks"] = self.transform(self.points[j], flip=flip)
        elif self.alone:
            sample["inputs"]["landmarks"] = torch.zeros(self.transform.points, 3)
            sample["empty"] = ["landmarks"]
        return sample


def images_identity(images: Sequence[np.ndarray]) -> dict[str, Any]:
    """What a list of in-memory images is, for the mesh cache: a SHA-1 of their pixels and shapes."""
    h = hashlib.sha1()
    for im in images:
        a = np.ascontiguousarray(im)
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    return {"images_sha1": h.hexdigest(), "n": len(images)}


def with_landmarks(splits: dict[str, Dataset], images: dict[str, Sequence[np.ndarray]], store: MeshStore,
                   options: dict[str, Any], alone: bool, what: str, pair_flip: float | None = None
                   ) -> dict[str, Dataset]:
    """Each split of face-image datasets (``splits[s]`` built on ``images[s]``) with its
    meshes (cached in ``store``) as the ``landmarks`` input (:class:`WithLandmarks`);
    ``options`` is the ``landmarks:`` node (``points``, ``augment``); ``pair_flip``: the training
    faces' flip probability when they flip with their landmarks (:func:`paired_flip`; the train
    split's face transform then flips nothing itself). Logs how often the mesh was found per split."""
    out = {}
    for s, ds in splits.items():
        ims = images[s]
        points, found = store.get(images_identity(ims), lambda ims=ims: ims, f"{what} {s}")
        tf = LandmarkTransform(options.get("points", MESH_POINTS), train=s == "train",
                               augment=options.get("augment") if s == "train" else None)
        out[s] = WithLandmarks(ds, points, found, tf, alone=alone, keep_missing=s != "train",
                               pair_flip=pair_flip if s == "train" else None)
        if (~found).any():
            log.info("%s %s: %d of %d faces without a mesh (%s)", what, s, int((~found).sum()), len(found),
                     "left out of training" if alone and s == "train" else
                     "scored from an empty mesh" if alone else "landmarks masked as missing")
    return out


def occluded_images(images: Sequence[np.ndarray], spec: str | OcclusionSpec, seed: int) -> list[np.ndarray]:
    """uint8 images ``[H, W(, C)]`` with ``spec`` painted on image ``i`` as
    :class:`emomm.analysis.occlusion.OccludedDataset` paints sample ``i``'s face (the same mask:
    ``np.random.default_rng([seed, i])`` places a patch; same fill)."""
    return [occlude(np.asarray(im), spec, np.random.default_rng([int(seed), i])) for i, im in enumerate(images)]


def occluded_landmarks(dataset: Dataset, images: Sequence[np.ndarray], store: MeshStore,
                       spec: str | OcclusionSpec, seed: int, what: str) -> tuple["WithLandmarks", np.ndarray]:
    """An evaluation view of ``dataset`` (a :class:`WithLandmarks` built on ``images``) whose
    meshes are re-run on the occluded images (:func:`occluded_images`), so a landmark model sees
    the occluder too. They are cached under their own key (the occluded pixels, the condition and
    the seed are part of it: never the clean entry). A face whose mesh is not found on the
    occluded image lacks the landmarks (landmarks alone: an all-zero mesh), as in the clean split.
    Returns ``(view, found Bool [N])``."""
    if not isinstance(dataset, WithLandmarks) or len(images) != len(dataset.base):
        raise ValueError(f"{what}: occluded landmarks need the split's face-image dataset with its meshes "
                         f"(got {type(dataset).__name__} for {len(images)} images)")
    spec = parse_occlusion(spec)
    occluded = occluded_images(images, spec, seed)
    identity = {**images_identity(occluded), "occlusion": spec.name, "seed": int(seed)}
    points, found = store.get(identity, lambda: occluded, f"{what} under occlusion {spec.name}")
    return dataset.with_meshes(points, found), found
