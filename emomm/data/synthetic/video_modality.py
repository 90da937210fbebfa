"""Synthetic face videos (``data=synthetic modality=video``), through real files and the crop cache.

Each sample is a short clip of the sample's synthetic face: the expression rises from
neutral to the sample's expression and falls back (``sin(pi * t)`` envelope), while the
head drifts, turns and nods. The clip is *written to a real video file* (MP4/H.264 by
default) with its known face boxes in a sidecar (``<file>.faces.json``), then decoded,
cropped and cached by :mod:`emomm.faces` exactly like a real dataset (detector ``given``
by default: the generator knows every box; ``none``, ``haar`` or ``mtcnn`` also work), and
finally transformed like any video sample. Files and crops are made once and reused.

Options (the top-level ``video:`` node): ``image_size``, ``in_chans``, ``mean``, ``std``,
``num_frames``, ``augment`` (training split), ``sampling`` (ignored: every written frame
is cached) and ``synthetic:`` with ``clip_frames``, ``fps``, ``render_size``, ``motion``,
``detector``, ``face_size`` (px of the cached face crops), ``margin``, ``container``, ``cache_dir``.

Audio-visual clips: when the synthetic data serves ``video`` and ``voice`` together, the
datamodule calls :meth:`SyntheticVideo.with_audio`; every clip file then also carries an audio
track (AAC in MP4, MP3 in FLV, Opus in WebM) holding ``synthesize_voice`` of the sample's voice
spec, and the voice input is decoded back from that file. The track is the whole utterance, so
it may run longer than the frames (as a real recording's audio may); these files live in their
own cache folder (the render key includes the audio rate).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emomm.data.pipelines.face_clips import pick_frames
from emomm.data.pipelines.transforms import FrameTransform
from emomm.data.synthetic.face_render import face_geometry, render_face
from emomm.data.synthetic.registry import register
from emomm.data.synthetic.spec import EXPRESSIONS, SampleSpec
from emomm.data.synthetic.voice_synth import synthesize_voice
from emomm.media.video import write_video
from emomm.faces.detectors import write_sidecar
from emomm.faces.crop_store import FaceCropStore

SYNTHETIC_DEFAULTS = {
    "clip_frames": 12, "fps": 12.0, "render_size": 64, "motion": 1.0, "detector": "given",
    "face_size": 64, "margin": 0.1, "container": "mp4", "cache_dir": ".cache/synthetic_video",
}
#: ``faces`` is what ``describe()`` stores; ``emomm.eval`` may pass it back in the node.
_VIDEO_KEYS = {"image_size", "in_chans", "mean", "std", "num_frames", "augment", "sampling", "synthetic", "faces"}
_RENDER_VERSION = 1


def frame_spec(spec: SampleSpec, t: float, motion: float = 1.0) -> SampleSpec:
    """The sample's face at time ``t`` in [0, 1]: expression ``sin(pi t)`` of the way from
    neutral to ``spec.expression``, head pose drifting around ``spec.pose``."""
    w = float(np.sin(np.pi * t))
    neutral = EXPRESSIONS["neutral"]
    expression = {k: neutral[k] + w * (v - neutral[k]) for k, v in spec.expression.items()}
    rng = np.random.default_rng([spec.seed, spec.index, 7])
    ph = rng.uniform(0, 2 * np.pi, 4)
    amp = motion * rng.uniform(0.5, 1.0, 4)
    pose = dict(spec.pose)
    pose["dx"] += 0.03 * amp[0] * np.sin(2 * np.pi * t + ph[0])
    pose["dy"] += 0.02 * amp[1] * np.sin(2 * np.pi * t + ph[1])
    pose["angle"] += 6.0 * amp[2] * np.sin(2 * np.pi * t + ph[2])
    pose["scale"] *= 1.0 + 0.04 * amp[3] * np.sin(2 * np.pi * t + ph[3])
    return dataclasses.replace(spec, expression=expression, pose=pose)


def render_clip(spec: SampleSpec, clip_frames: int, size: int, motion: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``[T, size, size]`` uint8 and face boxes ``[T, 4]`` (x1, y1, x2, y2)."""
    frames, boxes = [], []
    for i in range(clip_frames):
        s = frame_spec(spec, i / max(clip_frames - 1, 1), motion)
        frames.append(render_face(s, size))
        g = face_geometry(s, size)
        boxes.append([g["cx"] - g["half"], g["cy"] - g["half"], g["cx"] + g["half"], g["cy"] + g["half"]])
    return np.stack(frames), np.asarray(boxes, np.float32)


