"""A fake face mesh for tests where the real model file may be absent: a deterministic mesh
whose mouth curve follows the crop's mean brightness (so the conftest's FER images, whose
brightness encodes the label, have learnable landmarks), None for about one crop in five
(:func:`no_face`: the sum of its pixels is a multiple of 5), as the real model says "no face"."""
from __future__ import annotations

import numpy as np

from emomm.faces.landmark_norm import place_mesh, reference_mesh


def no_face(crop: np.ndarray) -> bool:
    """Whether the fake finds no face in ``crop`` (black framing does not change it)."""
    return int(np.asarray(crop, np.int64).sum()) % 5 == 0


class FakeMesh:
    def __init__(self, *_, **__) -> None:
        self.calls = 0

    def __call__(self, crops):
        self.calls += 1
        out = []
        for c in crops:
            c = np.asarray(c, np.float32)
            # the crop may be framed in black (landmarks.mesh.pad): read the middle
            h, w = c.shape[:2]
            mid = c[h // 4: h - h // 4, w // 4: w - w // 4]
            level = float(mid.mean())
            out.append(None if no_face(c) else
                       place_mesh(reference_mesh({"curve": (level - 120) / 100}), max(h, w), angle_deg=level % 17))
        return out

    def settings(self) -> dict:
        return {"mesh_model": "fake"}


def use_fake_mesh(monkeypatch) -> FakeMesh:
    """Every mesh the data or the Predictor builds is this fake."""
    fake = FakeMesh()
    for where in ("emomm.faces.landmark_store", "emomm.inference.predictor"):
        monkeypatch.setattr(f"{where}.build_mesh", lambda *a, **k: fake)
    return fake
