"""benchmarks/footage.py: composed footage is deterministic and its ground truth is where the faces are."""
from __future__ import annotations

import numpy as np

from benchmarks.footage import (SCENES, builtin_sources, compose_clip, compose_frame, load_gt, make_scene,
                                match_boxes, write_clip)


def test_footage_is_deterministic_and_boxes_lie_on_the_pasted_faces():
    src = builtin_sources(4)
    a, boxes = compose_frame(make_scene("still", 640, 480, src, seed=3))
    b, again = compose_frame(make_scene("still", 640, 480, src, seed=3))
    assert np.array_equal(a, b) and boxes == again
    assert len(boxes) >= 5 and all(b.visible == 1.0 for b in boxes)
    sizes = sorted(b.size for b in boxes)
    assert 19 <= sizes[0] <= 22 and sizes[-1] > 150
    bg = make_scene("still", 640, 480, src, seed=3).background
    for box in boxes:  # the face changed the background inside its box, not far outside it
        x0, y0, x1, y1 = (int(round(v)) for v in (box.x0, box.y0, box.x1, box.y1))
        assert np.abs(a[y0:y1, x0:x1].astype(int) - bg[y0:y1, x0:x1]).mean() > 10


def test_footage_occlusion_and_frame_edge_lower_visibility():
    src = builtin_sources(2)
    scene = make_scene("occlusion", 640, 480, src, seconds=2.0)
    _, gt = compose_clip(scene, fps=10)
    behind = [next(b for b in f if b.id == 0).visible for f in gt]
    assert max(behind) == 1.0 and min(behind) < 0.2   # fully covered while the other passes
    crossing = make_scene("crossing", 640, 480, src, seconds=2.0)
    _, first = compose_frame(crossing, 0.0)
    assert all(b.visible < 1.0 for b in first)        # both start half outside the frame
    for kind in SCENES:
        _, boxes = compose_frame(make_scene(kind, 320, 240, src, seconds=1.0), 0.5)
        assert boxes and all(0 <= b.visible <= 1 for b in boxes)


def test_footage_clip_file_round_trip(tmp_path):
    from emomm.media.video import probe, read_frames

    scene = make_scene("linear", 320, 240, builtin_sources(2), seconds=1.0, n=2)
    t = np.arange(16000) / 16000
    video, side = write_clip(tmp_path / "c.mp4", scene, fps=5, audio=0.3 * np.sin(2 * np.pi * 220 * t))
    header, gt = load_gt(video)
    assert header["fps"] == 5 and header["scene"]["kind"] == "linear" and len(gt) == 5
    assert probe(video).audio_codec is not None
    frames = read_frames(video).frames
    assert len(frames) == 5
    _, expect = compose_frame(scene, 2 / 5)
    assert gt[2] == expect


def test_match_boxes_is_one_to_one_at_iou_half():
    gt = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], float)
    pred = np.array([[1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]], float)
    assert sorted(match_boxes(gt, pred)) == [(0, 1)]
    assert match_boxes(gt, np.zeros((0, 4))) == []
