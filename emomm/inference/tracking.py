"""Face tracks with stable ids across frames (greedy IoU matching).

``IoUTracker.update(boxes) -> ids``: each box of the new frame joins the live track it
overlaps most (IoU >= ``iou``), else starts a new id; a track unseen for ``max_age`` updates
is dropped. Cheap enough to run between detections (``predict`` boxes are carried by the
last detection until the next one).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``a [N, 4]`` and ``b [M, 4]`` (x1, y1, x2, y2) -> ``[N, M]``."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda z: np.clip(z[:, 2] - z[:, 0], 0, None) * np.clip(z[:, 3] - z[:, 1], 0, None)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


@dataclass
class Track:
    id: int
    box: np.ndarray
    age: int = 0     # updates since last matched
    hits: int = 1


class IoUTracker:
    def __init__(self, iou: float = 0.3, max_age: int = 10) -> None:
        self.iou, self.max_age = float(iou), int(max_age)
        self.tracks: list[Track] = []
        self._next = 0

    def update(self, boxes: np.ndarray) -> list[int]:
        """Ids for ``boxes [N, 4]`` of one frame, in their order."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        ids = [-1] * len(boxes)
        if self.tracks and len(boxes):
            m = iou_matrix(boxes, np.stack([t.box for t in self.tracks]))
            # greedy: best overlaps first
            for flat in np.argsort(-m, axis=None):
                i, j = divmod(int(flat), m.shape[1])
                if m[i, j] < self.iou:
                    break
                if ids[i] >= 0 or self.tracks[j].age < 0:
                    continue
                ids[i] = self.tracks[j].id
                self.tracks[j].box, self.tracks[j].age = boxes[i], -1  # -1: matched this frame
                self.tracks[j].hits += 1
        for i, b in enumerate(boxes):
            if ids[i] < 0:
                self.tracks.append(Track(self._next, b, age=-1))
                ids[i] = self._next
                self._next += 1
        for t in self.tracks:
            t.age += 1
        self.tracks = [t for t in self.tracks if t.age <= self.max_age]
        return ids
