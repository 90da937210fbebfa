"""Face photos that are not cropped yet (``data=face_photos modality=face``): ``ROOT/<class>/*.jpg``.

Each photo goes through the same face-crop path as video frames (detector, largest or
most confident face, margin, optional eye alignment, crop cache); photos without a face are
left out and counted. Class folders, labels and the seeded stratified split are those of
:mod:`emomm.data.datasets.video_folder`.
"""
from __future__ import annotations

from typing import Any, Sequence

from emomm.data.pipelines.face_clips import FaceCropDataModule
from emomm.data.datasets.video_folder import ClassFolderMixin
from emomm.media.images import IMAGE_EXTENSIONS


class FacePhotosDataModule(ClassFolderMixin, FaceCropDataModule):
    extensions = IMAGE_EXTENSIONS

    def __init__(self, root: str, labels: Sequence[str] | None = None, val_fraction: float = 0.15,
                 test_fraction: float = 0.15, **kwargs: Any) -> None:
        kwargs.setdefault("modality", "face")
        super().__init__(root, **kwargs)
        self.labels = list(labels) if labels else None
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
