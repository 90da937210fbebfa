"""Face tracking with stable IDs: greedy IoU matching of each frame's boxes to live tracks.

Enough for emotion timelines (faces move little between sampled frames); a track survives
``max_missed`` frames without a match, so a face lost for a moment keeps its ID.
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
    area = lambda r: np.clip(r[:, 2] - r[:, 0], 0, None) * np.clip(r[:, 3] - r[:, 1], 0, None)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


@dataclass
class Track:
    track_id: int
    box: np.ndarray          # [4] last matched box
    missed: int = 0          # consecutive updates without a match
    hits: int = 1


class IoUTracker:
    """Args:
        min_iou: a box joins a track only when their IoU is at least this.
        max_missed: updates a track may go unmatched before it ends.
    """

    def __init__(self, min_iou: float = 0.3, max_missed: int = 5) -> None:
        self.min_iou, self.max_missed = float(min_iou), int(max_missed)
        self.tracks: list[Track] = []
        self._next_id = 0

    def reset(self) -> None:
        self.tracks, self._next_id = [], 0

    def update(self, boxes: np.ndarray) -> list[int]:
        """Match one frame's boxes ``[K, 4]``; returns the track ID of each box (new IDs
        for unmatched boxes). Highest-IoU pairs are matched first."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        ids = [-1] * len(boxes)
        if self.tracks and len(boxes):
            iou = iou_matrix(np.stack([t.box for t in self.tracks]), boxes)
            used_t, used_b = set(), set()
            for flat in np.argsort(-iou, axis=None):
                ti, bi = divmod(int(flat), len(boxes))
                if iou[ti, bi] < self.min_iou:
                    break
                if ti in used_t or bi in used_b:
                    continue
                used_t.add(ti)
                used_b.add(bi)
                tr = self.tracks[ti]
                tr.box, tr.missed, tr.hits = boxes[bi], 0, tr.hits + 1
                ids[bi] = tr.track_id
            for ti, tr in enumerate(self.tracks):
                if ti not in used_t:
                    tr.missed += 1
        else:
            for tr in self.tracks:
                tr.missed += 1
        for bi, tid in enumerate(ids):
            if tid < 0:
                self.tracks.append(Track(self._next_id, boxes[bi]))
                ids[bi] = self._next_id
                self._next_id += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return ids
