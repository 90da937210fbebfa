"""A dense face mesh per face: MediaPipe's face-landmark model (468 points) on ai-edge-litert.

The model (1.2 MB, Apache-2.0) ships inside the same mediapipe 0.10.21 wheel as BlazeFace;
``make install`` (or ``python -m emomm.utils.wheel_models fetch facemesh``) downloads the
wheel without installing it, extracts ``face_landmark.tflite`` into ``.cache/models/mediapipe/``
and checks its SHA-256 (:data:`emomm.utils.wheel_models.FACEMESH`). The wheel's 478-point
``face_landmark_with_attention.tflite`` (irises) needs MediaPipe's own TFLite ops, which
ai-edge-litert does not have, so emomm uses the 468-point model.

Model: input ``[N, 192, 192, 3]`` RGB in [0, 1]; outputs 468 x (x, y, z) in input pixels
(z: depth relative to the face's centre, same scale as x, smaller = nearer the camera) and a
face-presence logit. It expects what MediaPipe's graph feeds it: the detector's face box
enlarged 1.5x into a square, rotated so the eyes are level (:func:`mesh_crop` cuts that
crop from a full image for any detector's box, and maps points back). A crop of another
geometry (a tight FER2013 face, a ``faces.margin`` crop) still works, less well: a face
filling the whole crop is often not "present" (see the mesh benchmark's note in
``experiments/log/``).

    mesh = FaceMesh()
    points = mesh(crops)                       # per crop [468, 3] in crop pixels, or None
    points = mesh.on_image(rgb, faces.boxes, faces.landmarks)   # in image pixels
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from emomm.faces.crop import crop_face, eye_angle
from emomm.faces.litert import LiteRTModel
from emomm.utils.wheel_models import FACEMESH

#: points of the mesh (the 468-point model; x, y, z each)
MESH_POINTS = 468
#: side of the model's input in pixels
INPUT_SIZE = 192
#: the face box is enlarged this much into the crop the model expects (MediaPipe's 1.5x)
CROP_SCALE = 1.5


def default_model_path() -> Path:
    return FACEMESH.default_path()


def missing_model_message(path: Path) -> str:
    return (f"face mesh model {path} is missing: run `make install` (or `python -m "
            "emomm.utils.wheel_models fetch facemesh`), which extracts it from the mediapipe 0.10.21 wheel")


@dataclass(frozen=True)
class CropTransform:
    """Where a crop lies in its image: ``matrix`` ``[2, 3]`` maps crop pixel coordinates
    ``(x, y, 1)`` to image pixel coordinates (continuous: pixel ``i`` covers ``[i, i + 1)``);
    ``scale`` is image pixels per crop pixel."""

    matrix: np.ndarray
    scale: float

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Points ``[P, 2]`` or ``[P, 3]`` in crop pixels -> the same in image pixels (z is
        scaled like x and y, so it stays in the same unit)."""
        pts = np.asarray(points, np.float64)
        out = pts.copy()
        out[:, :2] = pts[:, :2] @ self.matrix[:, :2].T + self.matrix[:, 2]
        if pts.shape[1] > 2:
            out[:, 2:] = pts[:, 2:] * self.scale
        return out.astype(np.float32)


