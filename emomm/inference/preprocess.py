"""Raw media -> model inputs, from a checkpoint's stored ``preprocessing``.

Training, evaluation and inference share these transforms: the datasets build the same
classes (:class:`FaceTransform`, :class:`FrameTransform`, :class:`ClipOptions`,
:func:`clean_text`) from the same settings, and store their ``describe()`` in the
checkpoint; :class:`Preprocessor` rebuilds them from it in eval mode (no augmentation), so a
prediction sees exactly what validation saw. Voice waves also take the datasets' path:
resample, trim silence, round through float16 (the datasets' cache format), centre crop/pad.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from emomm.data.pipelines.landmark_points import LandmarkTransform
from emomm.data.pipelines.waveforms import ClipOptions
from emomm.data.pipelines.text_data import clean_text
from emomm.data.pipelines.transforms import FaceTransform, FrameTransform
from emomm.media.audio import resample, trim_silence

_IMAGE_KEYS = ("image_size", "in_chans", "mean", "std")


def _pick(d: dict[str, Any], keys) -> dict[str, Any]:
    return {k: d[k] for k in keys if k in d and d[k] is not None}


class Preprocessor:
    """Per-modality eval transforms of one checkpoint (``preprocessing = {modality: dict}``)."""

    def __init__(self, preprocessing: dict[str, Any]) -> None:
        self.preprocessing = dict(preprocessing or {})
        face, video = self.preprocessing.get("face") or {}, self.preprocessing.get("video") or {}
        self.face_tf = FaceTransform(**_pick(face, _IMAGE_KEYS)) if "face" in self.preprocessing else None
        self.video_tf = FrameTransform(**_pick(video, _IMAGE_KEYS)) if "video" in self.preprocessing else None
        self.num_frames = int(video.get("num_frames") or 8)
        voice = self.preprocessing.get("voice") or {}
        self.clip = ClipOptions(**_pick(voice, ("sample_rate", "duration", "pad", "trim_db"))) \
            if "voice" in self.preprocessing else None
        self.text = self.preprocessing.get("text") or {}
        lm = self.preprocessing.get("landmarks") or {}
        self.landmark_tf = LandmarkTransform(**_pick(lm, ("points", "normalization"))) \
            if "landmarks" in self.preprocessing else None
        #: a landmarks clip model takes ``[T, P, 3]`` (frames with a mesh); else one face ``[P, 3]``
        self.landmark_frames = int(lm.get("num_frames") or 0)
        self.mesh_options = dict(lm.get("mesh") or {})

    def face(self, crop: np.ndarray) -> torch.Tensor:
        """uint8 ``[S, S, 3]`` (or gray ``[S, S]``) crop -> ``[C, H, W]``."""
        return self.face_tf(crop)

    def video(self, crops: np.ndarray) -> torch.Tensor:
        """uint8 ``[T, S, S, 3]`` crops -> ``[T, C, H, W]``."""
        return self.video_tf(np.asarray(crops))

    def landmarks(self, points: np.ndarray) -> torch.Tensor:
        """Face-mesh points in crop pixels ``[P', 3]`` (or ``[T, P', 3]``) -> normalised ``[P, 3]``
        (``[T, P, 3]``)."""
        return self.landmark_tf(np.asarray(points, np.float32))

    def wave(self, wave: np.ndarray, sr: int) -> np.ndarray:
        """Any-rate mono wave -> the model's rate, silence-trimmed like the datasets."""
        w = resample(np.asarray(wave, np.float32), int(sr), self.clip.sample_rate)
        if self.clip.trim_db:
            w = trim_silence(w, self.clip.sample_rate, self.clip.trim_db)
        return w.astype(np.float16).astype(np.float32)

    def voice(self, wave: np.ndarray, sr: int | None = None) -> torch.Tensor:
        """Wave -> ``[T]``: (when ``sr`` is given: resample + trim), then centre crop/pad."""
        w = self.wave(wave, sr) if sr is not None else np.asarray(wave, np.float32)
        return self.clip.to_model_input(w, train=False, augment=None, rng=None)

    def clean(self, text: str) -> str:
        return clean_text(str(text), repair=self.text.get("repair", True), normalize=self.text.get("normalize", True))


def prepare(modality: str, raw: Any, preprocessing: dict[str, Any], sr: int | None = None):
    """One raw input -> one model input (see :class:`Preprocessor`)."""
    p = Preprocessor(preprocessing)
    if modality == "face":
        return p.face(raw)
    if modality == "video":
        return p.video(raw)
    if modality == "voice":
        return p.voice(raw, sr)
    if modality == "landmarks":
        return p.landmarks(raw)
    if modality == "text":
        return p.clean(raw)
    raise ValueError(f"unknown modality {modality!r}")
