"""The annotated frame: per face a box, its ID and label, probability bars (and its face mesh,
when asked); FPS and voice."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from emomm.faces.mesh import draw_mesh

COLORS = [(66, 135, 245), (245, 66, 66), (66, 245, 135), (245, 200, 66), (180, 66, 245), (66, 230, 245)]


def draw(frame_rgb: np.ndarray, faces: Sequence[dict], labels: Sequence[str], fps: float | None,
         voice: dict | None = None, bars: int = 3, mesh: bool = False) -> np.ndarray:
    """A copy of ``frame_rgb`` with the overlay (``faces``: dicts with id, box, label, probs;
    with ``mesh``, also each face's ``mesh`` points when it has one)."""
    import cv2

    out = np.ascontiguousarray(frame_rgb).copy()
    h, w = out.shape[:2]
    for f in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in f["box"])
        color = COLORS[int(f["id"]) % len(COLORS)]
        if mesh and f.get("mesh") is not None:
            draw_mesh(out, np.asarray(f["mesh"], np.float32), color)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, 2)
        probs = np.asarray(f["probs"])
        top = float(probs.max()) if len(probs) else 0.0
        cv2.putText(out, f"#{f['id']} {f['label']} {top:.2f}", (x1, max(12, y1 - 6)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)
        for j, k in enumerate(np.argsort(-probs)[:bars]):   # the top classes as bars under the box
            y = min(h - 4, y2 + 12 + 12 * j)
            cv2.rectangle(out, (x1, y - 8), (x1 + int(60 * probs[k]), y), color, -1)
            cv2.putText(out, f"{labels[k]} {probs[k]:.2f}", (x1 + 64, y), cv2.FONT_HERSHEY_SIMPLEX,
                        0.35, color, 1, cv2.LINE_AA)
    status = f"{fps:.1f} fps" if fps else ""
    if voice is not None:
        status += "  voice: " + (f"speech {labels[int(np.argmax(voice['probs']))]}"
                                 if voice.get("speech") and voice.get("probs") is not None else "silent")
    cv2.putText(out, status, (8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out
