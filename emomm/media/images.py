"""Still-image decoding (below datasets, faces and inference)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class ImageReadError(ValueError):
    """An image file that cannot be decoded; the message names the file and the fix."""


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def load_image(path: str | Path, mode: str = "L") -> np.ndarray:
    """An image as uint8 ``[H, W]`` (mode ``L``) or ``[H, W, C]``; raises PIL/OS errors."""
    with Image.open(path) as im:
        return np.asarray(im.convert(mode))


def read_image_rgb(path: str | Path) -> np.ndarray:
    """A still image as RGB uint8 ``[H, W, 3]``, EXIF orientation applied; any failure is
    an :class:`ImageReadError` naming the file."""
    try:
        with Image.open(path) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ImageReadError(f"{path}: cannot read image ({err}); re-download or delete it") from None