@register("video")
class SyntheticVideo:
    def __init__(self, options: dict[str, Any], train: bool) -> None:
        opts = dict(options or {})
        unknown = set(opts) - _VIDEO_KEYS
        if unknown:
            raise ValueError(f"unknown video options {sorted(unknown)}; known: {sorted(_VIDEO_KEYS)}")
        given = dict(opts.get("synthetic") or {})
        if "crop_size" in given:   # its name before 2026-12-06, still in older checkpoints
            given.setdefault("face_size", given.pop("crop_size"))
        syn = {**SYNTHETIC_DEFAULTS, **given}
        bad = set(syn) - set(SYNTHETIC_DEFAULTS)
        if bad:
            raise ValueError(f"unknown video.synthetic options {sorted(bad)}; known: {sorted(SYNTHETIC_DEFAULTS)}")
        self.syn, self.train = syn, train
        self.num_frames = opts.get("num_frames", 8)
        self.transform = FrameTransform(image_size=opts.get("image_size", 64), in_chans=opts.get("in_chans", 1),
                                        mean=opts.get("mean", 0.5), std=opts.get("std", 0.5), train=train,
                                        augment=opts.get("augment") if train else None)
        self.root = Path(syn["cache_dir"]).expanduser()
        self.audio_rate: int | None = None
        self._set_render_key()
        faces = {"detector": syn["detector"], "size": int(syn["face_size"]), "margin": float(syn["margin"]),
                 "missing": "reuse", "cache_dir": str(self.root / "crops"), "progress": False}
        self.store = FaceCropStore(faces, {"num_frames": int(syn["clip_frames"])})

    def _set_render_key(self) -> None:
        render = {k: self.syn[k] for k in ("clip_frames", "fps", "render_size", "motion", "container")}
        if self.audio_rate:  # keeps the key of silent clips as it was
            render["audio_rate"] = self.audio_rate
        self.render_key = hashlib.sha1(json.dumps({**render, "v": _RENDER_VERSION}, sort_keys=True).encode()).hexdigest()[:10]

    def with_audio(self, sample_rate: int) -> "SyntheticVideo":
        """Write clips with an audio track at ``sample_rate`` (see the module docstring)."""
        self.audio_rate = int(sample_rate)
        self._set_render_key()
        return self

    def video_path(self, spec: SampleSpec, audio_spec: SampleSpec | None = None) -> Path:
        name = f"{spec.index:07d}_{spec.emotion}"
        if self.audio_rate:  # the voice may express another emotion (data.reliability)
            name += f"_a{(audio_spec or spec).emotion}"
        return self.root / f"{self.render_key}" / f"s{spec.seed}" / f"{name}.{self.syn['container']}"

    def ensure_file(self, spec: SampleSpec, audio_spec: SampleSpec | None = None) -> Path:
        """Write the sample's clip (and its box sidecar) unless it exists; with
        :meth:`with_audio`, the clip's audio track is the voice of ``audio_spec`` (default
        ``spec``)."""
        path = self.video_path(spec, audio_spec)
        if not path.is_file():
            frames, boxes = render_clip(spec, int(self.syn["clip_frames"]), int(self.syn["render_size"]),
                                        float(self.syn["motion"]))
            audio = synthesize_voice(audio_spec or spec, self.audio_rate) if self.audio_rate else None
            write_sidecar(path, boxes)  # before the video: a video on disk always has its boxes
            write_video(path, frames, fps=float(self.syn["fps"]), audio=audio,
                        audio_rate=self.audio_rate or 16000)
        return path

    def __call__(self, spec: SampleSpec, audio_spec: SampleSpec | None = None) -> torch.Tensor:
        entry = self.store.get(self.ensure_file(spec, audio_spec))
        rng = np.random.default_rng([spec.seed, spec.index, int(torch.randint(0, 2**31, ()).item())]) \
            if self.train else None
        idx = pick_frames(len(entry.crops), self.num_frames, self.train, rng)
        return self.transform(entry.crops[idx])

    def describe(self) -> dict[str, Any]:
        return {**self.transform.describe(), "num_frames": self.num_frames,
                "sampling": {"num_frames": int(self.syn["clip_frames"])}, "faces": self.store.settings,
                "synthetic": {k: v for k, v in self.syn.items() if k != "cache_dir"}}
