"""Synthetic face meshes (``modality=landmarks`` on ``data=synthetic``): the sample's face drawn as
a 468-point mesh, no model file needed.

The mesh is :func:`~emomm.faces.landmark_norm.reference_mesh` deformed by the sample's
expression and identity (the same action parameters the face renderer draws), placed in a
``crop_size`` px crop with the sample's head pose, with ``noise_px`` of detection noise per
point (seeded by the sample), then transformed like a detected mesh
(:class:`~emomm.data.pipelines.landmark_points.LandmarkTransform`). With ``video`` in the same run
the datamodule passes ``clip`` (the video's ``num_frames``, ``clip_frames`` and ``motion``): each
sample is then ``[T, P, 3]``, one mesh per frame of the same moving face the video shows
(:func:`~emomm.data.synthetic.video_modality.frame_spec`).

Options (the top-level ``landmarks:`` node): ``points``, ``augment`` (training split),
``mesh`` (ignored: nothing is detected), ``synthetic: {crop_size, noise_px}``, ``clip``.
"""
from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import torch

from emomm.data.pipelines.face_clips import pick_frames
from emomm.data.pipelines.landmark_points import LandmarkTransform
from emomm.data.synthetic.registry import register
from emomm.data.synthetic.spec import SampleSpec
from emomm.data.synthetic.video_modality import frame_spec
from emomm.faces.landmark_norm import place_mesh, reference_mesh

_KEYS = {"points", "augment", "mesh", "synthetic", "clip"}
_SYNTHETIC_DEFAULTS = {"crop_size": 192, "noise_px": 0.5}
_SALT = zlib.crc32(b"landmarks")


def spec_mesh(spec: SampleSpec, crop_size: float) -> np.ndarray:
    """The face of ``spec`` as a mesh ``[468, 3]`` in the pixels of a ``crop_size`` crop."""
    p = spec.pose
    return place_mesh(reference_mesh(spec.expression, spec.identity), crop_size, p["angle"],
                      p["dx"], p["dy"], p["scale"])


@register("landmarks")
class SyntheticLandmarks:
    def __init__(self, options: dict[str, Any], train: bool) -> None:
        opts = dict(options or {})
        unknown = set(opts) - _KEYS
        if unknown:
            raise ValueError(f"unknown landmarks options {sorted(unknown)}; known: {sorted(_KEYS)}")
        self.syn = {**_SYNTHETIC_DEFAULTS, **(opts.get("synthetic") or {})}
        self.clip = opts.get("clip")
        self.train = train
        self.transform = LandmarkTransform(opts.get("points", 468), train=train, augment=opts.get("augment"))

    def _noisy(self, spec: SampleSpec, rng: np.random.Generator) -> np.ndarray:
        mesh = spec_mesh(spec, float(self.syn["crop_size"]))
        return mesh + rng.normal(0, float(self.syn["noise_px"]), mesh.shape).astype(np.float32)

    def __call__(self, spec: SampleSpec, **_: Any) -> torch.Tensor:
        rng = np.random.default_rng([spec.seed, spec.index, _SALT])
        if not self.clip:
            return self.transform(self._noisy(spec, rng))
        frames = int(self.clip.get("clip_frames", 12))
        pick_rng = np.random.default_rng([spec.seed, spec.index, int(torch.randint(0, 2**31, ()).item())]) \
            if self.train else None
        idx = pick_frames(frames, self.clip.get("num_frames", 8), self.train, pick_rng)
        motion = float(self.clip.get("motion", 1.0))
        meshes = [self._noisy(frame_spec(spec, i / max(frames - 1, 1), motion), rng) for i in range(frames)]
        return self.transform(np.stack(meshes)[idx])

    def describe(self) -> dict[str, Any]:
        out = {**self.transform.describe(), "synthetic": dict(self.syn)}
        if self.clip:
            out["num_frames"] = self.clip.get("num_frames", 8)
        return out
