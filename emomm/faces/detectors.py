"""Face detectors: MTCNN (default), OpenCV Haar cascade, given boxes, and none.

A detector maps a batch of RGB uint8 frames ``[N, H, W, 3]`` (one video clip, or images
of one size) to one :class:`Faces` per frame: every face found, with its score and, for
MTCNN, five landmarks. Choosing one face per frame, margins and crops are the
:class:`~emomm.faces.crop.FaceCropper`'s job. ``settings()`` is what the crop cache keys
on: two detectors with equal settings give equal boxes.
"""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from emomm.utils.atomic import atomic_write_json

log = logging.getLogger(__name__)

DETECTORS = ("mtcnn", "haar", "blazeface", "none", "given")


@dataclass
class Faces:
    """All faces found in one frame."""
    boxes: np.ndarray                    # [K, 4] float32 x1, y1, x2, y2 (pixels)
    scores: np.ndarray                   # [K] float32 (1.0 when the detector has none)
    landmarks: np.ndarray | None = None  # [K, 5, 2]: left eye, right eye, nose, mouth corners

    def __len__(self) -> int:
        return len(self.boxes)

    @staticmethod
    def empty() -> "Faces":
        return Faces(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), None)


class FaceDetector:
    """Base class. ``kind`` names the detector; ``calls`` counts ``detect`` calls."""

    kind = "base"

    def __init__(self) -> None:
        self.calls = 0
        self.frames_seen = 0

    def detect(self, frames: np.ndarray | Sequence[np.ndarray], source: str | None = None,
               frame_indices: Sequence[int] | None = None) -> list[Faces]:
        frames = _as_batch(frames)
        self.calls += 1
        self.frames_seen += len(frames)
        return self._detect(frames, source, frame_indices)

    def _detect(self, frames: np.ndarray, source: str | None,
                frame_indices: Sequence[int] | None) -> list[Faces]:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        return {"detector": self.kind}


def _as_batch(frames) -> np.ndarray:
    if isinstance(frames, (list, tuple)):
        shapes = {f.shape for f in frames}
        if len(shapes) > 1:
            raise ValueError(f"a detector batch needs frames of one size, got {sorted(shapes)}; "
                             "group the frames by size first")
        frames = np.stack(frames) if frames else np.zeros((0, 1, 1, 3), np.uint8)
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"detectors take RGB uint8 frames [N, H, W, 3], got {frames.dtype} "
                         f"{frames.shape}")
    return frames


