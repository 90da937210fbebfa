"""Prediction results: plain dataclasses; ``to_dict()`` gives JSON-ready values.

``probs`` are lists of per-class probabilities in ``label_names`` order; ``modality_probs``
(multimodal checkpoints) holds each modality's own ("simple") prediction beside the fused one.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def plain(x: Any) -> Any:
    """numpy / torch values (nested) -> Python lists, floats and ints."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    return x


class _Result:
    def to_dict(self) -> dict[str, Any]:
        return plain(self)


def top(probs, label_names: list[str]) -> tuple[str, float]:
    i = int(np.argmax(probs))
    return label_names[i], float(probs[i])


@dataclass
class FaceResult(_Result):
    """One face: ``box`` x1, y1, x2, y2 (pixels), ``landmarks`` [5, 2] (eyes, nose, mouth
    corners) when the detector gives them, the detector's ``detector_score``, class ``probs``
    and the top class's ``confidence`` (the same names in the API, the JSONL and the CSV);
    ``mesh`` [468, 3] (x, y, z in image pixels) with ``Predictor(mesh=True)``, None when
    the mesh model finds no face there; ``modality_probs`` each stream's own prediction beside
    the fused ``probs`` (a ``[face, landmarks]`` checkpoint's heads, or each member of a pixel +
    landmark ensemble), without a stream the face lacks (no mesh found)."""
    box: list[float]
    detector_score: float
    probs: list[float]
    label: str
    confidence: float
    landmarks: list[list[float]] | None = None
    track_id: int | None = None
    mesh: list[list[float]] | None = None
    modality_probs: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class ImageResult(_Result):
    label_names: list[str]
    faces: list[FaceResult]
    width: int
    height: int
    source: str | None = None
    error: str | None = None   # e.g. "no face found"
    note: str | None = None    # e.g. "the 48x48 image is a face crop ...: used whole, not re-detected"


@dataclass
class WindowResult(_Result):
    """One window of a timeline: ``start``/``end`` seconds; ``track_id`` for per-face windows."""
    start: float
    end: float
    probs: list[float]
    label: str
    modality_probs: dict[str, list[float]] = field(default_factory=dict)
    track_id: int | None = None
    box: list[float] | None = None   # the track's mean box in the window


@dataclass
class PersonResult(_Result):
    """One tracked person (face track) of a video, summarised over the clip.

    ``id`` is the track id (the key of :attr:`TimelineResult.tracks`, whose windows are this
    person's per-window predictions, each with ``track_id == id``); ``start``/``end`` the
    times (s) of the first and last sampled frame the face is in and ``frames`` how many
    sampled frames it is in; ``n_windows`` the number of its windows; ``probs`` the mean of its
    windows' probabilities (each modality's own in ``modality_probs``), ``label`` and
    ``confidence`` their top class; ``thumb_t``/``thumb_box`` the time and box (x1, y1, x2,
    y2 pixels, inside the frame) of its largest sighting, for a thumbnail; ``boxes`` every
    sighting ``[t, x1, y1, x2, y2]`` (s, pixels inside the frame; 1 ms, 0.1 px), one per
    sampled frame the face was detected in, in time order (what draws the person follows
    these, see :mod:`emomm.inference.people`)."""
    id: int
    start: float
    end: float
    frames: int
    n_windows: int
    probs: list[float]
    label: str
    confidence: float
    thumb_t: float
    thumb_box: list[float]
    modality_probs: dict[str, list[float]] = field(default_factory=dict)
    boxes: list[list[float]] = field(default_factory=list)


@dataclass
class TimelineResult(_Result):
    """A video or audio file: ``windows`` (the clip's timeline, one per window: for a video
    with faces, the mean over the people seen in that window, ``track_id`` None), ``people``
    (one :class:`PersonResult` per tracked face, largest share of the clip first) and
    ``tracks`` (per person id: that person's windows, each with its ``track_id`` and mean
    ``box``), ``audio`` (voice windows of a voice or audio-visual checkpoint), and the
    clip-level ``probs`` with each modality's own clip-level probabilities. A video's clip
    ``probs`` are the mean over every person's windows (each person weighted by how long it is
    seen, not only the longest track); an audio file's the mean over its windows. Without
    windows (no face, no speech) ``probs`` is empty, ``label`` None and ``error`` says why.
    ``brief_tracks``: face tracks too brief to be a person (``Predictor(min_person_frames=)``:
    a false detection, a one-frame fragment), left out of ``tracks``, ``people`` and the clip."""
    kind: str                         # "video" | "audio"
    label_names: list[str]
    duration: float
    probs: list[float]                # [] (and label None) when nothing could be predicted
    label: str | None
    windows: list[WindowResult]
    modality_probs: dict[str, list[float]] = field(default_factory=dict)
    tracks: dict[int, list[WindowResult]] = field(default_factory=dict)
    audio: list[WindowResult] = field(default_factory=list)
    source: str | None = None
    error: str | None = None
    people: list[PersonResult] = field(default_factory=list)
    brief_tracks: int = 0

    def to_dict(self) -> dict[str, Any]:
        """As a plain dict; an audio file has no people, so no ``people`` or ``brief_tracks`` key."""
        d = plain(self)
        if self.kind == "audio":
            d.pop("people", None)
            d.pop("brief_tracks", None)
        return d


@dataclass
class TextResult(_Result):
    text: str
    label_names: list[str]
    probs: list[float]
    label: str
    confidence: float


@dataclass
class SampleResult(_Result):
    """One multimodal sample: the fused prediction, each modality's own, what was present."""
    label_names: list[str]
    probs: list[float]
    label: str
    modality_probs: dict[str, list[float]]
    present: list[str]
