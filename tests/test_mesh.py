"""emomm.faces.mesh: MediaPipe's 468-point face mesh on ai-edge-litert finds the astronaut's
face (skimage's photograph, as in tests/test_blazeface.py), upright or rotated, and its points
map back into the image; no face means no mesh. Skipped, with the command that fetches it,
when the model file is absent."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import skimage.data

from emomm.faces.mesh import MESH_POINTS, FaceMesh, as_rgb, default_model_path, mesh_crop, missing_model_message
from emomm.faces import mesh_edges
from emomm.utils.wheel_models import FACEMESH, MODELS, sha256

HAVE_MESH = default_model_path().is_file()
needs_model = pytest.mark.skipif(not HAVE_MESH, reason=missing_model_message(default_model_path()))

# The astronaut's face (skimage.data.astronaut(), 512x512) as BlazeFace finds it: box and the
# 5-point landmarks (eye image-left, eye image-right, nose, mouth corners).
BOX = np.array([178.1, 80.9, 272.1, 175.0], np.float32)
LANDMARKS = np.array([[203.9, 100.8], [248.0, 108.4], [222.0, 124.7], [201.3, 142.4], [236.5, 148.5]], np.float32)
NOSE_TIP, EYE_LEFT, EYE_RIGHT, CHIN = 1, 33, 263, 152   # mesh indices (eyes: outer corners, image left/right)


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def mesh():
    return FaceMesh()


def rotate(image: np.ndarray, points: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` rotated about its centre (same size) and ``points`` ``[P, 2]`` moved with it."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), degrees, 1.0)
    out = cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    return out, points @ m[:, :2].T + m[:, 2]


def test_mesh_model_is_registered_and_missing_file_names_make_install(tmp_path):
    assert MODELS["facemesh"] is FACEMESH and FACEMESH.member.endswith("face_landmark.tflite")
    with pytest.raises(FileNotFoundError, match="make install"):
        FaceMesh(tmp_path / "nope.tflite")


def test_crop_transform_maps_crop_points_back_into_the_image(astronaut):
    """Without the model: mesh_crop's transform sends a crop pixel to the image pixel it shows."""
    img = astronaut.copy()
    img[120:123, 220:223] = [255, 0, 255]          # a marker on the face
    for angle in (0.0, 25.0):
        rimg, (marker, *lm) = rotate(img, np.vstack([[221.5, 121.5], LANDMARKS]), angle)
        crop, t = mesh_crop(rimg, BOX, np.asarray(lm, np.float32))
        assert crop.shape == (192, 192, 3)
        # the crop's brightest magenta pixel, mapped back, lies on the marker
        score = crop[..., 0].astype(int) + crop[..., 2] - 2 * crop[..., 1].astype(int)
        v, u = np.unravel_index(np.argmax(score), score.shape)
        back = t.to_image(np.array([[u + 0.5, v + 0.5, 2.0]]))[0]
        assert np.hypot(*(back[:2] - marker)) < 2.0
        assert back[2] == pytest.approx(2.0 * t.scale) and t.scale == pytest.approx(94.0 * 1.5 / 192, rel=1e-2)
    # the eyes come out level in the upright crop of the rotated image
    _, lm = rotate(img, LANDMARKS, 25.0)
    crop, t = mesh_crop(rimg, BOX, lm.astype(np.float32))
    inv = np.linalg.inv(np.vstack([t.matrix, [0, 0, 1]]))[:2]
    eyes = lm[:2] @ inv[:, :2].T + inv[:, 2]
    assert abs(eyes[0, 1] - eyes[1, 1]) < 0.5


def test_as_rgb_takes_grayscale_and_refuses_floats():
    assert as_rgb(np.zeros((48, 48), np.uint8)).shape == (48, 48, 3)
    assert as_rgb(np.zeros((48, 48, 1), np.uint8)).shape == (48, 48, 3)
    with pytest.raises(ValueError, match="uint8"):
        as_rgb(np.zeros((48, 48, 3), np.float32))


def test_edges_index_the_mesh():
    assert len(mesh_edges.TESSELATION) == 2556 and MESH_POINTS == 468
    for edges in (mesh_edges.TESSELATION, mesh_edges.CONTOURS, mesh_edges.LIPS, mesh_edges.FACE_OVAL):
        assert all(0 <= a < MESH_POINTS and 0 <= b < MESH_POINTS and a != b for a, b in edges)
    assert set(mesh_edges.LEFT_EYE) <= set(mesh_edges.CONTOURS) and set(mesh_edges.CONTOURS) <= set(
        mesh_edges.TESSELATION) | set(mesh_edges.CONTOURS)


