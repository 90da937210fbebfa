"""Annotated videos (predict's ``annotate=true`` and live's ``output=``): H.264 with the source's
audio muxed in, an overlay scaled to the frame whose label blocks stay inside it and never
overlap; and the people of a video result (boxes at any time, thumbnails' source, curves)."""
from __future__ import annotations

import itertools

import av
import cv2
import numpy as np
import pytest
import skimage.data

from emomm.faces import FaceDetector, Faces
from emomm.inference.people import busiest_time, face_at, faces_at, people_of, visible
from emomm.inference.results import PersonResult, TimelineResult, WindowResult
from emomm.live.overlay import layout, place, style_for
from emomm.live.stream import LivePipeline
from emomm.media.video import VideoWriter, write_video
from emomm.runs.annotated_video import write_annotated_video

LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
FPS, N, SR = 10.0, 20, 16000
W, H = 640, 360


def head(size: int) -> np.ndarray:
    return cv2.resize(skimage.data.astronaut()[20:260, 110:350], (size, size), interpolation=cv2.INTER_AREA)


def boxes_at(i: int) -> list[list[float]]:
    """The two faces of frame ``i``: one walking right, one walking left towards it."""
    return [[40.0 + 8 * i, 120.0, 40.0 + 8 * i + 120, 240.0], [480.0 - 8 * i, 100.0, 480.0 - 8 * i + 120, 220.0]]


@pytest.fixture(scope="module")
def two_faces(tmp_path_factory):
    """A 2 s 640x360 clip at 10 frames/s of two moving faces, with a tone as its audio track."""
    frames = np.full((N, H, W, 3), 70, np.uint8)
    face = head(120)
    for i in range(N):
        for x1, y1, _, _ in boxes_at(i):
            frames[i, int(y1):int(y1) + 120, int(x1):int(x1) + 120] = face
    audio = (0.2 * np.sin(2 * np.pi * 220 * np.arange(int(N / FPS * SR)) / SR)).astype(np.float32)
    return write_video(tmp_path_factory.mktemp("clip") / "two.mp4", frames, fps=FPS, audio=audio, audio_rate=SR)


def record_of(boxes_fn=boxes_at, sampled=range(N), fps: float = FPS) -> dict:
    """The two-face clip's predict record, in the Predictor's own result schema (1 s windows,
    0.5 s hop, each window's mean box; a sighting of each face on the frames ``sampled`` of a
    ``fps`` video)."""
    tracks = {}
    for tid in (0, 1):
        ws = []
        for s in (0.0, 0.5, 1.0):
            frames = range(int(s * fps), int((s + 1) * fps))
            box = np.mean([boxes_fn(i)[tid] for i in frames], axis=0).tolist()
            probs = np.full(7, 0.05)
            probs[3 if tid == 0 else 4] = 0.7
            ws.append(WindowResult(s, s + 1.0, probs.tolist(), LABELS[int(np.argmax(probs))], {}, tid, box))
        tracks[tid] = ws
    people = [PersonResult(tid, 0.0, (N - 1) / FPS, N, len(ws), ws[0].probs, ws[0].label, 0.7, 0.5, ws[0].box,
                           boxes=[[i / fps, *boxes_fn(i)[tid]] for i in sampled])
              for tid, ws in tracks.items()]
    res = TimelineResult("video", LABELS, N / FPS, tracks[0][0].probs, "happy", tracks[0], {}, tracks,
                         people=people)
    return {"input": "two.mp4", "kind": "video", **res.to_dict()}


def streams(path) -> dict[str, tuple[str, float]]:
    """What ffprobe would say: ``{type: (codec, seconds)}`` of each stream."""
    with av.open(str(path)) as c:
        return {s.type: (s.codec_context.name, float(s.duration * s.time_base)) for s in c.streams}


def assert_inside_and_apart(rects, width, height):
    for r in rects:
        assert 0 <= r[0] < r[2] <= width and 0 <= r[1] < r[3] <= height, (r, width, height)
    for a, b in itertools.combinations(rects, 2):
        assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