def mesh_crop(image: np.ndarray, box: Sequence[float], keypoints: np.ndarray | None = None,
              size: int = INPUT_SIZE, scale: float = CROP_SCALE) -> tuple[np.ndarray, CropTransform]:
    """The crop the mesh model expects, from a full RGB ``image`` ``[H, W, 3]`` and a face
    ``box`` (x1, y1, x2, y2) of any detector: a square of ``scale`` x the box's longer side
    around its centre, rotated so the eyes are level when ``keypoints`` (emomm's 5-point
    layout ``[5, 2]``: eye on the image left first) are given, resized to ``size``. Returns
    ``(crop [size, size, 3] uint8, transform)``; outside the image is black."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1, 1.0) * scale
    angle = eye_angle(keypoints) if keypoints is not None and np.isfinite(keypoints[:2]).all() else 0.0
    crop = crop_face(image, box, size, scale - 1.0, angle)
    # crop_face samples image point centre + R(angle) @ (q - size / 2) * side / size at crop point q
    s, a = side / size, math.radians(angle)
    lin = s * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    centre = np.array([(x1 + x2) / 2.0, (y1 + y2) / 2.0])
    matrix = np.concatenate([lin, (centre - lin @ [size / 2.0, size / 2.0])[:, None]], 1)
    return crop, CropTransform(matrix, s)


def as_rgb(crop: np.ndarray) -> np.ndarray:
    """A uint8 crop ``[H, W]``, ``[H, W, 1]`` (grayscale, e.g. FER2013) or ``[H, W, 3]`` -> RGB
    ``[H, W, 3]``."""
    c = np.asarray(crop)
    if c.dtype != np.uint8:
        raise ValueError(f"the face mesh takes uint8 crops, got {c.dtype}")
    if c.ndim == 2:
        c = c[..., None]
    if c.ndim != 3 or c.shape[2] not in (1, 3) or min(c.shape[:2]) < 1:
        raise ValueError(f"the face mesh takes crops [H, W, 3] or grayscale [H, W(, 1)], got {c.shape}")
    return np.repeat(c, 3, axis=2) if c.shape[2] == 1 else c


def model_input(crop: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """One RGB crop -> ``(input [192, 192, 3] float32 in [0, 1], side, pad_x, pad_y)``: a crop
    that is not square is padded (black, centred) to its longer side first, so the face keeps
    its proportions; a point ``p`` of the input lies at ``p * side / 192 - pad`` in the crop."""
    h, w = crop.shape[:2]
    side = max(h, w)
    px, py = (side - w) // 2, (side - h) // 2
    if (h, w) != (side, side):
        crop = cv2.copyMakeBorder(crop, py, side - h - py, px, side - w - px, cv2.BORDER_CONSTANT, value=0)
    if side != INPUT_SIZE:
        crop = cv2.resize(crop, (INPUT_SIZE, INPUT_SIZE),
                          interpolation=cv2.INTER_AREA if side > INPUT_SIZE else cv2.INTER_LINEAR)
    return crop.astype(np.float32) / 255.0, float(side), float(px), float(py)


class FaceMesh:
    """Args:
        model_path: the ``.tflite`` file (default ``.cache/models/mediapipe/face_landmark.tflite``).
        threads: interpreter threads.
        min_presence: a crop whose face-presence score (sigmoid of the model's logit) is
            below this has no mesh (MediaPipe's default 0.5).
        batch_size: crops per interpreter call.
    """

    def __init__(self, model_path: str | Path | None = None, threads: int = 1, min_presence: float = 0.5,
                 batch_size: int = 32) -> None:
        self.model_path = Path(model_path).expanduser() if model_path else default_model_path()
        if not self.model_path.is_file():
            raise FileNotFoundError(missing_model_message(self.model_path))
        self.min_presence, self.batch_size = float(min_presence), max(1, int(batch_size))
        self.net = LiteRTModel(self.model_path, threads)

    def run(self, crops: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Crops (any size; RGB or grayscale uint8) -> ``(points [N, 468, 3] float32 in each
        crop's pixels, presence [N] float32 in [0, 1])``, whatever the presence."""
        pts, pres = np.zeros((len(crops), MESH_POINTS, 3), np.float32), np.zeros(len(crops), np.float32)
        for i in range(0, len(crops), self.batch_size):
            prepared = [model_input(as_rgb(c)) for c in crops[i:i + self.batch_size]]
            out = self.net(np.stack([p[0] for p in prepared]))
            raw, logit = out["conv2d_21"].reshape(len(prepared), MESH_POINTS, 3), out["conv2d_31"].reshape(-1)
            for j, (_, side, px, py) in enumerate(prepared):
                k = side / INPUT_SIZE
                pts[i + j] = raw[j] * k - np.array([px, py, 0.0], np.float32)
            pres[i:i + len(prepared)] = 1.0 / (1.0 + np.exp(-np.clip(logit, -80.0, 80.0)))
        return pts, pres

    def __call__(self, crops: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        """Per crop ``[468, 3]`` float32 (x, y in the crop's pixels, z in the same scale as x),
        or None when the model's face-presence score is below ``min_presence``."""
        pts, pres = self.run(crops)
        return [p if s >= self.min_presence else None for p, s in zip(pts, pres)]

    def on_image(self, image: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray | None = None
                 ) -> list[np.ndarray | None]:
        """Meshes of the faces ``boxes`` ``[K, 4]`` (with 5-point ``landmarks`` ``[K, 5, 2]``
        when the detector gives them: the crops are then rotated upright) of one RGB image,
        in image pixels: per face ``[468, 3]`` or None."""
        cut = [mesh_crop(image, b, None if landmarks is None else landmarks[j]) for j, b in enumerate(boxes)]
        meshes = self([c for c, _ in cut]) if cut else []
        return [None if m is None else t.to_image(m) for m, (_, t) in zip(meshes, cut)]

    def settings(self) -> dict:
        return {"mesh_model_sha256": FACEMESH.sha256, "min_presence": self.min_presence}
