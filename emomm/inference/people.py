"""The people of a video result, for what draws them: predict's annotated video, the web
page's still with every person boxed.

Everything that draws people reads a result through :func:`person_windows` alone, so a change
of the result's track schema (``TimelineResult.tracks``: track id -> windows with ``start``,
``end``, ``probs``, ``label``, ``box``) is a change of that one function.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def person_windows(record: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    """``{person id: [window dicts by start time]}`` of a video record
    (``TimelineResult.to_dict()`` or its JSON), only windows with a box; ids in the order the
    people first appear."""
    tracks = record.get("tracks") or {}
    people = {int(tid): sorted((w for w in ws if w.get("box") is not None), key=lambda w: w["start"])
              for tid, ws in tracks.items()}
    people = {tid: ws for tid, ws in people.items() if ws}
    return dict(sorted(people.items(), key=lambda kv: (kv[1][0]["start"], kv[0])))


def _centre(w: dict[str, Any]) -> float:
    return (float(w["start"]) + float(w["end"])) / 2.0


def face_at(pid: int, windows: list[dict[str, Any]], t: float) -> dict[str, Any] | None:
    """Where person ``pid`` is at ``t`` seconds: ``{"id", "box", "label", "probs"}`` with the
    box interpolated between the centres of the windows around ``t`` (the nearest window's
    label and probabilities), or None when ``t`` is outside the person's windows."""
    if not windows or t < float(windows[0]["start"]) or t > float(windows[-1]["end"]):
        return None
    centres = np.array([_centre(w) for w in windows])
    boxes = np.array([w["box"] for w in windows], np.float64)
    box = [float(np.interp(t, centres, boxes[:, k])) for k in range(4)]
    near = windows[int(np.argmin(np.abs(centres - t)))]
    return {"id": int(pid), "box": box, "label": near["label"], "probs": list(near["probs"])}


def faces_at(people: dict[int, list[dict[str, Any]]], t: float) -> list[dict[str, Any]]:
    """:func:`face_at` of every person visible at ``t``."""
    return [f for pid, ws in people.items() if (f := face_at(pid, ws, t)) is not None]


def busiest_time(people: dict[int, list[dict[str, Any]]]) -> float | None:
    """The window centre at which the most people are visible (the earliest of ties): the
    moment a still of the video shows best; None without people."""
    times = sorted({_centre(w) for ws in people.values() for w in ws})
    if not times:
        return None
    return max(times, key=lambda t: (len(faces_at(people, t)), -t))
