"""BlazeFace (MediaPipe's face detectors) on ai-edge-litert: ``faces=blazeface``.

Two models (Apache-2.0) ship inside the mediapipe 0.10.21 wheel, whose dependencies
(protobuf<5, numpy<2) do not fit emomm's stack: short-range (230 KB, faces within ~2 m of
the camera) and full-range (677 KB, the wheel's sparse build: faces up to ~5 m, wide shots).
``make models`` (part of ``make install``; or ``python -m emomm.faces.blazeface fetch``)
downloads the wheel without installing it, extracts the ``.tflite`` files into
``.cache/models/mediapipe/`` and checks their SHA-256. The networks run on ai-edge-litert's
TFLite interpreter; the SSD anchor decoding and the weighted non-maximum suppression that
MediaPipe's graphs do are here.

Models: short-range takes ``[1, 128, 128, 3]``, full-range ``[1, 192, 192, 3]``, RGB in
[-1, 1] (frames are letterboxed to a square first, as MediaPipe does); outputs one
(4 box + 6x2 keypoint) regressor and a score logit per anchor (896 and 2304). ``range``
picks one: ``short`` (close-ups, webcams), ``full`` (wide shots), or ``auto`` (default):
short-range first, and full-range too when short-range finds nothing or only faces smaller
than ``close_frac`` of the frame's shorter side (a wide shot), the two merged. Both see the
whole frame scaled to their input, so neither finds faces much below ~1/20 (full) or ~1/10
(short) of the frame's longer side: small faces in large frames are MTCNN's job
(``faces.mtcnn.min_face_px``); ``benchmarks/detect_footage.py`` measures where each stops.

Landmarks: BlazeFace's six keypoints are (subject's) right eye, left eye, nose tip, mouth
centre, right and left ear tragion. emomm's 5-point layout (MTCNN's: eye on the image left,
eye on the image right, nose, mouth corner left, mouth corner right) is filled with the two
eyes, the nose tip, and mouth corners approximated as the mouth centre -/+ 0.4 x the
eye-to-eye vector (typical mouth width is ~0.8 of the inter-ocular distance); good enough
for eye-line alignment, which only uses the eyes.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from emomm.faces.base import FaceDetector, Faces
from emomm.faces.litert import LiteRTModel
from emomm.utils.wheel_models import BLAZEFACE, BLAZEFACE_FULL, WheelModel

log = logging.getLogger(__name__)

MODEL_SHA256 = BLAZEFACE.sha256
INPUT_SIZE = 128
RANGES = ("short", "full", "auto")


@dataclass(frozen=True)
class RangeModel:
    """One BlazeFace model: its file, input side, anchor layout ``((stride, anchors per
    cell), ...)`` and MediaPipe's score threshold for it."""
    name: str
    wheel: WheelModel
    input_size: int
    layout: tuple[tuple[int, int], ...]
    min_score: float


#: MediaPipe's options: short-range strides 8, 16, 16, 16 (two anchors per layer and cell, layers of
#: one stride sharing their grid); full-range one stride-4 layer, one anchor per cell.
MODELS = {"short": RangeModel("short", BLAZEFACE, 128, ((8, 2), (16, 6)), 0.5),
          "full": RangeModel("full", BLAZEFACE_FULL, 192, ((4, 1),), 0.6)}


def default_model_path(range_: str = "short") -> Path:
    return MODELS[range_].wheel.default_path()


def fetch_model(dest: Path | None = None, wheel: Path | None = None, range_: str = "short") -> Path:
    """Extract a BlazeFace model from the mediapipe wheel and verify its checksum (see
    :class:`emomm.utils.wheel_models.WheelModel`). Never installs mediapipe."""
    return MODELS[range_].wheel.fetch(dest, wheel)


def ssd_anchors(input_size: int = INPUT_SIZE, layout: tuple[tuple[int, int], ...] = ((8, 2), (16, 6))
                ) -> np.ndarray:
    """Anchor centres ``[A, 2]`` (x, y in [0, 1]; fixed size 1) for ``layout`` on an
    ``input_size`` input: 896 for the short-range model, 2304 for the full-range one."""
    out = []
    for stride, per_cell in layout:
        n = input_size // stride
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


