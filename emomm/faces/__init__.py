"""Face detection and cached face crops, shared by every face and video dataset.

* :mod:`emomm.faces.base` - the detector interface (:class:`FaceDetector`, :class:`Faces`);
* :mod:`emomm.faces.mtcnn` (facenet-pytorch's MTCNN, batched over frames by
  :mod:`emomm.faces.mtcnn_nets`, loaded on first use),
  :mod:`emomm.faces.haar` (OpenCV Haar cascade), :mod:`emomm.faces.blazeface` (MediaPipe's
  BlazeFace on ai-edge-litert) - the detectors;
* :mod:`emomm.faces.detectors` - :func:`build_detector` by name, and ``none`` (already
  cropped) and ``given`` boxes;
* :mod:`emomm.faces.crop` - one face per frame, missing-face policy, margin, eye-line
  alignment, square crops;
* :mod:`emomm.faces.cache` - the on-disk crop cache (atomic entries keyed by source file
  identity and settings);
* :mod:`emomm.faces.mesh` - :class:`FaceMesh`, MediaPipe's 468-point face mesh on the crops
  the detectors give (:func:`mesh_crop` cuts its crop from any detector's box and maps the
  points back), on :mod:`emomm.faces.litert`; its edges for drawing in
  :mod:`emomm.faces.mesh_edges`;
* :mod:`emomm.faces.crop_store` - :class:`FaceCropStore`: cached crops of any video or
  image, built on first use or all at once in parallel (``python -m emomm.prepare``).
"""
from emomm.faces.cache import CropCache, CropEntry
from emomm.faces.crop import ClipCrops, FaceCropper, crop_face
from emomm.faces.base import FaceDetector, Faces
from emomm.faces.detectors import (DETECTORS, GivenBoxDetector, WholeFrameDetector, build_detector, sidecar_path,
                                   write_sidecar)
from emomm.faces.haar import HaarDetector
from emomm.faces.mesh import MESH_POINTS, CropTransform, FaceMesh, mesh_crop
from emomm.faces.mtcnn import MTCNNDetector
from emomm.faces.crop_store import FaceCropStore, format_report

__all__ = [
    "CropCache", "CropEntry", "ClipCrops", "FaceCropper", "crop_face", "DETECTORS",
    "FaceDetector", "Faces", "GivenBoxDetector", "HaarDetector", "MTCNNDetector", "WholeFrameDetector",
    "build_detector", "sidecar_path", "write_sidecar", "FaceCropStore", "format_report",
    "MESH_POINTS", "CropTransform", "FaceMesh", "mesh_crop",
]
