"""In-memory face image datasets and a robust image-folder reader (shared by image datasets)."""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from emomm.data.core.skips import UNREADABLE, Skip, SkipLog
from emomm.labels import canonical
from emomm.media.images import IMAGE_EXTENSIONS, ImageReadError, load_image

log = logging.getLogger(__name__)


class ImageDataset(Dataset):
    """Images held in memory as uint8 arrays; ``transform`` makes the model tensor."""

    def __init__(self, images: Sequence[np.ndarray], labels: Sequence[int],
                 transform: Callable, modality: str = "face", paths: Sequence[str] | None = None):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, [int(x) for x in labels]
        self.transform, self.modality, self.paths = transform, modality, paths

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"inputs": {self.modality: self.transform(self.images[i])},
                "label": self.labels[i], "index": i}


#: What decoding an untrusted image may raise: PIL's own errors, OS errors, the media layer's
#: ImageReadError (a ValueError, also for images over its pixel bound) and PIL's decompression
#: bomb error (or its warning, where warnings are errors).
IMAGE_ERRORS = (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError,
                Image.DecompressionBombWarning)


def image_error_message(path: str | Path, err: BaseException) -> str:
    """``err`` as a message naming ``path`` and the fix (the media layer's ImageReadError
    already does)."""
    if isinstance(err, ImageReadError):
        return str(err)
    return f"{path}: cannot read image ({err}); re-download or delete it"


def _listing(folder: Path, skips: SkipLog, split: str | None) -> list[Path]:
    """The sorted entries of ``folder``; a folder that cannot be listed (permissions) is
    recorded in ``skips`` and lists as empty."""
    try:
        return sorted(folder.iterdir())
    except OSError as err:
        skips.add_folder_errors([err], split)
        return []


def read_class_folders(
    split_dir: Path, label_names: Sequence[str], mode: str = "L", workers: int = 4,
    skips: SkipLog | None = None, split: str | None = None,
) -> tuple[list[np.ndarray], list[int], list[str]]:
    """Read ``split_dir/<class>/*.<image>`` into memory.

    Class folders may use any known spelling (``fear``/``fearful``, ``disgust``/
    ``disgusted``...). Returns ``(images, labels, paths)``. Unreadable images (decompression
    bombs included) are skipped, and so are class folders that cannot be listed: each is
    recorded in ``skips`` (under ``split``), with a message naming it and the fix.
    """
    skips = skips if skips is not None else SkipLog()
    index = {canonical(n): i for i, n in enumerate(label_names)}
    files: list[tuple[Path, int]] = []
    for class_dir in [p for p in _listing(split_dir, skips, split) if p.is_dir()]:
        try:
            name = canonical(class_dir.name)
        except KeyError as err:
            raise ValueError(f"{class_dir}: folder name is not an emotion label. {err}") from None
        if name not in index:
            raise ValueError(f"{class_dir}: label {name!r} is not one of {list(label_names)}")
        files += [(f, index[name]) for f in _listing(class_dir, skips, split)
                  if f.suffix.lower() in IMAGE_EXTENSIONS]
    if not files and not skips.select(split=split):
        raise FileNotFoundError(f"no images in {split_dir}/<class>/ (extensions {IMAGE_EXTENSIONS})")

    def _read(item):
        try:
            return load_image(item[0], mode), None
        except IMAGE_ERRORS as err:
            return None, image_error_message(item[0], err)

    # PIL releases the GIL while decoding, so threads give a real speed-up here.
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(_read, files, chunksize=256))
    images, labels, paths = [], [], []
    for (path, label), (arr, error) in zip(files, results):
        if arr is None:
            skips.add(UNREADABLE, path, error, split)
        else:
            images.append(arr)
            labels.append(label)
            paths.append(str(path))
    return images, labels, paths


def report_skipped(skipped: Sequence[Skip], what: str, total: int) -> None:
    """One warning: how many of ``total`` were left out, and the first few messages."""
    if skipped:
        shown = "\n  ".join(s.message for s in skipped[:5]) + ("\n  ..." if len(skipped) > 5 else "")
        log.warning("skipped %d of %d %s that could not be read:\n  %s", len(skipped), total, what, shown)