class MTCNNDetector(FaceDetector):
    """facenet-pytorch's MTCNN, batched over frames (see :mod:`emomm.faces.mtcnn`).

    Args:
        min_face_frac: smallest face searched for, as a fraction of the frame's shorter side
            (faster: the finest, costliest pyramid scales only find small faces).
        min_face_px: smallest face in pixels; overrides ``min_face_frac`` when set. The
            effective size is never below facenet-pytorch's 20 px and is snapped down to a
            scale of its default pyramid, so the remaining scales (and boxes) are unchanged.
        thresholds: P/R/O-net score thresholds.
        batch_size: frames per network call (4-16 is fastest on CPU), lowered so that a
            call's largest pyramid level holds at most ``max_batch_pixels`` pixels.
        device: ``cpu`` or ``cuda``.
    """

    kind = "mtcnn"

    def __init__(self, min_face_frac: float = 0.2, min_face_px: float | None = None,
                 thresholds: Sequence[float] = (0.6, 0.7, 0.7), factor: float = 0.709,
                 batch_size: int = 8, max_batch_pixels: int = 250_000, device: str = "cpu") -> None:
        super().__init__()
        if not 0.0 <= min_face_frac < 1.0:
            raise ValueError(f"faces.min_face_frac={min_face_frac} must be in [0, 1)")
        self.min_face_frac, self.min_face_px = float(min_face_frac), min_face_px
        self.thresholds, self.factor = [float(t) for t in thresholds], float(factor)
        self.batch_size, self.device = max(1, int(batch_size)), device
        self.max_batch_pixels = int(max_batch_pixels)
        self._nets = None
        self._lock = threading.Lock()

    def __getstate__(self):  # picklable (DataLoader workers, spawn): the nets reload lazily
        state = dict(self.__dict__)
        state["_nets"], state["_lock"] = None, None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def nets(self):
        with self._lock:
            if self._nets is None:
                from emomm.faces.mtcnn import load_nets
                self._nets = load_nets(self.device)
        return self._nets

    def min_face(self, height: int, width: int) -> float:
        from emomm.faces.mtcnn import DEFAULT_MIN_FACE, snapped_min_face

        px = self.min_face_px if self.min_face_px else self.min_face_frac * min(height, width)
        return snapped_min_face(max(DEFAULT_MIN_FACE, float(px)), self.factor)

    def _detect(self, frames, source, frame_indices):
        from emomm.faces.mtcnn import detect_faces

        if len(frames) == 0:
            return []
        h, w = frames.shape[1:3]
        mf = self.min_face(h, w)
        # PNet's largest pyramid level decides the memory a call touches: bound the frames per
        # call so it stays cache-friendly (batching gains nothing once it spills).
        finest = (h * 12.0 / mf) * (w * 12.0 / mf)
        step = max(1, min(self.batch_size, int(self.max_batch_pixels // max(finest, 1.0))))
        out: list[Faces] = []
        for i in range(0, len(frames), step):
            for boxes, scores, points in detect_faces(frames[i: i + step], self.nets,
                                                      min_face_size=mf, thresholds=self.thresholds,
                                                      factor=self.factor, device=self.device):
                out.append(Faces(boxes, scores, points))
        return out

    def settings(self) -> dict[str, Any]:
        return {"detector": self.kind, "min_face_frac": self.min_face_frac,
                "min_face_px": self.min_face_px, "thresholds": self.thresholds, "factor": self.factor}


class HaarDetector(FaceDetector):
    """OpenCV's frontal-face Haar cascade: fast, no landmarks, less accurate than MTCNN.

    Scores are the cascade's level weights squashed to (0, 1) by a logistic function, which
    only serves to rank faces of one frame.
    """

    kind = "haar"

    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml", scale_factor: float = 1.1,
                 min_neighbors: int = 5, min_face_frac: float = 0.1) -> None:
        super().__init__()
        import cv2

        path = Path(cascade)
        if not path.is_file():
            path = Path(cv2.data.haarcascades) / cascade
        if not path.is_file():
            raise FileNotFoundError(f"faces.cascade={cascade}: no such file, nor in {cv2.data.haarcascades}")
        self.cascade_name, self.cascade_path = path.name, str(path)
        self.classifier = self._load()
        self.scale_factor, self.min_neighbors = float(scale_factor), int(min_neighbors)
        self.min_face_frac = float(min_face_frac)

    def _load(self):
        import cv2

        classifier = cv2.CascadeClassifier(self.cascade_path)
        if classifier.empty():
            raise ValueError(f"{self.cascade_path}: OpenCV could not load this Haar cascade")
        return classifier

    def __getstate__(self):  # cv2 classifiers do not pickle: reload from the file
        state = dict(self.__dict__)
        state["classifier"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.classifier = self._load()

    def _detect(self, frames, source, frame_indices):
        import cv2

        out = []
        for frame in frames:
            gray = cv2.equalizeHist(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
            side = max(1, int(self.min_face_frac * min(gray.shape)))
            rects, _, weights = self.classifier.detectMultiScale3(
                gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                minSize=(side, side), outputRejectLevels=True)
            if len(rects) == 0:
                out.append(Faces.empty())
                continue
            rects = np.asarray(rects, np.float32).reshape(-1, 4)
            boxes = np.stack([rects[:, 0], rects[:, 1], rects[:, 0] + rects[:, 2], rects[:, 1] + rects[:, 3]], 1)
            scores = 1.0 / (1.0 + np.exp(-np.asarray(weights, np.float32).reshape(-1)))
            out.append(Faces(boxes.astype(np.float32), scores.astype(np.float32), None))
        return out

    def settings(self) -> dict[str, Any]:
        return {"detector": self.kind, "cascade": self.cascade_name, "scale_factor": self.scale_factor,
                "min_neighbors": self.min_neighbors, "min_face_frac": self.min_face_frac}


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
        super().__init__()
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


def build_detector(detector: str = "mtcnn", **options: Any) -> FaceDetector:
    """A detector by name; ``options`` are that detector's keyword arguments."""
    if detector == "mtcnn":
        return MTCNNDetector(**options)
    if detector == "haar":
        return HaarDetector(**options)
    if detector == "blazeface":  # MediaPipe's model on ai-edge-litert (emomm.faces.blazeface)
        from emomm.faces.blazeface import BlazeFaceDetector
        return BlazeFaceDetector(**options)
    if detector == "none":
        return WholeFrameDetector()
    if detector == "given":
        return GivenBoxDetector(**options)
    raise ValueError(f"faces.detector={detector!r} is not one of {list(DETECTORS)}")