@needs_model
def test_mesh_model_file_is_the_checked_one():
    assert sha256(default_model_path()) == FACEMESH.sha256


@needs_model
@pytest.mark.parametrize("angle", [0.0, 30.0])
def test_mesh_finds_the_face_and_maps_points_into_the_image(astronaut, mesh, angle):
    img, lm = rotate(astronaut, LANDMARKS, angle)
    box = np.r_[lm.min(0) - 25, lm.max(0) + 30].astype(np.float32)  # a box around the rotated landmarks
    (pts,) = mesh.on_image(img, box[None], lm[None].astype(np.float32))
    assert pts is not None and pts.shape == (MESH_POINTS, 3) and pts.dtype == np.float32
    # the mesh's nose tip and outer eye corners agree with the detector's points
    assert np.hypot(*(pts[NOSE_TIP, :2] - lm[2])) < 10
    assert np.hypot(*(pts[EYE_LEFT, :2] - lm[0])) < 12 and np.hypot(*(pts[EYE_RIGHT, :2] - lm[1])) < 12
    # the face's own axis (eyes -> chin) turns with the image
    eyes = (pts[EYE_LEFT, :2] + pts[EYE_RIGHT, :2]) / 2
    down = pts[CHIN, :2] - eyes
    tilt = math.degrees(math.atan2(-down[0], down[1]))
    assert abs(tilt - (-angle)) < 8
    assert pts[NOSE_TIP, 2] < pts[CHIN, 2]   # the nose tip is nearer the camera


