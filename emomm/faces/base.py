"""The face detector interface: :class:`Faces` (what a frame holds) and :class:`FaceDetector`.

A detector maps a batch of RGB uint8 frames ``[N, H, W, 3]`` (one video clip, or images
of one size) to one :class:`Faces` per frame: every face found, with its score and, for
MTCNN and BlazeFace, five landmarks. Choosing one face per frame, margins and crops are the
:class:`~emomm.faces.crop.FaceCropper`'s job. ``settings()`` is what the crop cache keys
on: two detectors with equal settings give equal boxes.

The detectors (:mod:`emomm.faces.mtcnn`, :mod:`emomm.faces.haar`, :mod:`emomm.faces.blazeface`,
and ``none``/``given`` in :mod:`emomm.faces.detectors`) build on this module; the factory
:func:`emomm.faces.detectors.build_detector` picks one by name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


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
