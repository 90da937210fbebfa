"""faces=blazeface: MediaPipe's BlazeFace model on ai-edge-litert finds the faces MTCNN finds
(the astronaut photograph of tests/test_faces.py), in letterboxed frames, with landmarks."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from emomm.faces import FaceCropper, MTCNNDetector, build_detector
from emomm.faces.blazeface import MODEL_SHA256, BlazeFaceDetector, default_model_path, ssd_anchors, weighted_nms
from emomm.utils.wheel_models import sha256
from tests.test_faces import ASTRONAUT_BOX, iou

pytestmark = pytest.mark.skipif(not default_model_path().is_file(),
                                reason=f"{default_model_path()} absent: run `make models`")


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def blaze():
    return build_detector("blazeface")


def test_blazeface_model_file_is_the_checked_one():
    assert sha256(default_model_path()) == MODEL_SHA256
    anchors = ssd_anchors()
    assert anchors.shape == (896, 2) and anchors.min() > 0 and anchors.max() < 1


def test_blazeface_finds_the_astronaut_mtcnn_finds(astronaut, blaze):
    faces = blaze.detect(astronaut)[0]
    assert len(faces) == 1 and faces.scores[0] > 0.8
    mt = MTCNNDetector(min_face_frac=0.0, min_face_px=None).detect(astronaut)[0]
    box = faces.boxes[0]
    # BlazeFace boxes start at the brows (MTCNN's at the hairline): same face, shorter box.
    assert iou(box, mt.boxes[0]) > 0.65 and iou(box, ASTRONAUT_BOX) > 0.65
    (lex, ley), (rex, rey), (nx, ny), (mlx, mly), (mrx, mry) = faces.landmarks[0]
    assert box[0] < lex < nx < rex < box[2] and max(ley, rey) < ny < min(mly, mry) < box[3]
    assert mlx < nx < mrx
    # Landmarks agree with MTCNN's to a few pixels on the eyes and nose.
    assert np.abs(faces.landmarks[0][:3] - mt.landmarks[0][:3]).max() < 12


def test_blazeface_boxes_map_back_through_the_letterbox(astronaut, blaze):
    """The astronaut's head (240 px around the face, scaled to 300) pasted into a 640x480 frame,
    and a mirrored copy beside it: boxes in frame pixels, one per face."""
    frame = np.full((480, 640, 3), 90, np.uint8)
    small = cv2.resize(astronaut[20:260, 110:350], (300, 300), interpolation=cv2.INTER_AREA)
    frame[90:390, 20:320] = small
    frame[90:390, 330:630] = small[:, ::-1]
    faces = blaze.detect(frame)[0]
    assert len(faces) == 2
    expected = (ASTRONAUT_BOX - np.array([110, 20, 110, 20])) * 300 / 240 + np.array([20, 90, 20, 90])
    left = faces.boxes[np.argmin(faces.boxes[:, 0])]
    assert iou(left, expected) > 0.6
    right = faces.boxes[np.argmax(faces.boxes[:, 0])]
    assert right[0] > 330
    assert len(blaze.detect(np.full((480, 640, 3), 90, np.uint8))[0]) == 0
    # The cropper takes it like any detector; settings name it for the crop cache.
    crop = FaceCropper(blaze, size=64).crop_frames(frame).crops[0]
    assert crop.shape == (64, 64, 3)
    assert blaze.settings()["detector"] == "blazeface"


def test_weighted_nms_merges_overlaps():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.6, 0.7], np.float32)
    kps = np.zeros((3, 6, 2), np.float32)
    b, s, _ = weighted_nms(boxes, scores, kps, iou=0.3)
    assert len(b) == 2 and s.tolist() == pytest.approx([0.9, 0.7])
    assert b[0][0] == pytest.approx(0.6 / 1.5)   # score-weighted mean of 0 and 1


def test_blazeface_missing_model_says_make_models(tmp_path):
    with pytest.raises(FileNotFoundError, match="make models"):
        BlazeFaceDetector(model_path=str(tmp_path / "nope.tflite"))


def test_faces_blazeface_config_builds_it(cfg_factory):
    cfg = cfg_factory(["modality=video", "faces=blazeface"])
    assert cfg.faces.detector == "blazeface"
    det = build_detector(cfg.faces.detector, **cfg.faces.blazeface)
    assert isinstance(det, BlazeFaceDetector)
