"""One face crop per frame: detection, choice of face, missing-face policy, margin, alignment.

:class:`FaceCropper` runs its detector once over all frames of a clip (the detector batches
them), keeps one face per frame (the largest, or the most confident), fills frames without
a face by policy, and cuts square crops of ``size`` pixels:

* the crop is centred on the box, its side ``max(w, h) * (1 + margin)``; parts outside the
  frame are black (the face keeps its aspect ratio and position);
* ``align``: with landmarks (MTCNN), the frame is rotated about the box centre so the
  eyes lie on a horizontal line before cropping;
* ``missing``: ``reuse`` the box of the nearest earlier frame with a face (the nearest
  later one for leading frames), ``drop`` the frame, or ``mark`` it (kept as a black crop,
  ``found=False``). Whatever the policy, the frames without a face are counted.

Detector ``none`` (data already cropped) takes each whole frame, without margin, resized
to ``size x size`` (stretched when the frames are not square).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import cv2
import numpy as np

from emomm.faces.base import FaceDetector, Faces
from emomm.faces.detectors import build_detector

log = logging.getLogger(__name__)

SELECT = ("largest", "confident")
MISSING = ("reuse", "drop", "mark")


@dataclass
class ClipCrops:
    """Crops of one clip (or one still image, T = 1)."""
    crops: np.ndarray          # [T, S, S, 3] uint8 RGB
    boxes: np.ndarray          # [T, 4] float32 box used (NaN when marked missing)
    scores: np.ndarray         # [T] float32 detector score (0 where no face was found)
    landmarks: np.ndarray      # [T, 5, 2] float32 (NaN when unknown)
    found: np.ndarray          # [T] bool: the detector found a face in this very frame
    frame_index: np.ndarray    # [T] decoded frame number
    stats: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.crops)


def box_area(b: np.ndarray) -> np.ndarray:
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def eye_angle(landmarks: np.ndarray) -> float:
    """Angle in degrees of the line from the left eye to the right eye (image coordinates)."""
    (lx, ly), (rx, ry) = landmarks[0], landmarks[1]
    return math.degrees(math.atan2(ry - ly, rx - lx))


def crop_face(frame: np.ndarray, box: Sequence[float], size: int, margin: float = 0.0,
              angle: float = 0.0, square: bool = True) -> np.ndarray:
    """Cut a ``size x size`` crop of ``frame`` around ``box`` (x1, y1, x2, y2).

    The crop is centred on the box; its side is the box's larger side times ``1 + margin``
    (with ``square=False`` each side is scaled separately and the crop is stretched).
    ``angle`` (degrees) rotates the frame about the box centre first, so a face whose eye
    line has that angle comes out level. Outside the frame is black.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    if square:
        w = h = max(w, h)
    w, h = w * (1.0 + margin), h * (1.0 + margin)
    # Downscaling goes through an area resize (no aliasing); the warp then runs at the crop's
    # native resolution.
    native = max(w, h) > size
    out_w, out_h = (max(1, int(round(w))), max(1, int(round(h)))) if native else (size, size)
    sx, sy = out_w / w, out_h / h
    a = math.radians(angle)
    cos, sin = math.cos(a), math.sin(a)
    # Output pixel (u, v) samples the frame at centre + R(angle) @ offset, where offset is the
    # pixel's distance from the crop centre in frame units (OpenCV puts pixel i at i + 0.5).
    m_inv = np.array([[cos / sx, -sin / sy, 0.0], [sin / sx, cos / sy, 0.0]], np.float64)
    m_inv[:, 2] = np.array([cx - 0.5, cy - 0.5]) + m_inv[:, :2] @ [0.5 - out_w / 2.0, 0.5 - out_h / 2.0]
    crop = cv2.warpAffine(frame, m_inv, (out_w, out_h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if (out_w, out_h) != (size, size):
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    if crop.ndim == 2:
        crop = crop[..., None]
    return crop


class FaceCropper:
    """Detector + the choice of one face per frame + crop geometry (see the module docstring).

    Args:
        detector: a :class:`FaceDetector` or a detector name (``mtcnn``, ``haar``, ``none``,
            ``given``) built with ``detector_options``.
        size: side of the stored crops in pixels (models resize them to their input size).
        margin: context added around the box, as a fraction of its side.
        select: ``largest`` box or most ``confident`` when a frame has several faces.
        align: level the eye line (needs landmarks: MTCNN, or given boxes with landmarks).
        missing: ``reuse`` | ``drop`` | ``mark`` for frames without a face.
        min_score: faces scored below this are ignored.
    """

    def __init__(self, detector: FaceDetector | str = "mtcnn", size: int = 112, margin: float = 0.2,
                 select: str = "largest", align: bool = False, missing: str = "reuse",
                 min_score: float = 0.0, detector_options: dict[str, Any] | None = None) -> None:
        if isinstance(detector, str):
            detector = build_detector(detector, **(detector_options or {}))
        if select not in SELECT:
            raise ValueError(f"faces.select={select!r} is not one of {list(SELECT)}")
        if missing not in MISSING:
            raise ValueError(f"faces.missing={missing!r} is not one of {list(MISSING)}")
        if size < 8:
            raise ValueError(f"faces.size={size} is too small (>= 8 pixels)")
        if margin < 0:
            raise ValueError(f"faces.margin={margin} must be >= 0")
        if align and detector.kind in ("haar", "none"):
            log.warning("faces.align=true has no effect with faces.detector=%s (no landmarks)", detector.kind)
        self.detector = detector
        self.size, self.margin, self.select = int(size), float(margin), select
        self.align, self.missing, self.min_score = bool(align), missing, float(min_score)

    def settings(self) -> dict[str, Any]:
        """Everything that changes the crops: the crop cache keys on it."""
        out = dict(self.detector.settings())
        out.update(size=self.size, select=self.select, missing=self.missing, min_score=self.min_score)
        if self.detector.kind != "none":
            out.update(margin=self.margin, align=self.align)
        return out

    def _choose(self, faces: Faces) -> int | None:
        ok = np.flatnonzero(faces.scores >= self.min_score) if len(faces) else np.zeros(0, int)
        if ok.size == 0:
            return None
        key = box_area(faces.boxes[ok]) if self.select == "largest" else faces.scores[ok]
        return int(ok[int(np.argmax(key))])

    def crop_frames(self, frames: np.ndarray | Sequence[np.ndarray], source: str | None = None,
                    frame_indices: Sequence[int] | None = None) -> ClipCrops:
        """Crops of all ``frames`` (RGB uint8, one size), detector called once."""
        frames = np.asarray(frames) if not isinstance(frames, np.ndarray) else frames
        if frames.ndim == 3:
            frames = frames[None]
        t = len(frames)
        idx = np.asarray(frame_indices if frame_indices is not None else np.arange(t))
        detections = self.detector.detect(frames, source=source, frame_indices=idx.tolist())
        boxes = np.full((t, 4), np.nan, np.float32)
        scores = np.zeros(t, np.float32)
        lms = np.full((t, 5, 2), np.nan, np.float32)
        found = np.zeros(t, bool)
        for i, faces in enumerate(detections):
            j = self._choose(faces)
            if j is None:
                continue
            found[i], boxes[i], scores[i] = True, faces.boxes[j], faces.scores[j]
            if faces.landmarks is not None:
                lms[i] = faces.landmarks[j]
        n_found = int(found.sum())
        stats = {"frames": t, "faces_found": n_found, "frames_missing": t - n_found,
                 "frames_reused": 0, "frames_dropped": 0, "no_face": n_found == 0}
        keep = np.ones(t, bool)
        if 0 < n_found < t:
            if self.missing == "reuse":
                have = np.flatnonzero(found)
                for i in np.flatnonzero(~found):
                    before = have[have < i]
                    src = before[-1] if before.size else have[have > i][0]
                    boxes[i], lms[i] = boxes[src], lms[src]
                stats["frames_reused"] = t - n_found
            elif self.missing == "drop":
                keep = found.copy()
                stats["frames_dropped"] = t - n_found
        crops = np.zeros((t, self.size, self.size, 3), np.uint8)
        margin = 0.0 if self.detector.kind == "none" else self.margin
        for i in np.flatnonzero(keep):
            if not np.all(np.isfinite(boxes[i])):
                continue  # marked missing (or a clip without any face): a black crop
            angle = eye_angle(lms[i]) if self.align and np.all(np.isfinite(lms[i])) else 0.0
            crops[i] = crop_face(frames[i], boxes[i], self.size, margin, angle,
                                 square=self.detector.kind != "none" or frames.shape[1] == frames.shape[2])
        if n_found == 0 and self.missing == "drop":
            keep[:] = False
            stats["frames_dropped"] = t
        return ClipCrops(crops[keep], boxes[keep], scores[keep], lms[keep], found[keep], idx[keep], stats)