@needs_model
def test_mesh_on_crops_of_any_size_and_no_face(astronaut, mesh):
    crop, _ = mesh_crop(astronaut, BOX, LANDMARKS)
    gray = cv2.cvtColor(cv2.resize(crop, (96, 96), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    wide = cv2.copyMakeBorder(crop, 0, 0, 40, 40, cv2.BORDER_CONSTANT, value=0)   # 272 x 192, not square
    blank = np.full((120, 120, 3), 90, np.uint8)
    big, small, padded, none = mesh([crop, gray, wide, blank])
    assert none is None
    assert small is not None and np.abs(small[:, :2] * 2 - big[:, :2]).mean() < 4      # 96 px = half the scale
    assert padded is not None and np.abs(padded[:, :2] - (big[:, :2] + [40, 0])).mean() < 3
    pts, presence = mesh.run([crop, blank])
    assert presence[0] > 0.9 > 0.1 > presence[1]


# -- the option in predict and live ------------------------------------------------------------
class _FaceRunner:
    """A face model stand-in: the same logits for every crop."""

    label_names, modalities = ["a", "b", "c"], ["face"]
    preprocessing = {"face": {"image_size": 32}}

    def run(self, inputs, present=None, lengths=None):
        return np.tile(np.array([0.0, 1.0, 0.0], np.float32), (len(inputs["face"]), 1)), {}


class _FaceClassifier:
    label_names, modalities, preprocessing = ["a", "b", "c"], ["face"], {"face": {"image_size": 32}}

    def classify_faces(self, crops):
        return np.tile([0.2, 0.5, 0.3], (len(crops), 1))


@needs_model
def test_predict_option_gives_each_face_its_mesh(astronaut, tmp_path):
    from emomm.inference.predictor import Predictor
    from emomm.utils.runtime import to_plain
    from tests.conftest import make_cfg

    cfg = make_cfg("predict", tmp_path, ["ckpt_path=x.ckpt", "inputs=[a.jpg]", "predictor.mesh=true"])
    opts = {k: v for k, v in to_plain(cfg.predictor).items() if k != "detector"}
    faces = Predictor(_FaceRunner(), detector="blazeface", **opts).predict_image(astronaut).to_dict()["faces"]
    assert len(faces) == 1
    pts = np.asarray(faces[0]["mesh"])
    assert pts.shape == (MESH_POINTS, 3)
    assert np.hypot(*(pts[NOSE_TIP, :2] - np.asarray(faces[0]["landmarks"][2]))) < 10
    # off by default: no mesh, no mesh model needed
    assert Predictor(_FaceRunner(), detector="blazeface").predict_image(astronaut).faces[0].mesh is None
    # a ready-made face crop used whole (detector=none): the mesh of the image itself
    crop, _ = mesh_crop(astronaut, BOX, LANDMARKS)
    whole = Predictor(_FaceRunner(), detector="none", mesh=True).predict_image(crop).faces[0]
    assert np.asarray(whole.mesh).shape == (MESH_POINTS, 3)


@needs_model
def test_live_draw_mesh_option_meshes_and_draws_every_tracked_face(tmp_path):
    from emomm.live.overlay import draw
    from emomm.live.stream import LivePipeline
    from emomm.utils.runtime import to_plain
    from tests.conftest import make_cfg
    from tests.test_live import BoxDetector, moving_face_frames

    cfg = make_cfg("live", tmp_path, ["ckpt_path=x.ckpt", "pipeline.draw_mesh=true", "pipeline.detect_every=3"])
    pipe = LivePipeline(_FaceClassifier(), BoxDetector(), **to_plain(cfg.pipeline))
    assert isinstance(pipe.mesh, FaceMesh) and pipe.draw_mesh
    frames = moving_face_frames(6)
    noses = []
    for i, frame in enumerate(frames):
        res = pipe.process(frame, i / 12)
        (face,) = res.faces
        pts = np.asarray(face["mesh"])
        assert pts.shape == (MESH_POINTS, 3) and "mesh" in res.timings_ms
        noses.append(pts[NOSE_TIP, 0])
        x1, y1, x2, y2 = face["box"]
        assert x1 < pts[NOSE_TIP, 0] < x2 and y1 < pts[NOSE_TIP, 1] < y2
    # the head slides 4 px a frame; so does the mesh, between detections too
    assert 3 < np.polyfit(np.arange(6), noses, 1)[0] < 5
    plain = draw(frames[-1], res.faces, pipe.labels, 10.0)
    drawn = draw(frames[-1], res.faces, pipe.labels, 10.0, mesh=True)
    changed = np.argwhere((plain != drawn).any(-1))
    assert len(changed) > 300 and (changed[:, 1] > pts[:, 0].min() - 3).all()
    # the option is off by default: no mesh key, no mesh model
    off = LivePipeline(_FaceClassifier(), BoxDetector())
    assert off.mesh is None and "mesh" not in off.process(frames[0], 0.0).faces[0]


@needs_model
def test_zoom_out_gives_a_tight_gray_crop_the_geometry_the_mesh_expects(astronaut, mesh):
    from emomm.faces import crop_face
    from emomm.faces.mesh import zoom_out

    tight = cv2.cvtColor(crop_face(astronaut, BOX, 48, 0.0), cv2.COLOR_RGB2GRAY)   # a FER2013-like face
    zoomed = zoom_out(tight)
    assert zoomed.shape == (72, 72) and (zoomed[:12] == 0).all()
    (pts,) = mesh([zoomed])
    assert pts is not None
    nose = pts[NOSE_TIP, :2] - 12                      # back into the 48 px crop
    want = (LANDMARKS[2] - BOX[:2]) * 48 / (BOX[2] - BOX[0])
    assert np.hypot(*(nose - want)) < 4


@needs_model
def test_serve_option_puts_each_image_face_mesh_in_the_answer(astronaut, tmp_path):
    from emomm.inference.predictor import Predictor
    from emomm.serve.engine import ServeEngine
    from emomm.utils.runtime import to_plain
    from tests.conftest import make_cfg

    cfg = make_cfg("serve", tmp_path, ["predictor.mesh=true"])
    opts = {k: v for k, v in to_plain(cfg.predictor).items() if k != "detector"}
    face = ServeEngine(Predictor(_FaceRunner(), detector="blazeface", **opts)).image(astronaut)["faces"][0]
    pts = np.asarray(face["mesh"])
    assert pts.shape == (MESH_POINTS, 2)   # x, y for drawing, in the image's pixels
    x1, y1, x2, y2 = face["box"]
    assert (pts[:, 0] > x1 - 40).mean() > 0.95 and (pts[:, 1] < y2 + 40).mean() > 0.95
    plain = ServeEngine(Predictor(_FaceRunner(), detector="blazeface")).image(astronaut)["faces"][0]
    assert "mesh" not in plain   # off by default
