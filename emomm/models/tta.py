"""Test-time augmentation: the extra views of a batch that eval-time logits are averaged over.

Views are pure functions of the inputs (no randomness), so evaluation stays deterministic.
Images are tensors ``[..., C, H, W]`` (faces ``[B, C, H, W]``, face clips ``[B, T, C, H, W]``).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F


def shift_image(x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """``x`` moved ``dx`` px right and ``dy`` px down, same shape; the uncovered border
    repeats the edge pixels (black borders would be a cue the model never saw in training)."""
    if dx == 0 and dy == 0:
        return x
    pad = max(abs(dx), abs(dy))
    h, w = x.shape[-2:]
    flat = x.reshape(-1, *x.shape[-3:])  # replicate padding wants [N, C, H, W]
    padded = F.pad(flat, (pad, pad, pad, pad), mode="replicate")
    out = padded[..., pad - dy: pad - dy + h, pad - dx: pad - dx + w]
    return out.reshape(x.shape)


def crop_image(x: torch.Tensor, size: int, where: str = "center") -> torch.Tensor:
    """The ``size`` x ``size`` crop of ``x [..., H, W]`` at ``where``: ``center``, or a corner
    ``tl``/``tr``/``bl``/``br``. The centre rounds down to the top-left, as torchvision's
    CenterCrop does."""
    h, w = x.shape[-2:]
    if size > h or size > w:
        raise ValueError(f"crop size {size} exceeds the {h}x{w} input; crop_size must be <= image_size")
    top = {"tl": 0, "tr": 0, "bl": h - size, "br": h - size}.get(where, (h - size) // 2)
    left = {"tl": 0, "bl": 0, "tr": w - size, "br": w - size}.get(where, (w - size) // 2)
    return x[..., top: top + size, left: left + size]


FIVE_CROPS = ("center", "tl", "tr", "bl", "br")


def tta_views(inputs: dict[str, Any], hflip: Sequence[str] = (),
              shift: Mapping[str, int] | None = None, crop: Mapping[str, int | None] | None = None,
              tencrop: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The original inputs plus, per listed modality, copies shifted by ``shift[m]`` px
    left/right/up/down and mirrored copies of all of those: with both options on one
    modality, 10 views (the usual "10-crop" evaluation of FER2013 papers, without
    shrinking the image).

    ``crop = {m: size}`` (a model trained on random ``size`` crops, see ``FaceTransform``):
    each view of ``m`` is centre-cropped to ``size``; with ``m`` also in ``tencrop``, the four
    corner crops join the centre and every crop is also mirrored: the ten-crop evaluation
    (4 corners + centre, x mirror) of the strongest FER2013 recipes. ``tencrop`` on a
    modality without a crop size is an error (there is nothing to crop)."""
    crop = {m: int(s) for m, s in (crop or {}).items() if s}
    bad = [m for m in tencrop if m in inputs and m not in crop]
    if bad:
        raise ValueError(f"tta_tencrop={list(tencrop)}: {bad} have no crop size; train with "
                         "face.crop_size (e.g. 40 for 48 px faces) or leave tta_tencrop empty")
    views = [inputs]
    for m, size in crop.items():
        if m in inputs:
            spots = FIVE_CROPS if m in tencrop else ("center",)
            views = [{**v, m: crop_image(v[m], size, where)} for v in views for where in spots]
    hflip = list(dict.fromkeys([*hflip, *(m for m in tencrop if m in crop)]))
    for m, s in (shift or {}).items():
        if m in inputs and s:
            s = int(s)
            views = views + [{**v, m: shift_image(v[m], dx, dy)}
                             for v in views for dx, dy in ((s, 0), (-s, 0), (0, s), (0, -s))]
    for m in hflip:
        if m in inputs:
            views = views + [{**v, m: v[m].flip(-1)} for v in views]
    return views
