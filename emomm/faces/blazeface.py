"""BlazeFace (MediaPipe's short-range face detector) on ai-edge-litert: ``faces=blazeface``.

The 230 KB model (Apache-2.0) ships inside the mediapipe 0.10.14-0.10.21 wheels, whose
dependencies (protobuf<5, numpy<2) do not fit emomm's stack. ``make models`` (part of
``make install``; or ``python -m emomm.faces.blazeface fetch``) downloads the 0.10.21 wheel
without installing it, extracts the ``.tflite`` file into ``.cache/models/mediapipe/`` and
checks its SHA-256. The network runs on ai-edge-litert's TFLite interpreter; the SSD anchor
decoding and the weighted non-maximum suppression that MediaPipe's graph does are here.

Model: input ``[1, 128, 128, 3]`` RGB in [-1, 1] (frames are letterboxed to a square first,
as MediaPipe does); outputs 896 anchors x (4 box + 6x2 keypoint) regressors and a score
logit. It is trained for faces within ~2 m of a camera (a face at least ~1/8 of the frame);
small faces in wide shots are MTCNN's job.

Landmarks: BlazeFace's six keypoints are (subject's) right eye, left eye, nose tip, mouth
centre, right and left ear tragion. emomm's 5-point layout (MTCNN's: eye on the image left,
eye on the image right, nose, mouth corner left, mouth corner right) is filled with the two
eyes, the nose tip, and mouth corners approximated as the mouth centre -/+ 0.4 x the
eye-to-eye vector (typical mouth width is ~0.8 of the inter-ocular distance); good enough
for eye-line alignment, which only uses the eyes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from emomm.faces.base import FaceDetector, Faces
from emomm.faces.litert import LiteRTModel
from emomm.utils.wheel_models import BLAZEFACE

MODEL_SHA256 = BLAZEFACE.sha256
INPUT_SIZE = 128


def default_model_path() -> Path:
    return BLAZEFACE.default_path()


def fetch_model(dest: Path | None = None, wheel: Path | None = None) -> Path:
    """Extract the BlazeFace model from the mediapipe wheel and verify its checksum (see
    :class:`emomm.utils.wheel_models.WheelModel`). Never installs mediapipe."""
    return BLAZEFACE.fetch(dest, wheel)


def ssd_anchors() -> np.ndarray:
    """The 896 anchor centres ``[896, 2]`` (x, y in [0, 1]) of MediaPipe's short-range
    options: strides 8, 16, 16, 16 on a 128 px input, two anchors per layer and cell (fixed
    size 1), layers of one stride sharing their grid."""
    out = []
    for stride, per_cell in ((8, 2), (16, 6)):
        n = INPUT_SIZE // stride
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], 1)
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray, iou: float = 0.3
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's ``WEIGHTED`` suppression: each kept detection is the score-weighted mean of
    the boxes and keypoints overlapping the best remaining one by more than ``iou``, with
    that best one's score."""
    order = np.argsort(-scores)
    boxes, scores, keypoints = boxes[order], scores[order], keypoints[order]
    kb, ks, kk = [], [], []
    alive = np.ones(len(boxes), bool)
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        group = alive & (box_iou(boxes[i], boxes) > iou)
        group[i] = True
        w = scores[group][:, None]
        kb.append((boxes[group] * w).sum(0) / w.sum())
        kk.append((keypoints[group] * w[:, :, None]).sum(0) / w.sum())
        ks.append(scores[i])
        alive &= ~group
    if not kb:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 6, 2), np.float32)
    return np.asarray(kb, np.float32), np.asarray(ks, np.float32), np.asarray(kk, np.float32)


def five_landmarks(kp: np.ndarray) -> np.ndarray:
    """BlazeFace keypoints ``[K, 6, 2]`` -> emomm's 5-point layout ``[K, 5, 2]`` (see module doc)."""
    a, b = kp[:, 0], kp[:, 1]
    swap = a[:, 0] > b[:, 0]                 # order the eyes by image x, as MTCNN does
    left = np.where(swap[:, None], b, a)
    right = np.where(swap[:, None], a, b)
    eye = right - left
    mouth = kp[:, 3]
    return np.stack([left, right, kp[:, 2], mouth - 0.4 * eye, mouth + 0.4 * eye], 1).astype(np.float32)


