"""Stable face IDs across frames: the predictor's ``IoUTracker`` when it is installed
(:mod:`emomm.inference.tracking`), else this greedy IoU matcher with the same interface,
``update(boxes [K, 4]) -> ids [K]``."""
from __future__ import annotations

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[len(a), len(b)]`` IoU of x1, y1, x2, y2 boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


class GreedyIoUTracker:
    """Match each new box to the live track it overlaps most (IoU >= ``min_iou``), best pairs
    first; unmatched boxes start new IDs; a track unseen for ``max_age`` updates ends."""

    def __init__(self, min_iou: float = 0.3, max_age: int = 5) -> None:
        self.min_iou, self.max_age = float(min_iou), int(max_age)
        self.tracks: dict[int, tuple[np.ndarray, int]] = {}   # id -> (box, updates since seen)
        self.next_id = 1

    def update(self, boxes: np.ndarray) -> list[int]:
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        ids_live = list(self.tracks)
        prev = np.array([self.tracks[i][0] for i in ids_live], np.float32).reshape(-1, 4)
        m = iou_matrix(boxes, prev)
        out: list[int | None] = [None] * len(boxes)
        used: set[int] = set()
        for flat in np.argsort(-m, axis=None):
            r, c = divmod(int(flat), max(len(ids_live), 1))
            if m.size == 0 or m[r, c] < self.min_iou:
                break
            if out[r] is None and c not in used:
                out[r] = ids_live[c]
                used.add(c)
        for r in range(len(boxes)):
            if out[r] is None:
                out[r] = self.next_id
                self.next_id += 1
        seen = set(out)
        self.tracks = {i: (b, a + 1) for i, (b, a) in self.tracks.items() if i not in seen and a + 1 < self.max_age}
        for r, i in enumerate(out):
            self.tracks[i] = (boxes[r], 0)
        return [int(i) for i in out]


def make_tracker(min_iou: float = 0.3, max_age: int = 5):
    try:
        from emomm.inference.tracking import IoUTracker
    except ImportError:
        return GreedyIoUTracker(min_iou=min_iou, max_age=max_age)
    try:
        return IoUTracker(min_iou=min_iou, max_age=max_age)
    except TypeError:  # its own defaults
        return IoUTracker()
