"""Smaller training crops for the first epochs, as a Lightning callback (progressive resizing).

A convolutional network's step costs about the number of pixels it sees, so training the
first ``epochs`` epochs on random ``size x size`` crops of each training image (of the crop
the loader already gives: the random 40 px crop of a 48 px FER2013 face, say) buys more
epochs in the same time: 32 of 40 px is 0.64 of the pixels, and a FER2013 epoch of the
whitened CNN took ~73 s instead of ~98 s on a 2-core Zen 4 (0.75: the rest is fixed cost). The crops keep the
image's scale (no resizing), so the filters learn at the scale the later full-size epochs and
evaluation use, and a network with global pooling takes any input size. Validation, test and
predict are untouched. (Progressive resizing: e.g. FFCV's ImageNet recipes; here by cropping
rather than downscaling, which would change the faces' scale between the two phases.)

``conf/callbacks/small_crops.yaml`` adds it to the default callbacks; a recipe can also list
it under ``callbacks:`` (``experiment=fer2013_fast`` with ``callbacks.small_crops``).
"""
from __future__ import annotations

from typing import Any

import lightning as L
import torch


def random_crops(x: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x [B, C, H, W]`` -> ``[B, C, size, size]``: each image's own random crop (offsets
    uniform over every position that fits), in one indexing op."""
    b, c, h, w = x.shape
    if not 0 < size <= min(h, w):
        raise ValueError(f"small_crops size={size} must be in 1..{min(h, w)} (the training crop is {h}x{w})")
    if size == h and size == w:
        return x
    top = torch.randint(0, h - size + 1, (b,), generator=generator, device=x.device)
    left = torch.randint(0, w - size + 1, (b,), generator=generator, device=x.device)
    offsets = torch.arange(size, device=x.device)
    rows = (top[:, None] + offsets)[:, None, :, None]   # [B, 1, size, 1]
    cols = (left[:, None] + offsets)[:, None, None, :]  # [B, 1, 1, size]
    return x[torch.arange(b, device=x.device)[:, None, None, None], torch.arange(c, device=x.device)[None, :, None, None],
             rows, cols]


class SmallCrops(L.Callback):
    """Args:
        size: side of the random crops taken from each training image in the first epochs.
        epochs: how many epochs (from the first) train on them; later epochs see the
            loader's images whole.
        modality: the batch input that is cropped (images ``[B, C, H, W]``).
    """

    def __init__(self, size: int, epochs: int, modality: str = "face") -> None:
        if size < 1 or epochs < 0:
            raise ValueError(f"callbacks.small_crops: size={size} must be >= 1 and epochs={epochs} >= 0")
        self.size, self.epochs, self.modality = int(size), int(epochs), modality

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        # The hook gets the very batch dict that training_step receives next, so replacing
        # the modality's tensor in it is enough.
        if trainer.current_epoch >= self.epochs:
            return
        inputs = batch.get("inputs", {}) if isinstance(batch, dict) else {}
        x = inputs.get(self.modality)
        if isinstance(x, torch.Tensor) and x.dim() == 4:
            inputs[self.modality] = random_crops(x, self.size)