class _Model:
    """One BlazeFace network on a TFLite interpreter (built lazily, one call at a time)."""

    def __init__(self, spec: RangeModel, path: Path, min_score: float, nms_iou: float, threads: int) -> None:
        self.spec, self.path = spec, path
        self.min_score, self.nms_iou, self.threads = min_score, nms_iou, threads
        self.anchors = ssd_anchors(spec.input_size, spec.layout)
        self.net = LiteRTModel(path, threads, what="faces=blazeface")

    def letterbox(self, frame: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        """Pad to a centred square and resize to the input side: ``(input, side, pad_x, pad_y)``."""
        import cv2

        size = self.spec.input_size
        h, w = frame.shape[:2]
        side = max(h, w)
        px, py = (side - w) // 2, (side - h) // 2
        sq = cv2.copyMakeBorder(frame, py, side - h - py, px, side - w - px, cv2.BORDER_CONSTANT, value=0)
        small = cv2.resize(sq, (size, size), interpolation=cv2.INTER_AREA if side > 2 * size
                           else cv2.INTER_LINEAR)
        return small.astype(np.float32) / 127.5 - 1.0, float(side), float(px), float(py)

    def decode(self, reg: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw outputs ``[A, 16]``, ``[A]`` -> boxes ``[N, 4]`` and keypoints ``[N, 6, 2]``
        in [0, 1] input coordinates, with scores, before suppression."""
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0)))
        keep = scores >= self.min_score
        reg, scores, anc = reg[keep] / self.spec.input_size, scores[keep], self.anchors[keep]
        cx, cy = reg[:, 0] + anc[:, 0], reg[:, 1] + anc[:, 1]
        w, h = reg[:, 2], reg[:, 3]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
        kps = reg[:, 4:16].reshape(-1, 6, 2) + anc[:, None, :]
        return boxes, scores, kps

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes ``[N, 4]`` (frame pixels), scores ``[N]``, raw keypoints ``[N, 6, 2]``."""
        x, side, px, py = self.letterbox(frame)
        # outputs by shape (the two models name them differently): [1, A, 16] and [1, A, 1]
        outs = {v.shape[-1]: v for v in self.net(x[None]).values()}
        reg, logits = outs[16][0], outs[1][0, :, 0]
        boxes, scores, kps = weighted_nms(*self.decode(reg, logits), iou=self.nms_iou)
        h, w = frame.shape[:2]
        boxes = np.clip(boxes * side - np.array([px, py, px, py], np.float32), 0, [w, h, w, h])
        return boxes.astype(np.float32), scores, (kps * side - np.array([px, py], np.float32)).astype(np.float32)


def merge_ranges(first: tuple[np.ndarray, ...], second: tuple[np.ndarray, ...], iou: float = 0.3
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All of ``first``'s detections ``(boxes [N, 4], scores [N], keypoints [N, 6, 2])`` plus
    those of ``second`` that overlap none of them by more than ``iou``."""
    b1, s1, k1 = first
    b2, s2, k2 = second
    new = np.array([len(b1) == 0 or box_iou(b, b1).max() <= iou for b in b2], bool)
    return (np.concatenate([b1, b2[new]]).astype(np.float32), np.concatenate([s1, s2[new]]).astype(np.float32),
            np.concatenate([k1, k2[new]]).astype(np.float32))


class BlazeFaceDetector(FaceDetector):
    """Args:
        range: ``short`` | ``full`` | ``auto`` (see the module doc).
        model_path: the short-range ``.tflite`` file (default: ``.cache/models/mediapipe/``).
        full_model_path: the full-range one (same default folder).
        min_score: detection score threshold (null: MediaPipe's, 0.5 short / 0.6 full).
        nms_iou: weighted-NMS overlap threshold (MediaPipe's 0.3).
        close_frac: ``auto``: short-range's faces all at least this fraction of the frame's
            shorter side make a close shot (no full-range pass).
        threads: TFLite interpreter threads.
        warn_after: see :class:`~emomm.faces.base.FaceDetector`.
    """

    kind = "blazeface"

    def __init__(self, range: str = "auto", model_path: str | None = None, full_model_path: str | None = None,
                 min_score: float | None = None, nms_iou: float = 0.3, close_frac: float = 0.2,
                 threads: int = 1, warn_after: int = 25) -> None:
        super().__init__(warn_after=warn_after)
        if range not in RANGES:
            raise ValueError(f"faces.blazeface.range={range!r} is not one of {list(RANGES)}")
        self.range, self.close_frac = range, float(close_frac)
        self.min_score, self.nms_iou, self.threads = min_score, float(nms_iou), int(threads)
        paths = {"short": model_path, "full": full_model_path}
        wanted = ("short", "full") if range == "auto" else (range,)
        self.models: dict[str, _Model] = {}
        for r in wanted:
            path = Path(paths[r]).expanduser() if paths[r] else default_model_path(r)
            if not path.is_file():
                if range == "auto" and r == "full":  # an install from before full-range: short alone
                    log.warning("faces.blazeface.range=auto: the full-range model %s is missing (run `make "
                                "models`), so only the short-range model runs: faces far from the camera "
                                "will be missed", path)
                    continue
                raise FileNotFoundError(
                    f"BlazeFace {r}-range model {path} is missing: run `make models` (or `python -m "
                    f"emomm.faces.blazeface fetch`), which extracts it from the mediapipe wheel")
            spec = MODELS[r]
            self.models[r] = _Model(spec, path, float(spec.min_score if min_score is None else min_score),
                                    self.nms_iou, self.threads)

    @property
    def model_path(self) -> Path:
        return next(iter(self.models.values())).path

    def detect_one(self, frame: np.ndarray) -> Faces:
        h, w = frame.shape[:2]
        if self.range == "auto":
            found = self.models["short"](frame)
            sides = np.sqrt(np.prod(found[0][:, 2:] - found[0][:, :2], axis=1)) if len(found[0]) else np.zeros(0)
            wide = len(sides) == 0 or sides.min() < self.close_frac * min(h, w)
            if wide and "full" in self.models:
                found = merge_ranges(found, self.models["full"](frame), self.nms_iou)
        else:
            found = self.models[self.range](frame)
        boxes, scores, kps = found
        if len(boxes) == 0:
            return Faces.empty()
        return Faces(boxes, scores, five_landmarks(kps))

    def _detect(self, frames: np.ndarray, source: str | None,
                frame_indices: Sequence[int] | None) -> list[Faces]:
        return [self.detect_one(f) for f in frames]

    def no_face_hint(self, height: int, width: int) -> str:
        if self.range == "short":
            return ("its short-range model sees faces of about 1/10 of the frame's longer side and up; "
                    "for a wide shot try faces.blazeface.range=full (or auto)")
        return (f"it sees faces of about 1/20 of the frame's longer side ({max(height, width) // 20} px here) "
                "and up; for small faces use faces=mtcnn with faces.mtcnn.min_face_px")

    def settings(self) -> dict[str, Any]:
        return {"detector": self.kind, "range": self.range,
                "model_sha256": {r: m.spec.wheel.sha256 for r, m in self.models.items()},
                "min_score": self.min_score, "nms_iou": self.nms_iou, "close_frac": self.close_frac}


def main(argv: list[str] | None = None) -> None:
    """``python -m emomm.faces.blazeface fetch [--range short|full] [--wheel W] [--dest PATH]``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m emomm.faces.blazeface")
    p.add_argument("command", choices=["fetch"])
    p.add_argument("--wheel", type=Path, default=None, help="an already downloaded mediapipe wheel")
    p.add_argument("--dest", type=Path, default=None, help="a file (with one --range) or a folder")
    p.add_argument("--range", choices=["short", "full"], default=None, help="default: both")
    a = p.parse_args(argv)
    for r in [a.range] if a.range else ["short", "full"]:
        dest = a.dest / MODELS[r].wheel.filename if a.dest and (a.dest.is_dir() or not a.range) else a.dest
        path = fetch_model(dest, a.wheel, r)
        print(f"BlazeFace {r}-range model: {path} (sha256 {MODELS[r].wheel.sha256[:12]}..., "
              f"{path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
