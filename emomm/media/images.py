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


def to_8bit(im: Image.Image) -> Image.Image:
    """16- and 32-bit integer / float grey images scaled to 8 bits.

    PIL's ``convert("L")`` *clips* ``I;16`` / ``I`` values above 255 instead of scaling
    them, so a 16-bit PNG face came out almost all white. 16-bit data is divided by 257
    (65535 -> 255); 32-bit integer and float images are scaled by their own maximum.
    """
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        if im.mode.startswith("I;16"):
            a = a / 257.0
        else:
            top = float(a.max()) if a.size else 0.0
            a = a * (255.0 / top) if top > 255.0 else a
        return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), mode="L")
    return im


def load_image(path: str | Path, mode: str = "L") -> np.ndarray:
    """An image as uint8 ``[H, W]`` (mode ``L``) or ``[H, W, C]``; raises PIL/OS errors.
    16-bit images are scaled to 8 bits, alpha is dropped (RGBA -> RGB/L)."""
    with Image.open(path) as im:
        return np.asarray(to_8bit(im).convert(mode))


def read_image_rgb(path: str | Path) -> np.ndarray:
    """A still image as RGB uint8 ``[H, W, 3]``, EXIF orientation applied; any failure is
    an :class:`ImageReadError` naming the file."""
    try:
        with Image.open(path) as im:
            return np.asarray(to_8bit(ImageOps.exif_transpose(im)).convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ImageReadError(f"{path}: cannot read image ({err}); re-download or delete it") from None
