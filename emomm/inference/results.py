"""Prediction results: plain dataclasses; ``to_dict()`` gives JSON-ready dicts.

Probabilities are ``{label: p}`` dicts in the model's label order. For multimodal
checkpoints ``probs`` is the fused ("hybrid") prediction and ``modality_probs`` each
modality's own head ("simple" prediction).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np


def probs_dict(label_names: Sequence[str], probs: Any) -> dict[str, float]:
    return {n: round(float(p), 6) for n, p in zip(label_names, np.asarray(probs, np.float64).ravel())}


def top_label(probs: dict[str, float]) -> str | None:
    return max(probs, key=probs.get) if probs else None


class _Result:
    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, (np.floating, float)):
        return None if not np.isfinite(x) else round(float(x), 6)
    if isinstance(x, np.integer):
        return int(x)
    return x


@dataclass
class FacePrediction(_Result):
    """One face in an image: box (x1, y1, x2, y2 pixels), 5 landmarks (eyes, nose, mouth
    corners; None without MTCNN), detector score, probabilities."""
    box: list[float]
    label: str
    probs: dict[str, float]
    score: float = 1.0
    landmarks: list[list[float]] | None = None


@dataclass
class ImagePrediction(_Result):
    source: str
    faces: list[FacePrediction] = field(default_factory=list)
    error: str | None = None
    kind: str = "image"

    @property
    def label(self) -> str | None:
        return self.faces[0].label if self.faces else None


@dataclass
class Window(_Result):
    """One time window of a timeline (seconds)."""
    start: float
    end: float
    label: str
    probs: dict[str, float]
    modality_probs: dict[str, dict[str, float]] = field(default_factory=dict)
    box: list[float] | None = None


@dataclass
class AudioPrediction(_Result):
    """Sliding windows of the model's clip duration, and the overall result (softmax of the
    mean window logits)."""
    source: str
    duration: float
    windows: list[Window] = field(default_factory=list)
    label: str | None = None
    probs: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    kind: str = "audio"


@dataclass
class FaceTrack(_Result):
    """The timeline of one tracked face (stable ``track_id``), clip-level mean of its windows."""
    track_id: int
    windows: list[Window] = field(default_factory=list)
    label: str | None = None
    probs: dict[str, float] = field(default_factory=dict)
    frames: int = 0


@dataclass
class VideoPrediction(_Result):
    """Per-face timelines, the audio track's timeline (voice / audio-visual checkpoints), the
    fused audio-visual timeline (AV checkpoints) and the clip-level result (mean over windows)."""
    source: str
    duration: float
    fps: float
    tracks: list[FaceTrack] = field(default_factory=list)
    audio: AudioPrediction | None = None
    fused: list[Window] = field(default_factory=list)
    label: str | None = None
    probs: dict[str, float] = field(default_factory=dict)
    modality_probs: dict[str, dict[str, float]] = field(default_factory=dict)
    error: str | None = None
    kind: str = "video"


@dataclass
class TextPrediction(_Result):
    text: str
    label: str
    probs: dict[str, float]
    cleaned: str = ""
    source: str | None = None
    error: str | None = None
    kind: str = "text"


@dataclass
class SamplePrediction(_Result):
    """One multimodal sample: fused probabilities over the modalities given, and each one's own."""
    label: str
    probs: dict[str, float]
    modality_probs: dict[str, dict[str, float]] = field(default_factory=dict)
    present: list[str] = field(default_factory=list)
    kind: str = "sample"
