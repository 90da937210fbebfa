"""Render a synthetic face image from a `SampleSpec`.

The expression is carried by the mouth (curvature, opening, width), brows (height and
inner-corner tilt), eye opening and nose wrinkles; pose, lighting, occlusion and sensor
noise vary independently so a model has to find those cues. Pure numpy + PIL.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from emomm.data.synthetic.spec import SampleSpec

_SUPERSAMPLE = 3  # draw large, then downsample: cheap anti-aliasing


def _arc(cx, cy, half_w, curve, n=16):
    """Points of a parabola through the mouth corners; curve>0 smiles (corners up)."""
    xs = np.linspace(-1.0, 1.0, n)
    ys = -curve * (xs ** 2 - 1.0) * 0.5  # 0 at the corners, +-curve/2 in the middle
    return [(cx + x * half_w, cy + y * half_w * 0.6) for x, y in zip(xs, ys)]


def face_geometry(spec: SampleSpec, size: int) -> dict[str, float]:
    """Pixel centre and half-size of the face box in the final ``size`` image.

    Video generators use this as the ground-truth box (no detector needed).
    """
    idn, pose = spec.identity, spec.pose
    cx = size * (0.5 + pose["dx"])
    cy = size * (0.5 + pose["dy"])
    half = size * max(idn["face_w"], idn["face_h"]) * pose["scale"]
    return {"cx": cx, "cy": cy, "half": half}


def render_face(spec: SampleSpec, size: int = 64) -> np.ndarray:
    """Grayscale uint8 image ``[size, size]`` of the face described by ``spec``."""
    S = size * _SUPERSAMPLE
    e, idn, pose, sc = spec.expression, spec.identity, spec.pose, spec.scene
    img = Image.new("L", (S, S), int(idn["background"]))
    d = ImageDraw.Draw(img)
    c = S / 2
    fw, fh = idn["face_w"] * S, idn["face_h"] * S
    skin = int(idn["skin"])
    dark = int(max(0, skin - 110))
    # Hair band on top for some identities (a distractor unrelated to emotion).
    if idn["hair"] > 0.5:
        d.ellipse([c - fw * 1.05, c - fh * 1.1, c + fw * 1.05, c + fh * 0.2], fill=int(skin * 0.3))
    d.ellipse([c - fw, c - fh, c + fw, c + fh], fill=skin)

    # Eyes: ellipse height follows eye opening.
    eye_y = c + idn["eye_y"] * S
    eye_w = 0.06 * S
    eye_h = max(0.004, 0.035 * float(np.clip(e["eye"], 0.05, 1.4))) * S
    for side in (-1, 1):
        ex = c + side * idn["eye_dx"] * S
        d.ellipse([ex - eye_w, eye_y - eye_h, ex + eye_w, eye_y + eye_h], fill=245)
        pr = min(eye_h, 0.025 * S)
        d.ellipse([ex - pr, eye_y - pr, ex + pr, eye_y + pr], fill=20)
        # Brows: raised by brow_raise; inner end lowered (angry) or raised (sad) by tilt.
        by = eye_y - (0.075 + 0.04 * e["raise_"]) * S
        inner = (ex - side * 0.07 * S, by + 0.035 * e["tilt"] * S)
        outer = (ex + side * 0.07 * S, by - 0.01 * e["tilt"] * S)
        d.line([inner, outer], fill=dark, width=max(1, int(0.018 * S)))

    # Nose and disgust wrinkles.
    d.line([(c, eye_y + 0.03 * S), (c - 0.02 * S, c + 0.08 * S), (c + 0.01 * S, c + 0.09 * S)],
           fill=dark, width=max(1, int(0.008 * S)))
    if e["wrinkle"] > 0.3:
        for side in (-1, 1):
            x0 = c + side * 0.04 * S
            for k in range(2):
                y0 = eye_y + (0.05 + 0.025 * k) * S
                d.line([(x0, y0), (x0 + side * 0.035 * S, y0 - 0.01 * S)], fill=dark,
                       width=max(1, int(0.008 * S * min(e["wrinkle"], 1.5))))

    # Mouth: upper lip follows the curve; an open mouth adds a lower lip below it.
    my = c + idn["mouth_y"] * S
    half_w = 0.09 * S * float(np.clip(e["width"], 0.5, 1.6))
    upper = _arc(c, my, half_w, e["curve"])
    opening = float(np.clip(e["open"], 0.0, 1.3)) * 0.07 * S
    if opening > 0.004 * S:
        lower = [(x, y + opening * (1 - (2 * i / (len(upper) - 1) - 1) ** 2))
                 for i, (x, y) in enumerate(upper)]
        d.polygon(upper + lower[::-1], fill=30)
    d.line(upper, fill=int(dark * 0.6), width=max(1, int(0.014 * S)))

    # Pose: rotate/scale/shift the whole drawing about the centre.
    img = img.rotate(pose["angle"], resample=Image.BILINEAR, fillcolor=int(idn["background"]))
    scale = pose["scale"]
    inv = 1.0 / scale
    tx, ty = -pose["dx"] * S, -pose["dy"] * S
    img = img.transform((S, S), Image.AFFINE,
                        (inv, 0, c - c * inv + tx * inv, 0, inv, c - c * inv + ty * inv),
                        resample=Image.BILINEAR, fillcolor=int(idn["background"]))
    img = img.resize((size, size), Image.BILINEAR)

    # Scene: directional lighting, contrast, occluder, sensor noise.
    a = np.asarray(img, dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1) - 0.5
    light = 1.0 + sc["light_strength"] * (np.cos(sc["light_angle"]) * xx + np.sin(sc["light_angle"]) * yy) * 2
    a = (a - 128.0) * sc["contrast"] + 128.0
    a = a * light
    if sc["occlude"]:
        x0, y0 = int(sc["occ_x"] * size), int(sc["occ_y"] * size)
        w, h = max(1, int(sc["occ_w"] * size)), max(1, int(sc["occ_h"] * size))
        a[max(0, y0 - h // 2): y0 + h // 2, max(0, x0 - w // 2): x0 + w // 2] = sc["occ_tone"]
    rng = np.random.default_rng([spec.seed, spec.index, 1])
    a = a + rng.normal(0.0, sc["noise"], a.shape)
    return np.clip(a, 0, 255).astype(np.uint8)
