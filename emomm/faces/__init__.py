"""Face detection and cached face crops, shared by every face and video dataset.

* :mod:`emomm.faces.detectors` - MTCNN (facenet-pytorch, batched over frames), OpenCV
  Haar cascade, ``none`` (already cropped) and ``given`` boxes;
* :mod:`emomm.faces.crop` - one face per frame, missing-face policy, margin, eye-line
  alignment, square crops;
* :mod:`emomm.faces.cache` - the on-disk crop cache (atomic entries keyed by source file
  identity and settings);
* :mod:`emomm.faces.pipeline` - :class:`FaceCropStore`: cached crops of any video or
  image, built on first use or all at once in parallel (``python -m emomm.prepare``).
"""
from emomm.faces.cache import CropCache, CropEntry
from emomm.faces.crop import ClipCrops, FaceCropper, crop_face
from emomm.faces.detectors import (DETECTORS, FaceDetector, Faces, GivenBoxDetector, HaarDetector,
                                   MTCNNDetector, WholeFrameDetector, build_detector, sidecar_path,
                                   write_sidecar)
from emomm.faces.pipeline import FaceCropStore, format_report

__all__ = [
    "CropCache", "CropEntry", "ClipCrops", "FaceCropper", "crop_face", "DETECTORS",
    "FaceDetector", "Faces", "GivenBoxDetector", "HaarDetector", "MTCNNDetector", "WholeFrameDetector",
    "build_detector", "sidecar_path", "write_sidecar", "FaceCropStore", "format_report",
]
