"""The people of a video result, for what draws them: predict's annotated video, the web
page's still with every person boxed.

Everything that draws people reads a result through :func:`people_of` alone, so a change of
the result's schema (``PersonResult.boxes``: the sightings ``[t, x1, y1, x2, y2]``, one per
sampled frame the face was detected in; ``TimelineResult.tracks``: track id -> windows with
``start``, ``end``, ``probs``, ``label``) is a change of that one function.

A person's box at any time follows the sightings (interpolated between consecutive ones), not
the windows' mean boxes, so a fast face's box stays on the face; a person is drawn only near a
sighting (see :func:`face_at`), never before they are first or after they are last seen.
"""
from __future__ import annotations

from typing import Any

import numpy as np

#: The sampling interval (s) assumed when a record's sightings do not show it (no person seen
#: in two consecutive sampled frames): the Predictor's default 5 frames/s.
DEFAULT_STEP_S = 0.2


def _centre(w: dict[str, Any]) -> float:
    return (float(w["start"]) + float(w["end"])) / 2.0


def people_of(record: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """``{person id: {"boxes": [n, 5] array of t, x1, y1, x2, y2 by time, "windows": [window
    dicts by start time], "step": sampling interval s}}`` of a video record
    (``TimelineResult.to_dict()`` or its JSON); ids in the order the people first appear. A
    record written before sightings were kept (no ``boxes``) uses its windows' centres and
    mean boxes instead."""
    tracks = {int(k): sorted(ws, key=lambda w: w["start"]) for k, ws in (record.get("tracks") or {}).items()}
    sighted = {int(p["id"]): p.get("boxes") for p in record.get("people") or []}
    out = {}
    for pid in set(tracks) | set(sighted):
        ws = tracks.get(pid, [])
        boxes = sighted.get(pid) or [[_centre(w), *w["box"]] for w in ws if w.get("box") is not None]
        if boxes:
            arr = np.asarray(boxes, np.float64).reshape(-1, 5)
            out[pid] = {"boxes": arr[np.argsort(arr[:, 0], kind="stable")], "windows": ws}
    gaps = np.concatenate([np.diff(p["boxes"][:, 0]) for p in out.values()] + [np.zeros(0)])
    gaps = gaps[gaps > 1e-6]
    step = float(gaps.min()) if len(gaps) else DEFAULT_STEP_S
    for p in out.values():
        p["step"] = step
    return dict(sorted(out.items(), key=lambda kv: (kv[1]["boxes"][0, 0], kv[0])))


def visible(times: np.ndarray, t: float, step: float) -> bool:
    """Whether a person sighted at ``times [n]`` (sorted, s) is drawn at ``t``: within half a
    sampling ``step`` of a sighting (the video frames nearest to it), or between two sightings
    at most two steps apart (one missed detection is bridged, a longer absence is not)."""
    eps = 1e-6
    if not len(times) or t < times[0] - step / 2 - eps or t > times[-1] + step / 2 + eps:
        return False
    k = int(np.searchsorted(times, t))
    if k == 0 or k == len(times):
        return True
    before, after = times[k - 1], times[k]
    return min(t - before, after - t) <= step / 2 + eps or after - before <= 2 * step + eps


def face_at(pid: int, person: dict[str, Any], t: float) -> dict[str, Any] | None:
    """Where person ``pid`` (a value of :func:`people_of`) is at ``t`` seconds: ``{"id",
    "box", "label", "probs", "modality_probs"}`` with the box interpolated between the
    sightings around ``t`` (held at the first and last) and the label and probabilities (each
    stream's own too) of the window whose centre is nearest; None when the person is not :func:`visible` at ``t``."""
    boxes = person["boxes"]
    if not visible(boxes[:, 0], t, person["step"]):
        return None
    box = [float(np.interp(t, boxes[:, 0], boxes[:, k])) for k in range(1, 5)]
    ws = person["windows"]
    near = ws[int(np.argmin([abs(_centre(w) - t) for w in ws]))] if ws else {"label": None, "probs": []}
    return {"id": int(pid), "box": box, "label": near["label"], "probs": list(near["probs"]),
            "modality_probs": dict(near.get("modality_probs") or {})}


def faces_at(people: dict[int, dict[str, Any]], t: float) -> list[dict[str, Any]]:
    """:func:`face_at` of every person visible at ``t``."""
    return [f for pid, p in people.items() if (f := face_at(pid, p, t)) is not None]


def busiest_time(people: dict[int, dict[str, Any]]) -> float | None:
    """The sighting time at which the most people are visible (the earliest of ties): the
    moment a still of the video shows best, a sampled frame, so every box on it is a
    detection; None without people."""
    times = sorted({float(t) for p in people.values() for t in p["boxes"][:, 0]})
    if not times:
        return None
    return max(times, key=lambda t: (len(faces_at(people, t)), -t))
