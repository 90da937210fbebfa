"""Still-image decoding (below datasets, faces and inference).

Every image emomm decodes, from a path or from bytes, is opened by :func:`open_image`, which
reads the header and refuses an image of more than ``max_pixels`` pixels (default
:data:`MAX_PIXELS`) *before* any pixel is decoded: a decompression bomb (a 20000x20000 PNG of
a few kB, or only its header) is an :class:`ImageTooLargeError` naming the file, never a
1.2 GB allocation or PIL's ``DecompressionBombError``.
"""
from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import IO, Iterator

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

#: Most pixels an image (or a video frame) may have: about 8000 x 8000, 64 MP. Above it the
#: header is refused before decoding. Callers take ``max_pixels=`` to change it (predict:
#: ``predictor.max_pixels``); PIL's own hard limit (2 x ``Image.MAX_IMAGE_PIXELS``, 179 MP)
#: still applies above that.
MAX_PIXELS = 64_000_000

# PIL warns from 89 MP on; emomm refuses from MAX_PIXELS on (below that), so the warning
# would only repeat, without naming the file, what the error below says.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class ImageReadError(ValueError):
    """An image file that cannot be decoded; the message names the file and the fix."""


class ImageTooLargeError(ImageReadError):
    """An image (or video frame) with more pixels than allowed: a decompression bomb or a
    scan too large to predict on."""


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def check_pixels(name: str | Path, width: int, height: int, max_pixels: int | None = None,
                 what: str = "image", error: type[ValueError] = ImageTooLargeError) -> None:
    """Raise ``error`` naming ``name`` when ``width`` x ``height`` is above ``max_pixels``
    (default :data:`MAX_PIXELS`); video decoding raises its own error type."""
    limit = int(MAX_PIXELS if max_pixels is None else max_pixels)
    n = int(width) * int(height)
    if n > limit:
        raise error(f"{name}: the {what} is {width}x{height} = {n:,} pixels, more than the {limit:,} "
                    "allowed (max_pixels; a decompression bomb looks like this); re-export it smaller "
                    "(e.g. `ffmpeg -i IN -vf scale=1920:-2 OUT`) or delete it")


@contextlib.contextmanager
def open_image(source: str | Path | IO[bytes], name: str | Path | None = None,
               max_pixels: int | None = None) -> Iterator[Image.Image]:
    """A PIL image whose header was read and whose size was checked, nothing decoded yet.

    ``source``: a path or a binary file object (``io.BytesIO`` of an upload); ``name`` is
    what errors call it (default: the path). Raises :class:`ImageTooLargeError` above
    ``max_pixels`` and :class:`ImageReadError` for anything PIL cannot open; errors raised
    inside the ``with`` block (decoding) are the caller's to wrap.
    """
    name = source if name is None else name
    try:
        im = Image.open(source)
    except Image.DecompressionBombError as err:   # above PIL's own hard limit (179 MP)
        limit = int(MAX_PIXELS if max_pixels is None else max_pixels)
        raise ImageTooLargeError(f"{name}: the image has more pixels than allowed (max_pixels {limit:,}; PIL: "
                                 f"{err}); re-export it smaller (e.g. `ffmpeg -i IN -vf scale=1920:-2 OUT`) "
                                 "or delete it") from None
    except Exception as err:   # UnidentifiedImageError, OSError, or a plugin's own on odd bytes
        raise ImageReadError(f"{name}: cannot read image ({err}); re-download or delete it") from None
    with im:
        check_pixels(name, im.width, im.height, max_pixels)
        yield im


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


def decode_image(source: str | Path | IO[bytes], mode: str = "RGB", name: str | Path | None = None,
                 max_pixels: int | None = None, exif: bool = True) -> np.ndarray:
    """An image as uint8 ``[H, W]`` (mode ``L``) or ``[H, W, C]`` (``RGB``), its size checked
    from the header first (:func:`open_image`); 16-bit images are scaled to 8 bits, alpha is
    dropped, EXIF orientation applied when ``exif``. Any failure is an :class:`ImageReadError`
    naming the file."""
    name = source if name is None else name
    with open_image(source, name, max_pixels) as im:
        try:
            return np.asarray(to_8bit(ImageOps.exif_transpose(im) if exif else im).convert(mode))
        except Exception as err:   # truncated or corrupt pixel data: OSError, SyntaxError...
            raise ImageReadError(f"{name}: cannot read image ({err}); re-download or delete it") from None


def load_image(path: str | Path, mode: str = "L", max_pixels: int | None = None) -> np.ndarray:
    """An image as uint8 ``[H, W]`` (mode ``L``) or ``[H, W, C]`` (what datasets read; no EXIF
    rotation); raises :class:`ImageReadError` naming the file."""
    return decode_image(path, mode, max_pixels=max_pixels, exif=False)


def read_image_rgb(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """A still image as RGB uint8 ``[H, W, 3]``, EXIF orientation applied; any failure is
    an :class:`ImageReadError` naming the file."""
    return decode_image(path, "RGB", max_pixels=max_pixels)
