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

from typing import Any, Sequence

import numpy as np
import torch

from emomm.faces.landmark_norm import MESH_POINTS, clip_points as first_points, normalize_landmarks

#: Names the normalisation in the preprocessing (a checkpoint trained with another one is refused).
NORMALIZATION = "stable-procrustes-v1"


class LandmarkTransform:
    """``[P', 3]`` (one face) or ``[T, P', 3]`` (a clip) crop-pixel points -> float
    ``[points, 3]`` / ``[T, points, 3]`` normalised (``train``: + ``augment.jitter`` noise)."""

    def __init__(self, points: int = MESH_POINTS, train: bool = False, augment: dict[str, Any] | None = None,
                 normalization: str = NORMALIZATION, **_: Any) -> None:
        if normalization != NORMALIZATION:
            raise ValueError(f"landmarks normalisation {normalization!r} is not this version's ({NORMALIZATION}); "
                             "retrain the model with this emomm")
        self.points, self.train = int(points), bool(train)
        self.jitter = float((augment or {}).get("jitter") or 0.0) if train else 0.0

    def __call__(self, points: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(normalize_landmarks(first_points(points, self.points)))
        if self.jitter:
            x = x + self.jitter * torch.randn_like(x)
        return x

    def describe(self) -> dict[str, Any]:
        """The deterministic preprocessing, as stored in checkpoints."""
        return {"points": self.points, "normalization": NORMALIZATION}


def clip_points(meshes: Sequence[np.ndarray | None]) -> np.ndarray | None:
    """Per-frame meshes (None: no face in that frame) -> ``[T', P, 3]`` of the frames that
    have one, in order; None when no frame has."""
    found = [np.asarray(m, np.float32) for m in meshes if m is not None]
    return np.stack(found) if found else None