class BlazeFaceDetector(FaceDetector):
    """Args:
        model_path: the ``.tflite`` file (default: ``.cache/models/mediapipe/``).
        min_score: detection score threshold (MediaPipe's default 0.5).
        nms_iou: weighted-NMS overlap threshold (MediaPipe's 0.3).
        threads: TFLite interpreter threads.
    """

    kind = "blazeface"

    def __init__(self, model_path: str | None = None, min_score: float = 0.5, nms_iou: float = 0.3,
                 threads: int = 1) -> None:
        super().__init__()
        self.model_path = Path(model_path).expanduser() if model_path else default_model_path()
        if not self.model_path.is_file():
            raise FileNotFoundError(
                f"BlazeFace model {self.model_path} is missing: run `make models` (or `python -m "
                "emomm.faces.blazeface fetch`), which extracts it from the mediapipe wheel")
        self.min_score, self.nms_iou, self.threads = float(min_score), float(nms_iou), int(threads)
        self.anchors = ssd_anchors()
        self.net = LiteRTModel(self.model_path, self.threads, what="faces=blazeface")

    @staticmethod
    def letterbox(frame: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        """Pad to a centred square and resize to 128: ``(input, side, pad_x, pad_y)``."""
        import cv2

        h, w = frame.shape[:2]
        side = max(h, w)
        px, py = (side - w) // 2, (side - h) // 2
        sq = cv2.copyMakeBorder(frame, py, side - h - py, px, side - w - px, cv2.BORDER_CONSTANT, value=0)
        small = cv2.resize(sq, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA if side > 256
                           else cv2.INTER_LINEAR)
        return small.astype(np.float32) / 127.5 - 1.0, float(side), float(px), float(py)

    def decode(self, reg: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw outputs ``[896, 16]``, ``[896]`` -> boxes ``[N, 4]`` and keypoints ``[N, 6, 2]``
        in [0, 1] input coordinates, with scores, before suppression."""
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0)))
        keep = scores >= self.min_score
        reg, scores, anc = reg[keep] / INPUT_SIZE, scores[keep], self.anchors[keep]
        cx, cy = reg[:, 0] + anc[:, 0], reg[:, 1] + anc[:, 1]
        w, h = reg[:, 2], reg[:, 3]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
        kps = reg[:, 4:16].reshape(-1, 6, 2) + anc[:, None, :]
        return boxes, scores, kps

    def detect_one(self, frame: np.ndarray) -> Faces:
        x, side, px, py = self.letterbox(frame)
        out = self.net(x[None])
        reg, logits = out["regressors"][0], out["classificators"][0, :, 0]
        boxes, scores, kps = weighted_nms(*self.decode(reg, logits), iou=self.nms_iou)
        if len(boxes) == 0:
            return Faces.empty()
        h, w = frame.shape[:2]
        boxes = boxes * side - np.array([px, py, px, py], np.float32)
        boxes = np.clip(boxes, 0, [w, h, w, h]).astype(np.float32)
        kps = kps * side - np.array([px, py], np.float32)
        return Faces(boxes, scores, five_landmarks(kps))

    def _detect(self, frames: np.ndarray, source: str | None,
                frame_indices: Sequence[int] | None) -> list[Faces]:
        return [self.detect_one(f) for f in frames]

    def settings(self) -> dict[str, Any]:
        return {"detector": self.kind, "model_sha256": MODEL_SHA256, "min_score": self.min_score,
                "nms_iou": self.nms_iou}


def main(argv: list[str] | None = None) -> None:
    """``python -m emomm.faces.blazeface fetch [--wheel W] [--dest PATH]``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m emomm.faces.blazeface")
    p.add_argument("command", choices=["fetch"])
    p.add_argument("--wheel", type=Path, default=None, help="an already downloaded mediapipe wheel")
    p.add_argument("--dest", type=Path, default=None)
    a = p.parse_args(argv)
    path = fetch_model(a.dest, a.wheel)
    print(f"BlazeFace model: {path} (sha256 {MODEL_SHA256[:12]}..., {path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
