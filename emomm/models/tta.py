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


def tta_views(inputs: dict[str, Any], hflip: Sequence[str] = (),
              shift: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
    """The original inputs plus, per listed modality, copies shifted by ``shift[m]`` px
    left/right/up/down and mirrored copies of all of those: with both options on one
    modality, 10 views (the usual "10-crop" evaluation of FER2013 papers, without
    shrinking the image)."""
    views = [inputs]
    for m, s in (shift or {}).items():
        if m in inputs and s:
            s = int(s)
            views = views + [{**v, m: shift_image(v[m], dx, dy)}
                             for v in views for dx, dy in ((s, 0), (-s, 0), (0, s), (0, -s))]
    for m in hflip:
        if m in inputs:
            views = views + [{**v, m: v[m].flip(-1)} for v in views]
    return views
