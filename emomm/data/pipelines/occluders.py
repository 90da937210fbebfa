"""Synthetic face occluders: the masks, and the training augmentation (``data.augment.occlusion``).

The robustness evaluation that scores a model under them (``emomm.eval occlusion=...``) is
:mod:`emomm.analysis.occlusion`.

Three kinds, each a boolean mask over the aligned face crop whose pixels are replaced by a
fill colour:

* ``lower`` - a surgical mask from just above the nose tip to below the chin;
* ``upper`` - sunglasses: a dark band across both eyes;
* ``patch:F`` - one square occluder covering the fraction ``F`` of the crop (``patch:0.2`` =
  20 %), at a uniformly random position fully inside it (a hand, a cup, a microphone).

Geometry is a set of fractions of the crop (``x`` from the left, ``y`` from the top), so it
is the same at any resolution. It is fitted to FER2013's rough alignment (48x48: eyes at
about y = 0.35-0.40, nose tip about 0.60, mouth about 0.75, chin at about 0.95); the face
pipelines' crops (MTCNN/BlazeFace box plus margin, eye-line aligned) and the synthetic
faces frame the face the same way, so they use the same fractions:

* ``lower``: the polygon :data:`LOWER_POLYGON` - top edge at y = 0.54 across the nose
  (x 0.30-0.70), widest over the cheeks (x 0.10-0.90 at y 0.64-0.80), closing around the
  chin at y = 0.99 (x 0.34-0.66); 30 % of a 48x48 crop.
* ``upper``: the band :data:`UPPER_BAND` - y 0.26-0.52 over x 0.06-0.94 (24 % of a 48x48 crop);
  deep enough for the synthetic faces too, whose eyes sit lower (y 0.40-0.46).
* ``patch:F``: a square of side ``round(sqrt(F) * S)`` for an ``S x S`` crop.

Occlusion happens on the face crop after crop/resize and before normalisation. Training
(:class:`RandomOcclusion`) draws from torch's generator, which Lightning seeds per worker.
A video clip gets one mask for all its frames (the occluder stays put).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch

KINDS = ("lower", "upper", "patch")

#: Surgical mask outline, (x, y) fractions of the crop, clockwise from the nose's left.
LOWER_POLYGON = ((0.30, 0.54), (0.70, 0.54), (0.90, 0.64), (0.90, 0.80), (0.66, 0.99),
                 (0.34, 0.99), (0.10, 0.80), (0.10, 0.64))
#: Sunglasses band: (x0, y0, x1, y1) fractions of the crop.
UPPER_BAND = (0.06, 0.26, 0.94, 0.52)
#: Fill colours (RGB, 0-255): a light-blue surgical mask, black sunglasses, a grey patch.
#: Gray inputs get the luma of the colour (ITU-R 601, as the transforms' RGB->gray).
FILL_RGB = {"lower": (170, 200, 225), "upper": (20, 20, 20), "patch": (128, 128, 128)}
DEFAULT_PATCH_FRACTION = 0.2


@dataclass(frozen=True)
class OcclusionSpec:
    """One occlusion condition; ``fraction`` only for ``patch`` (of the crop area, 0-1)."""

    kind: str
    fraction: float | None = None

    @property
    def name(self) -> str:
        return f"patch:{self.fraction:g}" if self.kind == "patch" else self.kind


def parse_occlusion(spec: str | OcclusionSpec) -> OcclusionSpec:
    """``"lower"``, ``"upper"``, ``"patch"`` (20 %) or ``"patch:F"`` -> :class:`OcclusionSpec`."""
    if isinstance(spec, OcclusionSpec):
        return spec
    text = str(spec).strip().lower()
    kind, _, arg = text.partition(":")
    if kind not in KINDS:
        raise ValueError(f"unknown occlusion {spec!r}: use lower, upper or patch:F (F = fraction "
                         "of the face area in (0, 1), e.g. patch:0.2)")
    if kind != "patch":
        if arg:
            raise ValueError(f"occlusion {spec!r}: only patch takes a fraction (patch:0.2)")
        return OcclusionSpec(kind)
    try:
        fraction = float(arg) if arg else DEFAULT_PATCH_FRACTION
    except ValueError:
        raise ValueError(f"occlusion {spec!r}: the patch fraction must be a number, e.g. patch:0.2") from None
    if not 0 < fraction < 1:
        raise ValueError(f"occlusion {spec!r}: the patch fraction must be in (0, 1), e.g. patch:0.2")
    return OcclusionSpec("patch", fraction)


# -- masks (pure functions) ---------------------------------------------------------------------

def _centres(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates as fractions: ``x [1, W]``, ``y [H, 1]``."""
    return ((np.arange(width) + 0.5) / width)[None, :], ((np.arange(height) + 0.5) / height)[:, None]


