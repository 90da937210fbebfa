"""The annotated frame: per face a box and a label block (ID, label, each stream's own label for
a model of several streams, top-class bars); FPS and voice in a status line. Used by live
mode's ``output=`` video and predict's annotated video; with ``mesh``, each face's mesh points
(``pipeline.draw_mesh``) are drawn under its box.

Everything scales with the frame height (:func:`style_for`): the text stays readable at
1080p and fits at 240p. Label blocks are placed greedily (:func:`layout`): each face's block
goes to the first free spot among above / below / inside / beside its box, else the nearest
free spot found by sliding down the frame, so no two blocks overlap each other or the status
line and every block lies inside the frame.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from emomm.faces.mesh import draw_mesh

COLORS = [(66, 135, 245), (245, 66, 66), (66, 245, 135), (245, 200, 66), (180, 66, 245), (66, 230, 245)]
#: The frame height at which the overlay has its base sizes (font 0.5, 2 px boxes).
BASE_HEIGHT = 480


@dataclass(frozen=True)
class Style:
    """Sizes in pixels for one frame height."""
    font_scale: float
    thickness: int     # text strokes
    line: int          # box outlines
    pad: int           # inside a label block
    line_h: int        # one text line
    bar_w: int         # a probability bar at 100%


def style_for(height: int) -> Style:
    """Overlay sizes proportional to ``height`` (480 px: font 0.5, 2 px boxes)."""
    import cv2

    s = max(height, 120) / BASE_HEIGHT
    font = 0.5 * s
    thickness = max(1, int(round(1.2 * s)))
    (_, th), base = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, font, thickness)
    return Style(font, thickness, max(2, int(round(2 * s))), max(2, int(round(3 * s))),
                 th + base + max(2, int(round(3 * s))), int(round(60 * s)))


def _text_w(text: str, st: Style) -> int:
    import cv2

    return cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, st.font_scale, st.thickness)[0][0]


def _overlaps(a: Sequence[int], b: Sequence[int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place(boxes: Sequence[Sequence[float]], sizes: Sequence[tuple[int, int]], width: int, height: int,
          reserved: Sequence[Sequence[int]] = (), gap: int = 2) -> list[tuple[int, int, int, int]]:
    """Greedy placement of one ``(w, h)`` label block per box (x1, y1, x2, y2) in a
    ``width x height`` frame -> block rectangles ``(x1, y1, x2, y2)``, in the boxes' order.

    Candidates per box, in order: above it, below it, inside its top, right of it, left of it
    (each moved inside the frame); the first that overlaps no placed block (nor ``reserved``)
    and no face wins, then the first that overlaps no block, else the free spot nearest the
    box among positions on a grid of quarter blocks and against every placed block. Blocks larger than the frame are
    cut to it. Only when the frame is full do two blocks overlap."""
    placed: list[tuple[int, int, int, int]] = []
    taken = [tuple(int(v) for v in r) for r in reserved]
    faces = [tuple(int(round(float(v))) for v in b) for b in boxes]
    for box, (bw, bh) in zip(boxes, sizes):
        bw, bh = min(int(bw), width), min(int(bh), height)
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)

        def fit(x: int, y: int) -> tuple[int, int, int, int]:
            x, y = min(max(x, 0), width - bw), min(max(y, 0), height - bh)
            return (x, y, x + bw, y + bh)

        cands = [fit(x1, y1 - bh - gap), fit(x1, y2 + gap), fit(x1, y1), fit(x2 + gap, y1), fit(x1 - bw - gap, y1)]
        free = lambda r: not any(_overlaps(r, o) for o in taken)  # noqa: E731
        # a spot that hides no face is best; one that hides a face but no other label next
        rect = next((r for r in cands if free(r) and not any(_overlaps(r, f) for f in faces)), None) \
            or next((r for r in cands if free(r)), None)
        if rect is None:   # any free spot (on a grid, or against a placed block): the nearest
            xs = set(range(0, width - bw + 1, max(bw // 4, 1))) | {width - bw} | {r[2] + gap for r in taken}
            ys = set(range(0, height - bh + 1, max(bh // 4, 1))) | {height - bh} | {r[3] + gap for r in taken}
            spots = {fit(x, y) for y in ys for x in xs}
            spots = [r for r in spots if free(r)]
            rect = min(spots, key=lambda r: abs(r[0] - x1) + abs(r[1] - y1)) if spots else cands[0]
        placed.append(rect)
        taken.append(rect)
    return placed


def _face_lines(f: dict, labels: Sequence[str], bars: int,
                streams: bool = True) -> tuple[str, list[str], list[tuple[str, float]]]:
    """A face's label block: the title (fused label), with ``streams`` one line per stream's
    own label (``face happy 0.62``: ``modality_probs``, several streams only) and the top
    ``bars`` classes."""
    probs = np.asarray(f.get("probs") or [], np.float32)
    top = float(probs.max()) if len(probs) else 0.0
    title = f"#{f['id']} {f['label']} {top:.2f}"
    own = f.get("modality_probs") or {} if streams else {}
    lines = [f"{m} {labels[int(np.argmax(p))]} {float(np.max(p)):.2f}" for m, p in own.items()] if len(own) > 1 else []
    rows = [(f"{labels[k]} {probs[k]:.2f}", float(probs[k])) for k in np.argsort(-probs)[:bars]] if len(probs) else []
    return title, lines, rows


def _fit(faces: Sequence[dict], labels: Sequence[str], width: int, height: int, bars: int, status: str,
         streams: bool = True):
    """:func:`layout`, plus the ``bars`` and ``streams`` it could fit: bars go first, then the
    stream lines, when the blocks cannot all be placed apart."""
    st = style_for(height)
    status_rect = None
    if status:
        status_rect = (0, 0, min(width, _text_w(status, st) + 2 * st.pad), min(height, st.line_h + 2 * st.pad))
    sizes = []
    for f in faces:
        title, lines, rows = _face_lines(f, labels, bars, streams)
        w = max([_text_w(t, st) for t in [title, *lines]] + [st.bar_w + st.pad + _text_w(t, st) for t, _ in rows])
        sizes.append((w + 2 * st.pad, (1 + len(lines) + len(rows)) * st.line_h + 2 * st.pad))
    reserved = [status_rect] if status_rect else []
    rects = place([f["box"] for f in faces], sizes, width, height, reserved)
    if (bars or streams) and any(_overlaps(a, b) for a, b in itertools.combinations(rects + reserved, 2)):
        # no room: titles and stream lines, then titles only
        return _fit(faces, labels, width, height, 0, status, streams and bars > 0)
    return st, status_rect, rects, bars, streams


def layout(faces: Sequence[dict], labels: Sequence[str], width: int, height: int, bars: int = 3,
           status: str = "") -> tuple[Style, tuple[int, int, int, int] | None, list[tuple[int, int, int, int]]]:
    """``(style, status rectangle or None, one label-block rectangle per face)`` of the overlay
    that :func:`draw` paints on a ``width x height`` frame (``faces``: dicts with id, box,
    label, probs and, with several streams, ``modality_probs``). When the blocks with ``bars``
    rows cannot all be placed apart, every block is its title and stream lines, else its title
    line alone."""
    return _fit(faces, labels, width, height, bars, status)[:3]


def status_line(fps: float | None, labels: Sequence[str], voice: dict | None) -> str:
    status = f"{fps:.1f} fps" if fps else ""
    if voice is not None:
        status += "  voice: " + (f"speech {labels[int(np.argmax(voice['probs']))]}"
                                 if voice.get("speech") and voice.get("probs") is not None else "silent")
    return status.strip()


def draw(frame_rgb: np.ndarray, faces: Sequence[dict], labels: Sequence[str], fps: float | None,
         voice: dict | None = None, bars: int = 3, mesh: bool = False) -> np.ndarray:
    """A copy of ``frame_rgb`` ``[H, W, 3]`` with the overlay (``faces``: dicts with id, box,
    label, probs; with ``mesh``, also each face's ``mesh`` points ``[P, 2+]`` in frame pixels
    when it has them); the label blocks are where :func:`layout` puts them."""
    import cv2

    out = np.ascontiguousarray(frame_rgb).copy()
    h, w = out.shape[:2]
    status = status_line(fps, labels, voice)
    st, status_rect, rects, bars, streams = _fit(faces, labels, w, h, bars, status)
    font, aa = cv2.FONT_HERSHEY_SIMPLEX, cv2.LINE_AA

    def panel(r):   # a dark, half-transparent background keeps the text readable on any frame
        x1, y1, x2, y2 = r
        out[y1:y2, x1:x2] = (out[y1:y2, x1:x2].astype(np.uint16) * 2 // 5).astype(np.uint8)

    def text(s, x, y, color):
        cv2.putText(out, s, (x, y), font, st.font_scale, color, st.thickness, aa)

    for f in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in f["box"])
        color = COLORS[int(f["id"]) % len(COLORS)]
        if mesh and f.get("mesh") is not None:
            draw_mesh(out, np.asarray(f["mesh"], np.float32), color)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, st.line)
    for f, r in zip(faces, rects):
        color = COLORS[int(f["id"]) % len(COLORS)]
        panel(r)
        cv2.rectangle(out, (r[0], r[1]), (r[2] - 1, r[3] - 1), color, max(1, st.line // 2))
        title, lines, rows = _face_lines(f, labels, bars, streams)
        base = r[1] + st.pad + st.line_h - st.pad
        text(title, r[0] + st.pad, base, (255, 255, 255))
        for j, s in enumerate(lines):   # each stream's own label, under the fused one
            text(s, r[0] + st.pad, base + (j + 1) * st.line_h, (210, 210, 210))
        base += len(lines) * st.line_h
        for j, (s, p) in enumerate(rows):   # the top classes as bars
            yb = base + (j + 1) * st.line_h
            bx = r[0] + st.pad
            cv2.rectangle(out, (bx, yb - st.line_h + 2 * st.pad), (bx + max(1, int(st.bar_w * p)), yb), color, -1)
            text(s, bx + st.bar_w + st.pad, yb, color)
    if status_rect is not None:
        panel(status_rect)
        text(status, st.pad, status_rect[3] - st.pad - max(1, st.pad // 2), (255, 255, 255))
    return out