def test_predict_annotated_video_is_h264_with_the_source_audio(two_faces, tmp_path):
    out = tmp_path / "two_annotated.mp4"
    info = write_annotated_video(record_of(), two_faces, out)
    assert info == {"path": str(out), "codec": "libx264", "audio": True, "note": None}
    s = streams(out)
    assert s["video"][0] == "h264" and s["audio"][0] == "aac", s
    assert s["audio"][1] == pytest.approx(N / FPS, abs=0.1) and s["video"][1] == pytest.approx(N / FPS, abs=0.15)
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file left behind"
    # every frame, with each person's box drawn where the person is
    cap = cv2.VideoCapture(str(out))
    src = cv2.VideoCapture(str(two_faces))
    people = people_of(record_of())
    for i in range(N):
        ok, a = cap.read()
        ok2, b = src.read()
        assert ok and ok2 and a.shape == (H, W, 3)
        faces = faces_at(people, i / FPS)
        assert [f["id"] for f in faces] == [0, 1]
        _, _, rects = layout(faces, LABELS, W, H)
        assert_inside_and_apart(rects, W, H)
        for r in rects:  # the label blocks are painted (dark panel) over the source
            x1, y1, x2, y2 = r
            assert a[y1:y2, x1:x2].mean() < b[y1:y2, x1:x2].mean() - 10, (i, r)
    assert not cap.read()[0]


def test_a_video_without_sound_is_annotated_without_it(tmp_path):
    silent = write_video(tmp_path / "silent.mp4", np.full((6, 120, 160, 3), 90, np.uint8), fps=6.0)
    info = write_annotated_video({"label_names": LABELS, "tracks": {}}, silent, tmp_path / "a.mp4")
    assert info["audio"] is False and "no audio track" in info["note"]
    assert set(streams(tmp_path / "a.mp4")) == {"video"}


def test_writer_refuses_other_containers_and_leaves_nothing_on_error(tmp_path):
    with pytest.raises(ValueError, match=r"\.mp4"):
        VideoWriter(tmp_path / "x.avi", 10)
    with pytest.raises(ValueError, match="is 8x8, the video is 16x16"):
        with VideoWriter(tmp_path / "y.mp4", 10) as w:
            w.write(np.zeros((16, 16, 3), np.uint8))
            w.write(np.zeros((8, 8, 3), np.uint8))
    assert not list(tmp_path.iterdir())


class Stub:
    """A face classifier that needs no checkpoint: person 0 happy, person 1 sad."""
    label_names, modalities, preprocessing = LABELS, ["face"], {"face": {"image_size": 32}}

    def classify_faces(self, crops):
        p = np.full((len(crops), 7), 0.05)
        p[:, 3] = 0.7
        return p


class Known(FaceDetector):
    kind = "known"

    def __init__(self):
        super().__init__()
        self.i = 0

    def _detect(self, frames, source, frame_indices):
        out = []
        for _ in frames:
            out.append(Faces(np.array(boxes_at(self.i), np.float32), np.ones(2, np.float32)))
            self.i += 1
        return out


def test_live_output_is_h264_with_the_source_audio_and_labels_apart(two_faces, tmp_path):
    out, jsonl = tmp_path / "live.mp4", tmp_path / "live.jsonl"
    pipe = LivePipeline(Stub(), Known(), detect_every=1)
    summary = pipe.run(two_faces, output=str(out), jsonl=str(jsonl), display=False)
    assert summary["frames"] == N
    s = streams(out)
    assert s["video"][0] == "h264" and s["audio"][0] == "aac", s
    import json
    for line in jsonl.read_text().splitlines():
        faces = json.loads(line)["faces"]
        assert len(faces) == 2
        _, status, rects = layout(faces, LABELS, W, H, status="10.0 fps")
        assert_inside_and_apart(rects + [status], W, H)


