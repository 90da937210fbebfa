"""In-memory face image datasets and a robust image-folder reader (shared by image datasets)."""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PIL import UnidentifiedImageError
from torch.utils.data import Dataset

from emomm.labels import canonical
from emomm.media.images import IMAGE_EXTENSIONS, load_image

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


def read_class_folders(
    split_dir: Path, label_names: Sequence[str], mode: str = "L", workers: int = 4
) -> tuple[list[np.ndarray], list[int], list[str], list[str]]:
    """Read ``split_dir/<class>/*.<image>`` into memory.

    Class folders may use any known spelling (``fear``/``fearful``, ``disgust``/
    ``disgusted``...). Returns ``(images, labels, paths, skipped)``: unreadable files are
    skipped, and listed in ``skipped`` so callers can report them.
    """
    index = {canonical(n): i for i, n in enumerate(label_names)}
    files: list[tuple[Path, int]] = []
    for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        try:
            name = canonical(class_dir.name)
        except KeyError as err:
            raise ValueError(f"{class_dir}: folder name is not an emotion label. {err}") from None
        if name not in index:
            raise ValueError(f"{class_dir}: label {name!r} is not one of {list(label_names)}")
        files += [(f, index[name]) for f in sorted(class_dir.iterdir())
                  if f.suffix.lower() in IMAGE_EXTENSIONS]
    if not files:
        raise FileNotFoundError(f"no images in {split_dir}/<class>/ (extensions {IMAGE_EXTENSIONS})")

    def _read(item):
        try:
            return load_image(item[0], mode)
        except (UnidentifiedImageError, OSError, ValueError):
            return None

    # PIL releases the GIL while decoding, so threads give a real speed-up here.
    with ThreadPoolExecutor(workers) as pool:
        arrays = list(pool.map(_read, files, chunksize=256))
    images, labels, paths, skipped = [], [], [], []
    for (path, label), arr in zip(files, arrays):
        if arr is None:
            skipped.append(str(path))
        else:
            images.append(arr)
            labels.append(label)
            paths.append(str(path))
    return images, labels, paths, skipped


def report_skipped(skipped: Sequence[str], what: str, total: int) -> None:
    if skipped:
        shown = ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        log.warning("skipped %d of %d %s that could not be read: %s (re-download or delete them)",
                    len(skipped), total, what, shown)
