"""Face tracks with stable ids across frames.

Both trackers have ``update(boxes [N, 4]) -> ids`` (one call per detected frame, boxes
x1, y1, x2, y2 in pixels; ids in the boxes' order) and are built by name with
:func:`make_tracker`:

* ``kalman`` (the default): motion-aware. Each track is a constant-velocity Kalman filter
  (``filterpy``) over its centre and size, so its box is *predicted* for the next frame;
  detections join tracks by an optimal assignment (``scipy``'s Hungarian
  ``linear_sum_assignment``) on the **centre distance divided by the face's size** (plus the
  log size ratio), gated by the prediction's own uncertainty. A face that moves more than its
  own width between frames (5 frames/s, fast walking: consecutive boxes do not overlap) keeps
  its id, two faces crossing paths keep theirs (each follows its own velocity), and a track
  missed for a few frames coasts on its prediction until ``max_age`` updates without a match.
  All noise levels are fractions of the face's size, so the same settings hold for a 30 px
  face far away and a 400 px one close up.
* ``iou``: the earlier greedy IoU matching (a box joins the live track it overlaps most, IoU
  >= ``iou``). Cheap, but a face whose consecutive boxes do not overlap gets a new id each
  frame; kept for comparison (``benchmarks/track_footage.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import KalmanFilter
from scipy.optimize import linear_sum_assignment


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


def box_to_csa(boxes: np.ndarray) -> np.ndarray:
    """Boxes ``[N, 4]`` (x1, y1, x2, y2) -> ``[N, 4]`` centre x, centre y, size (sqrt of the
    area, at least 1 px) and aspect ratio (width / height)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    w, h = np.maximum(b[:, 2] - b[:, 0], 1.0), np.maximum(b[:, 3] - b[:, 1], 1.0)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, np.sqrt(w * h), w / h], axis=1)


def csa_to_box(cx: float, cy: float, size: float, aspect: float) -> np.ndarray:
    """The inverse of :func:`box_to_csa` for one box -> ``[4]`` float32."""
    w, h = size * np.sqrt(aspect), size / np.sqrt(aspect)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)


@dataclass
class Track:
    id: int
    box: np.ndarray
    age: int = 0     # updates since last matched
    hits: int = 1


class IoUTracker:
    """Greedy IoU matching: best overlaps first; a box overlapping no live track by ``iou``
    starts a new id; a track unseen for ``max_age`` updates is dropped."""

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


class KalmanTrack:
    """One face: a constant-velocity Kalman filter over ``[cx, cy, size, vx, vy, vsize]``
    (pixels and pixels per update), measured as ``[cx, cy, size]``; the aspect ratio is a
    running mean. Every noise level is a fraction of the current size."""

    def __init__(self, track_id: int, csa: np.ndarray, noise: float, accel: float, init_speed: float) -> None:
        self.id, self.age, self.hits = track_id, 0, 1
        self.noise, self.accel = float(noise), float(accel)
        self.aspect = float(csa[3])
        self.last = np.asarray(csa[:3], np.float64)   # where it was last detected: centre, size
        kf = KalmanFilter(dim_x=6, dim_z=3)
        kf.F = np.eye(6)
        kf.F[:3, 3:] = np.eye(3)          # x += v per update
        kf.H = np.eye(3, 6)
        kf.x = np.r_[csa[:3], 0.0, 0.0, 0.0].reshape(6, 1)
        s = float(csa[2])
        # unknown velocity: up to about ``init_speed`` face sizes per update
        kf.P = np.diag([(noise * s) ** 2] * 3 + [(init_speed * s) ** 2] * 2 + [(0.25 * init_speed * s) ** 2])
        self.kf = kf

    @property
    def size(self) -> float:
        return max(float(self.kf.x[2, 0]), 1.0)

    @property
    def centre(self) -> np.ndarray:
        return self.kf.x[:2, 0]

    @property
    def centre_std(self) -> float:
        """Standard deviation of the predicted centre (pixels, mean of x and y)."""
        return float(np.sqrt((self.kf.P[0, 0] + self.kf.P[1, 1]) / 2))

    @property
    def box(self) -> np.ndarray:
        """The track's current box ``[4]`` (the prediction until it is updated)."""
        cx, cy = self.centre
        return csa_to_box(cx, cy, self.size, self.aspect)

    def predict(self) -> None:
        s = self.size
        self.kf.Q = Q_discrete_white_noise(2, dt=1.0, var=(self.accel * s) ** 2, block_size=3, order_by_dim=False)
        self.kf.predict()
        self.kf.x[2, 0] = max(self.kf.x[2, 0], 1.0)
        self.age += 1

    def update(self, csa: np.ndarray) -> None:
        self.kf.R = np.eye(3) * (self.noise * self.size) ** 2
        self.kf.update(np.asarray(csa[:3], np.float64).reshape(3, 1))
        self.aspect = 0.7 * self.aspect + 0.3 * float(csa[3])
        self.last = np.asarray(csa[:3], np.float64)
        self.age, self.hits = 0, self.hits + 1


