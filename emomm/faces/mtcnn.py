"""MTCNN (``faces=mtcnn``, the default detector): facenet-pytorch's networks batched over frames.

The networks and the batched detection are :mod:`emomm.faces.mtcnn_nets`; they (and torch,
torchvision and facenet-pytorch with them) are imported on first use, so importing
:mod:`emomm.faces` (e.g. for Haar, BlazeFace or cached crops) does not load torch.
"""
from __future__ import annotations

import threading
from typing import Any, Sequence

from emomm.faces.base import FaceDetector, Faces


class MTCNNDetector(FaceDetector):
    """facenet-pytorch's MTCNN, batched over frames (:mod:`emomm.faces.mtcnn_nets`).

    The smallest face searched for (the image pyramid's finest scale) follows the frame: it
    is the larger of ``min_face_px`` and ``min_face_frac`` x the frame's shorter side, never
    below facenet-pytorch's 20 px, snapped down to a scale of its default pyramid (so the
    remaining scales, and the boxes, are unchanged). The defaults (32 px, 1/40 of the shorter
    side: 32 px up to 1280 px, 54 px at 4K) find faces of 40 px and up at 1080p, one pyramid
    scale below that size (benchmarks/detect_footage.py); the finest, costliest scales only
    find smaller ones.

    Args:
        min_face_frac: smallest face as a fraction of the frame's shorter side.
        min_face_px: smallest face in pixels (null: no pixel floor beyond 20).
        thresholds: P/R/O-net score thresholds.
        batch_size: frames per network call (4-16 is fastest on CPU), lowered so that a
            call's largest pyramid level holds at most ``max_batch_pixels`` pixels.
        device: ``cpu`` or ``cuda``.
    """

    kind = "mtcnn"

    def __init__(self, min_face_frac: float = 0.025, min_face_px: float | None = 32.0,
                 thresholds: Sequence[float] = (0.6, 0.7, 0.7), factor: float = 0.709,
                 batch_size: int = 8, max_batch_pixels: int = 250_000, device: str = "cpu",
                 warn_after: int = 25) -> None:
        super().__init__(warn_after=warn_after)
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
                from emomm.faces.mtcnn_nets import load_nets
                self._nets = load_nets(self.device)
        return self._nets

    def min_face(self, height: int, width: int) -> float:
        from emomm.faces.mtcnn_nets import DEFAULT_MIN_FACE, snapped_min_face

        px = max(float(self.min_face_px or 0.0), self.min_face_frac * min(height, width))
        return snapped_min_face(max(DEFAULT_MIN_FACE, px), self.factor)

    def no_face_hint(self, height: int, width: int) -> str:
        return (f"it searches faces of {self.min_face(height, width):.0f} px and up here "
                "(faces.mtcnn.min_face_px / min_face_frac, or predictor.mtcnn.* in predict and serve)")

    def _detect(self, frames, source, frame_indices):
        from emomm.faces.mtcnn_nets import detect_faces

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
