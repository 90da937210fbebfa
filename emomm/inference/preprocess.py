"""Raw media -> model inputs, from the preprocessing a checkpoint stores.

Every inference path (Predictor, ONNX runner, live pipeline, web app) calls :func:`prepare`
(or the :class:`Preprocessor` it builds), which applies the *datasets' own* deterministic
transforms (:class:`~emomm.data.transforms.FaceTransform` / ``FrameTransform``,
:class:`~emomm.data.audio.ClipOptions`, :func:`~emomm.data.text.clean_text`) configured
from ``preprocessing[modality]``, so a prediction sees exactly what evaluation saw:

* ``face``: a uint8 crop ``[H, W, 3]`` / ``[H, W]`` -> float ``[C, S, S]``;
* ``video``: crops ``[T, S, S, 3]`` -> ``[T', C, H, W]``, ``T' = min(T, num_frames)``
  frames taken uniformly, as the video datasets' evaluation does;
* ``voice``: ``(wave, sr)`` -> float ``[T]``: resampled, silence-trimmed when the
  checkpoint says so, rounded through float16 like the training cache, centre-cropped /
  padded to ``duration``;
* ``text``: a string -> the cleaned string (the text encoder tokenizes it).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from emomm.data.audio import ClipOptions
from emomm.data.transforms import FaceTransform, FrameTransform
from emomm.media.audio import resample, trim_silence
from emomm.media.video import uniform_indices

MODALITIES = ("face", "video", "voice", "text")
_CLIP_KEYS = ("sample_rate", "duration", "pad", "trim_db")


def modality_prep(modality: str, preprocessing: dict[str, Any] | None) -> dict[str, Any]:
    """``preprocessing[modality]`` when given the checkpoint's whole dict, else the dict itself."""
    prep = dict(preprocessing or {})
    if modality in prep and isinstance(prep[modality], dict):
        return dict(prep[modality])
    return prep


def _tf_args(prep: dict[str, Any], default_chans: int) -> dict[str, Any]:
    return {"image_size": int(prep.get("image_size", 64)), "in_chans": int(prep.get("in_chans", default_chans)),
            "mean": prep.get("mean", 0.5), "std": prep.get("std", 0.5)}


