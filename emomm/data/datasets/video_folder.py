"""Any labelled videos (``data=video_folder``): ``ROOT/<class>/*.<video>``.

Class folders are emotion names in any known spelling (``angry``/``anger``, ``fear``/
``fearful``...). Labels are the sorted canonical class names found (or ``labels``, which
also fixes their order). Without speaker ids, the split is a seeded stratified one
(``val_fraction``, ``test_fraction``).
"""
from __future__ import annotations

from typing import Any, Sequence

from emomm.data.pipelines.face_clips import FaceCropDataModule, MediaItem
from emomm.media.video import VIDEO_EXTENSIONS
from emomm.labels import canonical


class ClassFolderMixin:
    """``ROOT/<class>/*`` listing shared by the video and photo folder datasets."""

    extensions: Sequence[str] = ()

    def _class_dirs(self):
        self._check_root()
        out = {}
        for d in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                out.setdefault(canonical(d.name), []).append(d)
            except KeyError as err:
                raise ValueError(f"{d}: folder name is not an emotion label. {err}") from None
        if not out:
            raise FileNotFoundError(f"{self.root}: no class folders (expected ROOT/<class>/*)")
        return out

    @property
    def label_names(self) -> list[str]:
        if self.labels:
            return [canonical(n) for n in self.labels]
        return sorted(self._class_dirs())

    def list_items(self) -> list[MediaItem]:
        index = {n: i for i, n in enumerate(self.label_names)}
        items = []
        for name, dirs in self._class_dirs().items():
            if name not in index:
                raise ValueError(f"{dirs[0]}: class {name!r} is not in data.labels={list(self.labels)}")
            for d in dirs:
                items += [MediaItem(f, index[name]) for f in self.list_files(d, self.extensions)]
        if not items:
            raise FileNotFoundError(f"{self.root}: no files with extensions {list(self.extensions)} "
                                    "in its class folders")
        return items

    def split_items(self, items):
        return self.stratified_split(items, self.val_fraction, self.test_fraction)


class VideoFolderDataModule(ClassFolderMixin, FaceCropDataModule):
    extensions = VIDEO_EXTENSIONS

    def __init__(self, root: str, labels: Sequence[str] | None = None, val_fraction: float = 0.15,
                 test_fraction: float = 0.15, **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        self.labels = list(labels) if labels else None
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
