"""Face detectors by name (:func:`build_detector`, ``faces.detector=``): MTCNN (default,
:mod:`emomm.faces.mtcnn`), OpenCV Haar cascade (:mod:`emomm.faces.haar`), BlazeFace
(:mod:`emomm.faces.blazeface`), and the two that need no model: ``none`` (already cropped)
and ``given`` boxes (``<file>.faces.json`` sidecars). The interface is :mod:`emomm.faces.base`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from emomm.faces.base import FaceDetector, Faces
from emomm.faces.blazeface import BlazeFaceDetector
from emomm.faces.haar import HaarDetector
from emomm.faces.mtcnn import MTCNNDetector
from emomm.utils.atomic import atomic_write_json

DETECTORS = ("mtcnn", "haar", "blazeface", "none", "given")


class WholeFrameDetector(FaceDetector):
    """``none``: the data is already cropped; the whole frame is the face."""

    kind = "none"

    def _detect(self, frames, source, frame_indices):
        h, w = frames.shape[1:3]
        box = np.array([[0, 0, w, h]], np.float32)
        return [Faces(box.copy(), np.ones(1, np.float32), None) for _ in range(len(frames))]


def sidecar_path(video: str | Path) -> Path:
    """Where :class:`GivenBoxDetector` looks for a file's boxes: ``<file>.faces.json``."""
    video = Path(video)
    return video.with_name(video.name + ".faces.json")


def write_sidecar(video: str | Path, boxes: np.ndarray, landmarks: np.ndarray | None = None) -> Path:
    """Write known boxes ``[num_frames, 4]`` (x1, y1, x2, y2 per decoded frame) next to a file."""
    path = sidecar_path(video)
    payload: dict[str, Any] = {"boxes": np.asarray(boxes, float).round(3).tolist()}
    if landmarks is not None:
        payload["landmarks"] = np.asarray(landmarks, float).round(3).tolist()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, payload, indent=None)
    return path


class GivenBoxDetector(FaceDetector):
    """Boxes known in advance (synthetic data, annotated corpora).

    Boxes come from ``boxes_fn(source, frame_indices) -> [N, 4]`` when given, else from the
    sidecar file ``<source>.faces.json`` (``{"boxes": [[x1, y1, x2, y2], ...]}`` indexed by
    decoded frame number, ``null`` for a frame without a face; optional ``landmarks``).
    """

    kind = "given"

    def __init__(self, boxes_fn: Callable[[str, Sequence[int]], np.ndarray] | None = None) -> None:
        super().__init__(warn_after=0)  # frames without a box are the data's own say
        self.boxes_fn = boxes_fn

    def _detect(self, frames, source, frame_indices):
        if frame_indices is None:
            frame_indices = range(len(frames))
        landmarks = None
        if self.boxes_fn is not None:
            boxes = [np.asarray(b, np.float32) if b is not None else None
                     for b in self.boxes_fn(source, list(frame_indices))]
        else:
            if source is None:
                raise ValueError("faces.detector=given needs the source file of the frames")
            path = sidecar_path(source)
            if not path.is_file():
                raise FileNotFoundError(f"{source}: faces.detector=given but no box file {path} "
                                        "(write one with emomm.faces.write_sidecar, or use another detector)")
            data = json.loads(path.read_text())
            allb, alll = data["boxes"], data.get("landmarks")
            boxes = [np.asarray(allb[i], np.float32) if i < len(allb) and allb[i] is not None else None
                     for i in frame_indices]
            if alll is not None:
                landmarks = [np.asarray(alll[i], np.float32) if i < len(alll) and alll[i] is not None
                             else None for i in frame_indices]
        out = []
        for j, b in enumerate(boxes):
            if b is None or not np.all(np.isfinite(b)):
                out.append(Faces.empty())
                continue
            lm = landmarks[j][None] if landmarks is not None and landmarks[j] is not None else None
            out.append(Faces(b.reshape(1, 4), np.ones(1, np.float32), lm))
        return out


def detector_from_config(detector: str, sections: dict[str, Any] | None = None) -> FaceDetector:
    """The detector ``detector`` with its section of ``sections`` (``{"mtcnn": {...},
    "blazeface": {...}}``, as ``faces.*`` / ``predictor.*`` in the configs) as options; an
    option set to None keeps the detector's default (made for any frame size)."""
    options = dict((sections or {}).get(detector) or {})
    return build_detector(detector, **{k: v for k, v in options.items() if v is not None})


def build_detector(detector: str = "mtcnn", **options: Any) -> FaceDetector:
    """A detector by name; ``options`` are that detector's keyword arguments."""
    if detector == "mtcnn":
        return MTCNNDetector(**options)
    if detector == "haar":
        return HaarDetector(**options)
    if detector == "blazeface":  # MediaPipe's model on ai-edge-litert (emomm.faces.blazeface)
        return BlazeFaceDetector(**options)
    if detector == "none":
        return WholeFrameDetector()
    if detector == "given":
        return GivenBoxDetector(**options)
    raise ValueError(f"faces.detector={detector!r} is not one of {list(DETECTORS)}")