class Preprocessor:
    """The transforms of one checkpoint, built once (``preprocessing`` = the checkpoint's
    ``{modality: dict}``)."""

    def __init__(self, preprocessing: dict[str, Any] | None) -> None:
        self.preprocessing = {m: dict(v) for m, v in (preprocessing or {}).items() if isinstance(v, dict)}
        self._face: FrameTransform | None = None
        self._video: FrameTransform | None = None

    # -- images --------------------------------------------------------------------------
    def face_transform(self) -> FrameTransform:
        if self._face is None:
            self._face = FrameTransform(**_tf_args(self.preprocessing.get("face", {}), 1), train=False)
        return self._face

    def video_transform(self) -> FrameTransform:
        if self._video is None:
            self._video = FrameTransform(**_tf_args(self.preprocessing.get("video", {}), 3), train=False)
        return self._video

    def face(self, crop: Any) -> torch.Tensor:
        """One crop (uint8 ``[H, W, 3]``, ``[H, W]`` or PIL) -> ``[C, S, S]``; exactly
        ``FaceTransform`` (the datasets' eval transform)."""
        tf = self.face_transform().face
        return tf(crop)

    def faces(self, crops: np.ndarray) -> torch.Tensor:
        """Many crops of one size, uint8 ``[N, S, S, 3]`` -> ``[N, C, H, W]`` in one call
        (the eval transform is deterministic, so batching it changes nothing)."""
        crops = np.asarray(crops)
        if crops.ndim == 3:  # [N, S, S] gray
            crops = np.repeat(crops[..., None], 3, -1)
        if crops.ndim != 4 or crops.shape[-1] not in (1, 3) or crops.dtype != np.uint8:
            raise ValueError(f"face crops must be uint8 [N, S, S, 3], got {crops.dtype} {crops.shape}")
        if crops.shape[-1] == 1:
            crops = np.repeat(crops, 3, -1)
        if len(crops) == 0:
            p = _tf_args(self.preprocessing.get("face", {}), 1)
            return torch.zeros(0, p["in_chans"], p["image_size"], p["image_size"])
        return self.face_transform()(crops)

    def video(self, crops: np.ndarray) -> torch.Tensor:
        """Face crops of one window ``[T, S, S, 3]`` -> ``[T', C, H, W]`` (uniform frames)."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[-1] != 3 or crops.dtype != np.uint8:
            raise ValueError(f"video crops must be uint8 [T, S, S, 3], got {crops.dtype} {crops.shape}")
        k = self.preprocessing.get("video", {}).get("num_frames")
        if k and len(crops) > int(k):
            crops = crops[uniform_indices(len(crops), int(k))]
        return self.video_transform()(crops)

    # -- audio ---------------------------------------------------------------------------
    def clip_options(self, modality: str = "voice") -> ClipOptions:
        prep = self.preprocessing.get(modality, {})
        return ClipOptions(**{k: prep[k] for k in _CLIP_KEYS if k in prep})

    def decode_wave(self, wave: np.ndarray, sr: int, modality: str = "voice") -> np.ndarray:
        """A whole recording as training's cache holds it: mono, resampled to the model's
        rate, trimmed when ``trim_db`` is set, rounded through float16 -> float32 ``[T]``."""
        opts = self.clip_options(modality)
        wave = np.asarray(wave, np.float32)
        if wave.ndim == 2:  # [C, T] -> mono, as load_audio does
            wave = wave.mean(0) if wave.shape[0] < wave.shape[1] else wave.mean(1)
        if wave.ndim != 1:
            raise ValueError(f"a waveform must be [T] or [C, T], got shape {wave.shape}")
        if int(sr) != opts.sample_rate:
            wave = resample(wave, int(sr), opts.sample_rate)
        if opts.trim_db:
            wave = trim_silence(wave, opts.sample_rate, opts.trim_db)
        return wave.astype(np.float16).astype(np.float32)

    def voice_window(self, wave: np.ndarray, modality: str = "voice") -> torch.Tensor:
        """An already decoded (:meth:`decode_wave`) stretch -> the model's ``[T]`` input
        (centre crop / zero pad to ``duration``: ``ClipOptions.to_model_input`` at eval)."""
        return self.clip_options(modality).to_model_input(wave, train=False, augment=None, rng=None)

    def voice(self, wave: np.ndarray, sr: int, modality: str = "voice") -> torch.Tensor:
        return self.voice_window(self.decode_wave(wave, sr, modality), modality)

    # -- text ----------------------------------------------------------------------------
    def text(self, text: Any) -> str:
        # Imported here: emomm.data.text also defines the text DataModule, which inference
        # does not otherwise need.
        from emomm.data.text import clean_text

        prep = self.preprocessing.get("text", {})
        return clean_text(text, repair=bool(prep.get("repair", True)), normalize=bool(prep.get("normalize", True)))

    def prepare(self, modality: str, raw: Any) -> torch.Tensor | str:
        if modality == "face":
            return self.face(raw)
        if modality == "video":
            return self.video(raw)
        if modality == "voice":
            wave, sr = raw
            return self.voice(wave, sr)
        if modality == "text":
            return self.text(raw)
        raise ValueError(f"unknown modality {modality!r}; one of {list(MODALITIES)}")


def prepare(modality: str, raw: Any, preprocessing: dict[str, Any] | None) -> torch.Tensor | str:
    """Raw media -> the model input of ``modality`` (see the module docstring).

    ``preprocessing`` is the checkpoint's ``{modality: dict}`` (or that modality's dict);
    ``raw`` is a face crop, video crops ``[T, S, S, 3]``, ``(wave, sr)`` or a string.
    """
    prep = preprocessing or {}
    if modality not in prep:
        prep = {modality: modality_prep(modality, prep)}
    return Preprocessor(prep).prepare(modality, raw)
