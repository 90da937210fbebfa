"""Issue 42: detection at any frame size. On a composed multi-face frame (benchmarks.footage, the
astronaut photograph: no dataset needed) the default detector finds every face above its size
floor; BlazeFace's full-range model finds a face in a wide shot that short-range misses; a
detector that finds nothing says so; live falls back; detector options reach the detector from
predict, serve, live and the Predictor."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from benchmarks.footage import builtin_sources, compose_frame, make_scene, match_boxes
from emomm.faces import FaceDetector, Faces, MTCNNDetector, build_detector
from emomm.faces.blazeface import BlazeFaceDetector, default_model_path, ssd_anchors
from emomm.faces.detectors import detector_from_config
from emomm.inference import Predictor
from emomm.live.stream import LivePipeline
from tests.conftest import make_cfg

HAVE_FULL = default_model_path("full").is_file() and default_model_path("short").is_file()
needs_blazeface = pytest.mark.skipif(not HAVE_FULL, reason="BlazeFace models absent: run `make models`")


def found_sizes(frame, boxes, detector) -> list[float]:
    gt = np.stack([b.xyxy for b in boxes])
    return sorted(boxes[g].size for g, _ in match_boxes(gt, detector.detect(frame)[0].boxes))


def test_default_mtcnn_finds_every_face_above_its_floor_in_a_composed_frame():
    """1920x1080, eight faces of 40-300 px: the default finds all of them, boxed at IoU >= 0.5;
    the old default (1/5 of the shorter side: 216 px, 158 on the pyramid) missed the small ones."""
    scene = make_scene("still", 1920, 1080, builtin_sources(4), seed=1, n=8, min_px=40, max_px=300)
    frame, boxes = compose_frame(scene)
    assert len(boxes) == 8 and all(b.visible == 1.0 for b in boxes)
    det = MTCNNDetector()
    assert det.min_face(1080, 1920) < 40
    assert found_sizes(frame, boxes, det) == sorted(b.size for b in boxes)
    old = found_sizes(frame, boxes, MTCNNDetector(min_face_frac=0.2, min_face_px=None))
    assert len(old) <= 6 and min(old) > 60


def test_mtcnn_floor_is_the_larger_of_pixels_and_fraction():
    det = MTCNNDetector(min_face_frac=0.05, min_face_px=30)
    assert det.min_face(480, 640) == pytest.approx(28.2, abs=0.1)     # 30 px, snapped to the pyramid
    assert det.min_face(2160, 3840) == pytest.approx(79.1, abs=0.1)   # 5% of 2160 = 108 px, snapped
    assert MTCNNDetector(min_face_frac=0.0, min_face_px=None).min_face(1080, 1920) == 20.0


@needs_blazeface
def test_blazeface_full_range_finds_the_wide_shot_face_short_range_misses():
    assert ssd_anchors(192, ((4, 1),)).shape == (2304, 2)
    scene = make_scene("still", 1920, 1080, builtin_sources(1), n=1, min_px=180, max_px=180)
    frame, boxes = compose_frame(scene)
    short, full, auto = (BlazeFaceDetector(range=r) for r in ("short", "full", "auto"))
    assert len(short.detect(frame)[0]) == 0
    assert found_sizes(frame, boxes, full) == found_sizes(frame, boxes, auto) == [boxes[0].size]
    assert auto.settings()["range"] == "auto" and set(auto.settings()["model_sha256"]) == {"short", "full"}
    with pytest.raises(ValueError, match="range='far'"):
        BlazeFaceDetector(range="far")


class Blind(FaceDetector):
    kind = "blind"

    def _detect(self, frames, source, frame_indices):
        return [Faces.empty() for _ in frames]


class Fixed(FaceDetector):
    kind = "fixed"

    def _detect(self, frames, source, frame_indices):
        return [Faces(np.array([[10, 10, 60, 60]], np.float32), np.ones(1, np.float32)) for _ in frames]


def test_no_face_over_a_run_of_frames_warns_once_with_the_fix(caplog):
    det = Blind(warn_after=5)
    blank = np.zeros((6, 48, 64, 3), np.uint8)
    with caplog.at_level(logging.WARNING, logger="emomm.faces.base"):
        det.detect(blank[:4])
        assert not caplog.records
        det.detect(blank)                        # 10 in a row: one warning, not six
    assert det.no_face_run == 10 and len(caplog.records) == 1
    assert "faces=blind found no face in 5 frames in a row (64x48)" in caplog.records[0].getMessage()
    det.detect(blank[:1], source="next.mp4")     # a new source starts a new run
    assert det.no_face_run == 1
    assert "min_face_px" in MTCNNDetector(warn_after=1).no_face_hint(1080, 1920)
    assert Blind(warn_after=0).detect(blank) and Blind(warn_after=0).warnings == []


class FlatClassifier:
    label_names, modalities = ["a", "b"], ["face"]
    preprocessing = {"face": {"image_size": 16}}

    def classify_faces(self, crops):
        return np.full((len(crops), 2), 0.5, np.float32)


def test_live_falls_back_to_the_second_detector_with_one_line(capsys):
    pipe = LivePipeline(FlatClassifier(), Blind(), detect_every=1, fallback=Fixed(), fallback_after=3)
    frame = np.zeros((120, 160, 3), np.uint8)
    results = [pipe.process(frame, i / 10) for i in range(5)]
    assert [len(r.faces) for r in results] == [0, 0, 1, 1, 1]
    assert pipe.detector.kind == "fixed" and pipe.switched_at == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "faces=blind found no face in 3 detections" in err[0] and "faces=fixed" in err[0]


class Runner:
    label_names, modalities = ["a", "b"], ["face"]
    preprocessing = {"face": {"image_size": 16}}


def test_predictor_takes_detector_options_and_instances():
    p = Predictor(Runner(), detector="mtcnn", mtcnn={"min_face_px": 20, "min_face_frac": None})
    assert p.detector.min_face_px == 20 and p.detector.min_face_frac == MTCNNDetector().min_face_frac
    mine = Fixed()
    assert Predictor(Runner(), detector=mine).detector is mine
    assert detector_from_config("haar", {"haar": {"min_neighbors": 3}}).min_neighbors == 3
    if HAVE_FULL:
        assert Predictor(Runner(), detector="blazeface", blazeface={"range": "full"}).detector.range == "full"


class Stop(Exception):
    pass


def test_predict_and_serve_configs_pass_detector_options(tmp_path, monkeypatch):
    from emomm.inference import predictor as predictor_module
    from emomm.predict import predict
    from emomm.serve.__main__ import build

    ckpt = tmp_path / "m.ckpt"
    ckpt.write_bytes(b"")
    seen = []

    def capture(cls, path, **options):
        seen.append(options)
        raise Stop

    monkeypatch.setattr(predictor_module.Predictor, "from_checkpoint", classmethod(capture))
    cfg = make_cfg("predict", tmp_path, [f"ckpt_path={ckpt}", "inputs=[x.jpg]", "predictor.mtcnn.min_face_px=20",
                                         "predictor.blazeface.range=full"])
    with pytest.raises(Stop):
        predict(cfg)
    cfg = make_cfg("serve", tmp_path, [f"ckpt_path={ckpt}", "predictor.detector=mtcnn",
                                       "predictor.mtcnn.min_face_frac=0.01"])
    with pytest.raises(Stop):
        build(cfg)
    (p, s) = seen
    assert p["mtcnn"]["min_face_px"] == 20 and p["blazeface"]["range"] == "full"
    assert s["detector"] == "mtcnn" and s["mtcnn"]["min_face_frac"] == 0.01
    # what the Predictor builds from them (None: the detector's default)
    assert Predictor(Runner(), **{k: v for k, v in p.items() if k in ("detector", "mtcnn")}).detector.min_face_px == 20


def test_live_config_passes_detector_options_and_the_fallback(tmp_path, monkeypatch):
    from emomm.live import __main__ as live_main
    from emomm.live import model_loader

    monkeypatch.setattr(model_loader, "load_classifier", lambda *a, **k: FlatClassifier())
    over = ["ckpt_path=x.ckpt", "audio=none", "faces=mtcnn", "faces.mtcnn.min_face_px=20", "pipeline.fallback=haar",
            "faces.haar.min_neighbors=3"]
    cfg = make_cfg("live", tmp_path, over)
    pipe, audio = live_main.build(cfg)
    assert audio is None and pipe.detector.kind == "mtcnn" and pipe.detector.min_face_px == 20
    # inference settings, not the training data's 1/5 of the frame
    assert pipe.detector.min_face_frac == MTCNNDetector().min_face_frac
    assert pipe.fallback.kind == "haar" and pipe.fallback.min_neighbors == 3
    if HAVE_FULL:
        cfg = make_cfg("live", tmp_path, ["ckpt_path=x.ckpt", "audio=none", "faces.blazeface.range=full"])
        pipe, _ = live_main.build(cfg)
        assert pipe.detector.range == "full" and pipe.fallback.kind == "mtcnn"
    assert isinstance(build_detector("mtcnn", warn_after=3), MTCNNDetector)
    assert Path(default_model_path("full")).name == "face_detection_full_range_sparse.tflite"
