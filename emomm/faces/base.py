"""The face detector interface: :class:`Faces` (what a frame holds) and :class:`FaceDetector`.

A detector maps a batch of RGB uint8 frames ``[N, H, W, 3]`` (one video clip, or images
of one size) to one :class:`Faces` per frame: every face found, with its score and, for
MTCNN and BlazeFace, five landmarks. Choosing one face per frame, margins and crops are the
:class:`~emomm.faces.crop.FaceCropper`'s job. ``settings()`` is what the crop cache keys
on: two detectors with equal settings give equal boxes.

A detector that finds no face in ``warn_after`` frames in a row (of one source, or of a
stream) logs one warning saying so, with the frame size and what to change
(:meth:`FaceDetector.no_face_hint`); ``no_face_run`` counts that run, so a caller (live mode)
can switch to another detector.

The detectors (:mod:`emomm.faces.mtcnn`, :mod:`emomm.faces.haar`, :mod:`emomm.faces.blazeface`,
and ``none``/``given`` in :mod:`emomm.faces.detectors`) build on this module; the factory
:func:`emomm.faces.detectors.build_detector` picks one by name.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

log = logging.getLogger(__name__)


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
    """Base class. ``kind`` names the detector; ``calls`` counts ``detect`` calls;
    ``no_face_run`` the frames in a row without a face (reset by a face or a new ``source``);
    after ``warn_after`` of them (0: never) one warning is logged per run."""

    kind = "base"

    def __init__(self, warn_after: int = 25) -> None:
        self.calls = 0
        self.frames_seen = 0
        self.warn_after = int(warn_after)
        self.no_face_run = 0
        self.warnings: list[str] = []
        self._source: str | None = None

    def detect(self, frames: np.ndarray | Sequence[np.ndarray], source: str | None = None,
               frame_indices: Sequence[int] | None = None) -> list[Faces]:
        frames = _as_batch(frames)
        self.calls += 1
        self.frames_seen += len(frames)
        found = self._detect(frames, source, frame_indices)
        self._count_empty(found, source, frames.shape[1:3])
        return found

    def _count_empty(self, found: list["Faces"], source: str | None, size: tuple[int, int]) -> None:
        if source != self._source:
            self._source, self.no_face_run = source, 0
        for faces in found:
            if len(faces):
                self.no_face_run = 0
                continue
            self.no_face_run += 1
            if self.warn_after and self.no_face_run == self.warn_after:
                msg = (f"faces={self.kind} found no face in {self.warn_after} frames in a row "
                       f"({size[1]}x{size[0]}{', ' + source if source else ''}): {self.no_face_hint(*size)}")
                self.warnings.append(msg)
                log.warning(msg)

    def no_face_hint(self, height: int, width: int) -> str:
        """What to try when this detector finds nothing in ``height`` x ``width`` frames."""
        return "if faces are visible, try another detector (faces=mtcnn) or lower its size floor"

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