def test_overlay_scales_with_the_frame():
    small, hd = style_for(480), style_for(1080)
    assert hd.font_scale == pytest.approx(2.25 * small.font_scale)
    assert hd.line_h >= 2 * small.line_h and hd.line >= 2 * small.line
    face = [{"id": 0, "box": [800, 400, 1000, 650], "label": "happy", "probs": [0.1] * 6 + [0.4]}]
    (r,) = layout(face, LABELS, 1920, 1080)[2]
    assert r[3] - r[1] > 100, "four readable text lines at 1080p"


@pytest.mark.parametrize("seed", range(5))
def test_label_blocks_never_overlap_and_stay_in_the_frame(seed):
    """Crowds of faces, some at the edges and on top of each other."""
    rng = np.random.default_rng(seed)
    w, h = [(1920, 1080), (640, 480), (320, 240), (1280, 720), (480, 640)][seed]
    boxes = []
    for _ in range(7):
        s = rng.uniform(0.04, 0.3) * h
        x, y = rng.uniform(-0.1 * s, w - 0.9 * s), rng.uniform(-0.1 * s, h - 0.9 * s)
        boxes.append([x, y, x + s, y + s])
    boxes.append(list(boxes[0]))   # two faces at the same place
    faces = [{"id": i, "box": b, "label": "sad", "probs": rng.dirichlet(np.ones(7)).tolist()}
             for i, b in enumerate(boxes)]
    _, status, rects = layout(faces, LABELS, w, h, status="12.5 fps  voice: silent")
    assert_inside_and_apart(rects + [status], w, h)


def test_place_is_greedy_above_then_below():
    # room above: above; at the top edge: below; the second block of a face at the same place
    # goes elsewhere; a block that would hide another face goes below its own
    r = place([[100, 100, 200, 200], [400, 5, 500, 105], [400, 5, 500, 105], [100, 215, 200, 315]],
              [(80, 30)] * 4, 640, 480)
    assert r[0] == (100, 68, 180, 98) and r[1] == (400, 107, 480, 137)
    assert r[2] not in r[:2] and r[3] == (100, 317, 180, 347)


def fast_boxes(i: int) -> list[list[float]]:
    """Frame ``i`` at 25 frames/s of a 60 px face zigzagging fast (300 px/s, turning every
    0.4 s) and a still one."""
    t = i / 25.0
    phase = (t % 0.8) / 0.4
    x = 40 + 120 * (phase if phase <= 1 else 2 - phase)
    return [[x, 100.0, x + 60, 160.0], [400.0, 100.0, 460.0, 160.0]]


def test_a_fast_face_box_stays_on_the_face_at_every_frame():
    """Sightings at 5 frames/s (every 5th frame of 25), drawn at 25 frames/s: the box is within
    2 px of the face on every frame; the windows' mean boxes (the earlier drawing) were off by
    up to a face width."""
    record = record_of(fast_boxes, sampled=range(0, 50, 5), fps=25.0)
    people = people_of(record)
    assert list(people) == [0, 1] and people[0]["step"] == pytest.approx(0.2)
    worst = 0.0
    for i in range(0, 46):            # every frame up to the last sighting (t = 1.8 s)
        f = face_at(0, people[0], i / 25.0)
        worst = max(worst, float(np.max(np.abs(np.subtract(f["box"], fast_boxes(i)[0])))))
    assert worst <= 2.0, worst
    # the earlier drawing, between the windows' mean boxes, sits far off the face
    ws = people[0]["windows"]
    centres = [(w["start"] + w["end"]) / 2 for w in ws]
    lag = max(abs(np.interp(i / 25.0, centres, [w["box"][0] for w in ws]) - fast_boxes(i)[0][0]) for i in range(46))
    assert lag > 30, lag