def polygon_mask(polygon: Sequence[tuple[float, float]], height: int, width: int) -> np.ndarray:
    """Bool ``[H, W]``: pixels whose centre lies inside ``polygon`` ((x, y) fractions), even-odd rule."""
    x, y = _centres(height, width)
    inside = np.zeros((height, width), dtype=bool)
    pts = list(polygon)
    for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]):
        if y0 == y1:
            continue
        crosses = (y0 > y) != (y1 > y)                     # [H, 1]: the edge spans this row
        x_at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)       # [H, 1]: where it crosses the row
        inside ^= crosses & (x < x_at)
    return inside


def box_mask(box: tuple[float, float, float, float], height: int, width: int) -> np.ndarray:
    """Bool ``[H, W]``: pixels whose centre lies in ``(x0, y0, x1, y1)`` (fractions)."""
    x, y = _centres(height, width)
    x0, y0, x1, y1 = box
    return ((x >= x0) & (x < x1)) & ((y >= y0) & (y < y1))


def patch_mask(fraction: float, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Bool ``[H, W]``: one rectangle of about ``fraction * H * W`` pixels (side ``sqrt(fraction)``
    of each dimension) at a uniformly random position fully inside the crop."""
    ph = min(height, max(1, round(math.sqrt(fraction) * height)))
    pw = min(width, max(1, round(math.sqrt(fraction) * width)))
    top = int(rng.integers(0, height - ph + 1))
    left = int(rng.integers(0, width - pw + 1))
    mask = np.zeros((height, width), dtype=bool)
    mask[top:top + ph, left:left + pw] = True
    return mask


def occlusion_mask(spec: str | OcclusionSpec, height: int, width: int,
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """Bool ``[H, W]`` mask of ``spec`` on an ``H x W`` face crop (True = occluded).
    ``rng`` places patches (a fresh unseeded generator when None)."""
    spec = parse_occlusion(spec)
    if spec.kind == "lower":
        return polygon_mask(LOWER_POLYGON, height, width)
    if spec.kind == "upper":
        return box_mask(UPPER_BAND, height, width)
    return patch_mask(spec.fraction, height, width, rng if rng is not None else np.random.default_rng())


def fill_colour(kind: str, channels: int) -> tuple[float, ...]:
    """The fill of ``kind`` in 0-255 for 1 (luma) or 3 (RGB) channels."""
    r, g, b = FILL_RGB[kind]
    if channels == 3:
        return (float(r), float(g), float(b))
    if channels == 1:
        return (0.299 * r + 0.587 * g + 0.114 * b,)
    raise ValueError(f"occlusion needs 1 or 3 channels, got {channels}")


def apply_mask(image: torch.Tensor | np.ndarray, mask: np.ndarray,
               fill: Sequence[float]) -> torch.Tensor | np.ndarray:
    """A copy of ``image`` with ``mask`` pixels set to ``fill`` (one value per channel).

    ``image``: a tensor ``[..., C, H, W]`` (CHW image, ``[T, C, H, W]`` clip: every frame gets
    the mask) or an array ``[H, W]`` / ``[H, W, C]``; any dtype (fill is rounded for integers).
    ``mask``: bool ``[H, W]``.
    """
    if isinstance(image, torch.Tensor):
        c = image.shape[-3]
        value = torch.tensor(list(fill) * (c if len(fill) == 1 else 1), dtype=torch.float32)[:c]
        if not image.dtype.is_floating_point:
            value = value.round()
        m = torch.from_numpy(np.ascontiguousarray(mask)).to(image.device)
        out = image.clone()
        out[..., m] = value.to(image.dtype).to(image.device).view(-1, 1).expand(c, int(m.sum()))
        return out
    arr = np.array(image, copy=True)
    value = np.asarray(fill, dtype=np.float64)
    if not np.issubdtype(arr.dtype, np.floating):
        value = np.round(value)
    if arr.ndim == 2:
        arr[mask] = value[0]
    else:
        arr[mask] = np.broadcast_to(value, (arr.shape[-1],)) if value.size == 1 else value
    return arr


def occlude(image: torch.Tensor | np.ndarray, spec: str | OcclusionSpec,
            rng: np.random.Generator | None = None) -> torch.Tensor | np.ndarray:
    """``image`` (uint8 0-255: tensor ``[..., C, H, W]`` or array ``[H, W(, C)]``) with ``spec``'s
    occluder painted in its fill colour."""
    spec = parse_occlusion(spec)
    if isinstance(image, torch.Tensor):
        (c, h, w) = image.shape[-3:]
    else:
        h, w = image.shape[:2]
        c = 1 if image.ndim == 2 else image.shape[2]
    return apply_mask(image, occlusion_mask(spec, h, w, rng), fill_colour(spec.kind, c))


# -- training augmentation --------------------------------------------------------------------

class RandomOcclusion:
    """Training transform on uint8 crops ``[..., C, H, W]`` (one draw per call, so a clip's
    frames share it): with probability ``p``, one of ``kinds`` (uniformly) is painted.

    ``kinds``: occlusion specs (``lower``, ``upper``, ``patch`` or ``patch:F``); a plain
    ``patch`` covers a fraction drawn uniformly from ``patch_fraction`` (``[lo, hi]`` or a
    number). Random choices come from torch's generator (seeded per worker by Lightning).
    """

    def __init__(self, p: float = 0.5, kinds: Iterable[str] = KINDS,
                 patch_fraction: float | Sequence[float] = (0.1, 0.3)) -> None:
        if not 0 <= float(p) <= 1:
            raise ValueError(f"augment.occlusion.p must be in [0, 1], got {p}")
        self.p = float(p)
        self.kinds = [str(k) for k in (list(kinds) if not isinstance(kinds, str) else [kinds])]
        if not self.kinds:
            raise ValueError("augment.occlusion.kinds is empty; list some of lower, upper, patch")
        # A plain "patch" (no ":F") is None here: its size is drawn per call.
        try:
            self.specs = [None if k.strip().lower() == "patch" else parse_occlusion(k) for k in self.kinds]
        except ValueError as err:
            raise ValueError(f"augment.occlusion.kinds={self.kinds}: {err}") from None
        lo_hi = ([float(patch_fraction)] * 2 if isinstance(patch_fraction, (int, float))
                 else [float(v) for v in patch_fraction])
        if len(lo_hi) != 2 or not 0 < lo_hi[0] <= lo_hi[1] < 1:
            raise ValueError("augment.occlusion.patch_fraction must be F or [lo, hi] within (0, 1), "
                             f"got {patch_fraction}")
        self.patch_fraction = tuple(lo_hi)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """``image``: uint8 ``[..., C, H, W]`` -> the same shape, maybe occluded."""
        if self.p <= 0 or float(torch.rand(())) >= self.p:
            return image
        spec = self.specs[int(torch.randint(len(self.specs), ()))]
        rng = np.random.default_rng(int(torch.randint(2 ** 31 - 1, ())))
        if spec is None:
            spec = OcclusionSpec("patch", float(rng.uniform(*self.patch_fraction)))
        return occlude(image, spec, rng)

    def __repr__(self) -> str:
        return f"RandomOcclusion(p={self.p}, kinds={self.kinds}, patch_fraction={list(self.patch_fraction)})"
