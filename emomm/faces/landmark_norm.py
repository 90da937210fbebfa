"""Face-mesh point sets normalised for pose and scale, and a procedural reference mesh.

A face mesh (:mod:`emomm.faces.mesh`, MediaPipe's face-landmark model) gives ``[P, 3]`` points
(P = 468, or 478 with irises) in crop pixels: x, y in the image, z at the same scale. Where the
face sits in the crop, how large it is and how the head is tilted in the image plane say
nothing about the emotion, so :func:`normalize_landmarks` removes them: a similarity
(Procrustes) alignment of the *stable points* (eye corners and nose bridge, which expressions
barely move) onto a fixed canonical frame:

* translation: the stable points' centroid goes to the origin (x, y and z);
* scale: their root-mean-square distance from it becomes 1 (x, y and z alike);
* in-plane rotation: the rotation about z that best maps their x, y onto :data:`CANONICAL_STABLE`
  (closed form, least squares; never a reflection).

The result is invariant to any translation, positive scale and in-plane rotation of the input
(tested as a property), batched over leading axes ``[..., P, 3]``.

:func:`reference_mesh` is a procedural 468-point face laid out on MediaPipe's indices (eyes,
brows, lips, nose, face oval where MediaPipe has them; the other points scattered over the
face). It is not MediaPipe's canonical model: it is the geometry the synthetic data and the
test fakes draw faces with, so they need no model file.
"""
from __future__ import annotations

import numpy as np

from emomm.faces.mesh import MESH_POINTS  # points of a mesh without irises; 478-point meshes keep their first 468

#: MediaPipe face-mesh points (0-based) that expressions barely move: the outer and inner eye
#: corners of both eyes (33, 133, 362, 263) and the nose bridge (168, 6).
STABLE_POINTS = (33, 133, 362, 263, 168, 6)

#: Where the stable points go (x right, y down, in units of half the outer-eye-corner
#: distance), in the order of :data:`STABLE_POINTS`.
CANONICAL_STABLE = np.array([[-1.0, 0.0], [-0.4, 0.02], [0.4, 0.02], [1.0, 0.0], [0.0, -0.05], [0.0, 0.1]],
                            np.float64)


# MediaPipe's face-mesh regions (indices as in its FACEMESH_* connection sets).
LEFT_EYE = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
RIGHT_EYE = (362, 398, 384, 385, 386, 387, 388, 466, 263, 249, 390, 373, 374, 380, 381, 382)
LEFT_BROW = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
RIGHT_BROW = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
LIPS_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
NOSE = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2)
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)