def test_a_person_is_drawn_only_near_their_sightings():
    # sighted every 0.2 s from 0.4 to 1.8 s, with one miss at 1.0 (bridged) and two at 1.4, 1.6 (not)
    record = record_of(sampled=[2, 4, 6, 8, 12, 18])   # frames at 10 frames/s -> t 0.2 .. 1.8
    person = people_of(record)[0]
    assert person["step"] == pytest.approx(0.2)
    assert face_at(0, person, 0.05) is None and face_at(0, person, 0.1) is not None   # half a step early
    assert face_at(0, person, 1.9) is not None and face_at(0, person, 1.95) is None   # half a step late
    assert face_at(0, person, 1.0) is not None           # one missed sighting: interpolated across
    f = face_at(0, person, 1.5)
    assert f is None                                     # 0.6 s without a sighting: not drawn
    assert visible(np.array([0.2, 0.4]), 0.3, 0.2) and not visible(np.array([]), 0.3, 0.2)
    assert busiest_time(people_of(record)) == pytest.approx(0.2)


def test_a_record_without_sightings_is_drawn_from_its_windows():
    """A JSONL line written before sightings were kept still draws (window centres, mean boxes)."""
    record = record_of()
    for p in record["people"]:
        del p["boxes"]
    people = people_of(record)
    f = face_at(0, people[0], 0.75)    # halfway between the window centres 0.5 and 1.0
    a, b = people[0]["windows"][0]["box"], people[0]["windows"][1]["box"]
    assert f["box"] == pytest.approx([(u + v) / 2 for u, v in zip(a, b)])
    assert f["label"] == "happy" and face_at(0, people[0], 2.5) is None


class StubPredictor:
    """The Predictor as the web app sees it, answering the two-face clip's result."""
    label_names, modalities, preprocessing, max_pixels = LABELS, ["face"], {}, None

    def predict_video(self, path):
        d = record_of()
        ws = {int(k): [WindowResult(**w) for w in v] for k, v in d["tracks"].items()}
        return TimelineResult("video", LABELS, d["duration"], d["probs"], d["label"], ws[0], {}, ws,
                              people=[PersonResult(**p) for p in d["people"]])


def test_web_video_result_has_each_person_boxed_with_a_thumbnail_and_a_curve(two_faces):
    import base64
    import io

    from PIL import Image

    from emomm.media.sniff import sniff
    from emomm.serve.engine import ServeEngine

    data = two_faces.read_bytes()
    res = ServeEngine(StubPredictor()).video(data, sniff(data), "two.mp4")
    people = res["people"]
    assert [p["name"] for p in people] == ["person 1", "person 2"] and [p["id"] for p in people] == [0, 1]
    assert [p["clip"]["label"] for p in people] == ["happy", "sad"]
    for p in people:
        assert [pt["t"] for pt in p["timeline"]] == [0.5, 1.0, 1.5] and len(p["timeline"][0]["probs"]) == 7
        thumb = Image.open(io.BytesIO(base64.b64decode(p["thumbnail"].split(",", 1)[1])))
        assert thumb.format == "JPEG" and thumb.size == (96, 96)
    # the still: the moment both are visible, both boxed where they are then
    fr = res["frame"]
    assert fr["t"] == 0.0 and (fr["width"], fr["height"]) == (W, H)   # the first sampled frame, all there
    still = np.asarray(Image.open(io.BytesIO(base64.b64decode(fr["image"].split(",", 1)[1]))))
    assert still.shape == (H, W, 3)
    assert [f["id"] for f in fr["faces"]] == [0, 1]
    for f in fr["faces"]:
        x1, y1, x2, y2 = (int(v) for v in f["box"])
        # the face is there: the astronaut's head, not the grey (70) background
        assert abs(still[y1 + 10:y2 - 10, x1 + 10:x2 - 10].mean() - 70) > 15
        assert f["box"] == pytest.approx(boxes_at(0)[f["id"]])    # the sighting itself
        assert f["label"] in LABELS and 0 < f["confidence"] <= 1
    assert [len(p["boxes"]) for p in people] == [N, N] and people[0]["boxes"][0] == [0.0, *boxes_at(0)[0]]
    assert res["brief_tracks"] == 0
