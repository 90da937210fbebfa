"""Image preprocessing and augmentation for face crops (torchvision transforms v2).

`FaceTransform` turns a uint8 face image (``[H, W]`` gray or ``[H, W, C]`` RGB numpy
array, or a PIL image) into a normalised float tensor ``[in_chans, S, S]``. The
deterministic part (resize, channels, normalisation) is what checkpoints record as
preprocessing; the random part is switched per option, each off when set to 0/null.

With ``crop_size`` (< ``image_size``), training images are random ``crop_size`` crops of the
``image_size`` face, while evaluation images stay whole (``[in_chans, S, S]``): the model
crops them at test time (centre crop, or the ten-crop views of `emomm.models.eval_views`), reading
``crop_size`` from the checkpoint's preprocessing.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torchvision.transforms import v2

from emomm.data.pipelines.occluders import RandomOcclusion

DEFAULT_AUGMENT = {
    "crop_scale": 0.8,      # RandomResizedCrop minimum area fraction; null = plain resize
    "hflip": 0.5,           # probability of a horizontal flip
    "rotation": 10.0,       # max rotation in degrees
    "brightness": 0.3,      # ColorJitter strengths
    "contrast": 0.3,
    "erasing": 0.25,        # RandomErasing probability (applied after normalisation)
    "occlusion": None,      # {p, kinds, patch_fraction}: emomm.data.pipelines.occluders.RandomOcclusion
}


def to_chw_uint8(image: Any) -> torch.Tensor:
    """Any image-like (PIL, HxW, HxWxC numpy, CHW tensor) -> uint8 tensor [C, H, W]."""
    if isinstance(image, torch.Tensor):
        t = image if image.dim() == 3 else image.unsqueeze(0)
        return t.to(torch.uint8)
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.transpose(2, 0, 1).copy()).to(torch.uint8)


class FaceTransform:
    def __init__(
        self,
        image_size: int = 64,
        in_chans: int = 1,
        mean: Sequence[float] | float = 0.5,
        std: Sequence[float] | float = 0.5,
        train: bool = False,
        augment: dict[str, Any] | None = None,
        crop_size: int | None = None,
    ) -> None:
        if in_chans not in (1, 3):
            raise ValueError(f"in_chans must be 1 or 3, got {in_chans}")
        self.image_size, self.in_chans, self.train = int(image_size), in_chans, train
        self.crop_size = int(crop_size) if crop_size else None
        if self.crop_size is not None and not 0 < self.crop_size <= self.image_size:
            raise ValueError(f"crop_size={crop_size} must be in 1..image_size={image_size} "
                             "(face.crop_size: the training crop of the image_size face; null = no crop)")
        mean = [mean] * in_chans if isinstance(mean, (int, float)) else list(mean)
        std = [std] * in_chans if isinstance(std, (int, float)) else list(std)
        if len(mean) != in_chans or len(std) != in_chans:
            raise ValueError(f"mean/std need {in_chans} values, got {mean} / {std}")
        aug = {**DEFAULT_AUGMENT, **(augment or {})} if train else {}
        unknown = set(aug) - set(DEFAULT_AUGMENT)
        if unknown:
            raise ValueError(f"unknown augment options {sorted(unknown)}; use {sorted(DEFAULT_AUGMENT)}")
        size = (self.image_size, self.image_size)
        ops: list = []
        if aug.get("crop_scale"):
            ops.append(v2.RandomResizedCrop(size, scale=(aug["crop_scale"], 1.0), antialias=True))
        else:
            ops.append(v2.Resize(size, antialias=True))
        if train and self.crop_size is not None:
            # After the (resized) face is whole: a random translation of up to
            # image_size - crop_size px, the augmentation the ten-crop evaluation mirrors.
            ops.append(v2.RandomCrop(self.crop_size))
        if aug.get("hflip"):
            ops.append(v2.RandomHorizontalFlip(aug["hflip"]))
        if aug.get("rotation"):
            ops.append(v2.RandomRotation(aug["rotation"]))
        if aug.get("brightness") or aug.get("contrast"):
            ops.append(v2.ColorJitter(brightness=aug.get("brightness") or 0,
                                      contrast=aug.get("contrast") or 0))
        if aug.get("occlusion"):  # on the final uint8 crop, so region fractions hold
            ops.append(RandomOcclusion(**aug["occlusion"]))
        ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
        if aug.get("erasing"):
            ops.append(v2.RandomErasing(p=aug["erasing"]))
        self.ops = v2.Compose(ops)

    def _channels(self, img: torch.Tensor) -> torch.Tensor:
        c = img.shape[0]
        if c == self.in_chans:
            return img
        if c == 1:  # gray -> RGB
            return img.expand(3, -1, -1)
        if c == 4:  # drop alpha
            img = img[:3]
            return img if self.in_chans == 3 else self._channels(img)
        # RGB -> gray with ITU-R 601 luma weights, the usual grayscale conversion.
        w = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
        return (img.float() * w).sum(0, keepdim=True).round().clamp(0, 255).to(torch.uint8)

    def __call__(self, image: Any) -> torch.Tensor:
        return self.ops(self._channels(to_chw_uint8(image)))

    def describe(self) -> dict[str, Any]:
        """The deterministic preprocessing, as stored in checkpoints."""
        norm = [op for op in self.ops.transforms if isinstance(op, v2.Normalize)][0]
        out = {"image_size": self.image_size, "in_chans": self.in_chans,
               "mean": list(norm.mean), "std": list(norm.std)}
        if self.crop_size is not None:
            out["crop_size"] = self.crop_size  # eval inputs stay image_size; the model crops them
        return out


class FrameTransform:
    """Crops ``[T, S, S, 3]`` uint8 -> ``[T, C, H, W]`` float, one augmentation per clip."""

    def __init__(self, image_size: int = 64, in_chans: int = 3, mean: Any = 0.5, std: Any = 0.5,
                 train: bool = False, augment: dict[str, Any] | None = None) -> None:
        self.face = FaceTransform(image_size=image_size, in_chans=in_chans, mean=mean, std=std,
                                  train=train, augment=augment)
        self.in_chans = in_chans

    def __call__(self, crops: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2)   # [T, 3, S, S]
        if self.in_chans == 1:
            w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x = (x.float() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
        # torchvision v2 transforms draw one set of parameters for all leading dimensions.
        return self.face.ops(x)

    def describe(self) -> dict[str, Any]:
        return self.face.describe()