def normalize_landmarks(points: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """``[..., P, 3]`` mesh points (P >= 264, MediaPipe's indices) -> ``[..., P, 3]`` float32,
    aligned on the stable points (module docstring). A degenerate mesh (stable points all in
    one place) is centred but not scaled or rotated."""
    x = np.asarray(points, np.float64)
    if x.ndim < 2 or x.shape[-1] != 3 or x.shape[-2] <= max(STABLE_POINTS):
        raise ValueError(f"face-mesh points must be [..., P, 3] with P >= {max(STABLE_POINTS) + 1} "
                         f"(MediaPipe's indices), got {x.shape}")
    stable = x[..., STABLE_POINTS, :]                                          # [..., 6, 3]
    x = x - stable.mean(-2, keepdims=True)
    stable = x[..., STABLE_POINTS, :]
    scale = np.sqrt((stable ** 2).sum(-1).mean(-1))[..., None, None]           # [..., 1, 1]
    ok = scale > eps
    x = np.where(ok, x / np.where(ok, scale, 1.0), x)
    # Procrustes in the image plane: the angle maximising sum <R s_i, c_i>.
    s = x[..., STABLE_POINTS, :2]
    c = CANONICAL_STABLE - CANONICAL_STABLE.mean(0)
    dot = (s * c).sum((-1, -2))
    cross = (s[..., 0] * c[:, 1] - s[..., 1] * c[:, 0]).sum(-1)
    theta = np.where(ok[..., 0, 0], np.arctan2(cross, dot), 0.0)[..., None]    # [..., 1]
    cos, sin = np.cos(theta), np.sin(theta)
    out = np.stack([cos * x[..., 0] - sin * x[..., 1], sin * x[..., 0] + cos * x[..., 1], x[..., 2]], -1)
    return out.astype(np.float32)


def clip_points(points: np.ndarray, num_points: int = MESH_POINTS) -> np.ndarray:
    """``[..., P, 3]`` -> ``[..., num_points, 3]``: the first ``num_points`` (478-point meshes
    with irises -> 468); fewer points than asked is an error naming both."""
    points = np.asarray(points)
    if points.shape[-2] < num_points:
        raise ValueError(f"a face mesh of {points.shape[-2]} points; the model takes {num_points} "
                         "(landmarks.points)")
    return points[..., :num_points, :]


def _ellipse(n: int, cx: float, cy: float, rx: float, ry: float, start: float = np.pi) -> np.ndarray:
    t = start + np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def reference_mesh(expression: dict[str, float] | None = None, identity: dict[str, float] | None = None,
                   ) -> np.ndarray:
    """A procedural face ``[468, 3]`` in canonical units (outer eye corners at x = -1, +1,
    y down), deformed by ``expression`` (the synthetic data's action parameters: ``curve``,
    ``open``, ``raise_``, ``tilt``, ``eye``, ``width``; neutral when None) and ``identity``
    (``face_w``, ``face_h``, ``mouth_y`` as in :func:`emomm.data.synthetic.spec.draw_spec`)."""
    e = {"curve": 0.0, "open": 0.05, "raise_": 0.0, "tilt": 0.0, "eye": 0.6, "width": 1.0} | dict(expression or {})
    ident = {"face_w": 0.34, "face_h": 0.44, "mouth_y": 0.19} | dict(identity or {})
    rng = np.random.default_rng(468)
    pts = np.zeros((MESH_POINTS, 3))
    # everything not named below: a fixed scatter inside the face oval
    r, a = np.sqrt(rng.random(MESH_POINTS)) * 0.9, rng.random(MESH_POINTS) * 2 * np.pi
    fw, fh = ident["face_w"] / 0.34 * 1.45, ident["face_h"] / 0.44 * 1.9
    pts[:, 0], pts[:, 1] = fw * r * np.cos(a), 0.35 + fh * r * np.sin(a)
    pts[list(FACE_OVAL), :2] = _ellipse(len(FACE_OVAL), 0.0, 0.35, fw, fh, start=-np.pi / 2)
    for idx, cx in ((LEFT_EYE, -0.7), (RIGHT_EYE, 0.7)):
        eye = _ellipse(len(idx), cx, 0.0, 0.3, 0.12 * e["eye"])
        pts[list(idx), :2] = eye
    for idx, cx, side in ((LEFT_BROW, -0.7, -1.0), (RIGHT_BROW, 0.7, 1.0)):
        u = np.linspace(-1, 1, len(idx))
        inner = (u * side < 0).astype(float) * np.abs(u)   # 0 at the outer end, 1 at the inner
        pts[list(idx), 0] = cx + 0.35 * u
        pts[list(idx), 1] = -0.45 - 0.25 * e["raise_"] + 0.15 * e["tilt"] * inner + 0.05 * u ** 2
    mouth_y = 0.5 + (ident["mouth_y"] - 0.19) * 4.0
    for idx, h in ((LIPS_OUTER, 0.12 + 0.25 * e["open"]), (LIPS_INNER, 0.02 + 0.3 * e["open"])):
        m = _ellipse(len(idx), 0.0, mouth_y, 0.45 * e["width"], h)
        m[:, 1] -= 0.12 * e["curve"] * (m[:, 0] / (0.45 * e["width"])) ** 2
        pts[list(idx), :2] = m
    pts[list(NOSE), 0] = 0.0
    pts[list(NOSE), 1] = np.linspace(-0.05, 0.5, len(NOSE))
    pts[list(STABLE_POINTS), :2] = CANONICAL_STABLE
    pts[:, 2] = -0.6 * np.clip(1.0 - (pts[:, 0] / fw) ** 2 - ((pts[:, 1] - 0.35) / fh) ** 2, 0.0, 1.0)
    pts[list(NOSE), 2] -= 0.3
    return pts.astype(np.float32)


def place_mesh(mesh: np.ndarray, size: float, angle_deg: float = 0.0, dx: float = 0.0, dy: float = 0.0,
               scale: float = 1.0) -> np.ndarray:
    """A canonical mesh ``[P, 3]`` -> crop pixels of a ``size`` px crop, as a mesh model would
    return it: rotated by ``angle_deg`` in the image plane, scaled, shifted by ``dx``, ``dy``
    (fractions of ``size``) from the centre."""
    t = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    k = size * 0.22 * scale
    out = np.array(mesh, np.float64)
    out[:, :2] = out[:, :2] @ rot.T * k + size * np.array([0.5 + dx, 0.42 + dy])
    out[:, 2] *= k
    return out.astype(np.float32)