class KalmanTracker:
    """Motion-aware face tracking (see the module docstring).

    Each update matches in two passes, each an optimal assignment on the centre distance in
    face sizes (plus the absolute log size ratio): first every detection against every track's
    *predicted* box, then the detections and tracks left over against where those tracks were
    *last detected* (a face that stopped or turned back, which its velocity did not foresee).

    Args:
        max_dist: the first pass's gate, in face sizes, between a detection's centre and a
            track's predicted centre, on top of ``gate_sigmas`` times the prediction's own
            standard deviation (large for a track seen once or missed for a few frames, small
            for a track moving steadily).
        reacquire: the second pass's gate, in face sizes from the last detection.
        max_age: updates a track survives without a match (it coasts on its velocity).
        noise: the detector's jitter of a box's centre and size, as a fraction of its size.
        accel: how much a face's velocity may change per update, as a fraction of its size.
        init_speed: a new track's unknown speed, in face sizes per update (sets how far its
            second detection may be).
        max_size_ratio: a detection more than this many times larger or smaller than a
            track's size never joins it.
    """

    def __init__(self, max_dist: float = 1.0, max_age: int = 10, noise: float = 0.1, accel: float = 0.25,
                 init_speed: float = 1.5, gate_sigmas: float = 2.0, reacquire: float = 2.0,
                 max_size_ratio: float = 2.0) -> None:
        self.max_dist, self.max_age, self.gate_sigmas = float(max_dist), int(max_age), float(gate_sigmas)
        self.noise, self.accel, self.init_speed = float(noise), float(accel), float(init_speed)
        self.reacquire, self.max_log_ratio = float(reacquire), float(np.log(max_size_ratio))
        self.tracks: list[KalmanTrack] = []
        self._next = 0

    def cost(self, dets: np.ndarray, at: np.ndarray, gate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Detections ``[N, 4]`` (centre, size, aspect) against tracks at ``at [M, 3]`` (centre,
        size) -> ``(cost [N, M], allowed [N, M])``: centre distance in the track's face sizes
        plus the absolute log size ratio, and whether the distance is within the track's
        ``gate [M]`` (face sizes) and the size ratio within ``max_size_ratio``."""
        sizes = np.maximum(at[:, 2], 1.0)
        dist = np.linalg.norm(dets[:, None, :2] - at[None, :, :2], axis=2) / sizes[None]
        log_ratio = np.abs(np.log(dets[:, None, 2] / sizes[None]))
        return dist + log_ratio, (dist <= gate[None]) & (log_ratio <= self.max_log_ratio)

    @staticmethod
    def assign(cost: np.ndarray, allowed: np.ndarray) -> list[tuple[int, int]]:
        """The least-cost one-to-one pairs ``(detection, track)`` among the allowed ones."""
        if not cost.size:
            return []
        rows, cols = linear_sum_assignment(np.where(allowed, cost, 1e6))
        return [(int(i), int(j)) for i, j in zip(rows, cols) if allowed[i, j]]

    def update(self, boxes: np.ndarray) -> list[int]:
        """Ids for ``boxes [N, 4]`` of one frame, in their order."""
        dets = box_to_csa(boxes)
        for t in self.tracks:
            t.predict()
        ids = [-1] * len(dets)
        if self.tracks and len(dets):
            predicted = np.array([[*t.centre, t.size] for t in self.tracks])
            gate = self.max_dist + self.gate_sigmas * np.array([t.centre_std / t.size for t in self.tracks])
            pairs = self.assign(*self.cost(dets, predicted, gate))
            free_d = [i for i in range(len(dets)) if i not in {p[0] for p in pairs}]
            free_t = [j for j in range(len(self.tracks)) if j not in {p[1] for p in pairs}]
            if free_d and free_t:   # second pass: where the leftover tracks were last seen
                last = np.array([self.tracks[j].last for j in free_t])
                cost, allowed = self.cost(dets[free_d], last, np.full(len(free_t), self.reacquire))
                pairs += [(free_d[i], free_t[j]) for i, j in self.assign(cost, allowed)]
            for i, j in pairs:
                self.tracks[j].update(dets[i])
                ids[i] = self.tracks[j].id
        for i, d in enumerate(dets):
            if ids[i] < 0:
                self.tracks.append(KalmanTrack(self._next, d, self.noise, self.accel, self.init_speed))
                ids[i] = self._next
                self._next += 1
        self.tracks = [t for t in self.tracks if t.age <= self.max_age]
        return ids


#: Tracker names for ``predictor.tracker`` / ``make_tracker``.
TRACKERS = {"kalman": KalmanTracker, "iou": IoUTracker}


def make_tracker(name: str = "kalman", **options: Any) -> KalmanTracker | IoUTracker:
    """A fresh tracker by name (``kalman`` | ``iou``) with its keyword options."""
    if name not in TRACKERS:
        raise ValueError(f"tracker={name!r}: use one of {sorted(TRACKERS)}")
    return TRACKERS[name](**options)


def id_errors(pairs: list[list[tuple[int, int]]]) -> dict[int, dict[str, int]]:
    """Tracking errors against ground truth. ``pairs``: per frame, ``(true person, track id)``
    of each face found -> per person ``{"frames", "switches", "fragments"}``: frames seen, the
    times its track id changed from one sighting to the next (an ID switch), and how many
    distinct ids it had (1 = one unbroken track)."""
    seen: dict[int, list[int]] = {}
    for frame in pairs:
        for person, tid in frame:
            seen.setdefault(int(person), []).append(int(tid))
    return {p: {"frames": len(ids), "switches": int(sum(a != b for a, b in zip(ids, ids[1:]))),
                "fragments": len(set(ids))} for p, ids in sorted(seen.items())}
