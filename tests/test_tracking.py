"""Face tracking (issue 42): one id per person through fast motion at 5 frames/s, crossing
paths and short misses; per-person results in the Predictor, predict's JSONL / CSV and the
web API. Synthetic boxes and a small encoded video of coloured "faces" with a stand-in
detector and network: no real data, no training, a few seconds."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from emomm.faces.base import Faces
from emomm.inference.predictor import Predictor
from emomm.inference.results import PersonResult
from emomm.inference.tracking import IoUTracker, KalmanTracker, id_errors, make_tracker
from emomm.media.video import write_video


# -- a composed moving scene: ground-truth boxes and ids ----------------------------------------
#: Per person: face size (px), first centre, velocity (px per frame at 5 frames/s) and the
#: frames it is not detected in. Every face moves 1.5-2.3 times its own size per frame (so
#: consecutive boxes never overlap); A and B cross paths; C is missed for two frames.
PEOPLE = {
    0: (40, (100, 300), (90, 0), ()),                # A, left to right
    1: (50, (1000, 330), (-90, -2), ()),             # B, right to left: crosses A at frame 5
    2: (30, (200, 800), (60, -20), (8, 9)),          # C, missed twice
    3: (60, (1500, 100), (-80, 90), ()),             # D, diagonal
}


def crossing_scene(frames: int = 20, jitter: float = 0.05, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per frame: boxes ``[N, 4]`` of a 1920x1080 scene at 5 frames/s (detector jitter of
    ``jitter`` face sizes; boxes in a shuffled order) and their true person ids ``[N]``."""
    rng = np.random.default_rng(seed)
    out = []
    for f in range(frames):
        boxes, ids = [], []
        for pid, (size, start, vel, missed) in PEOPLE.items():
            if f in missed:
                continue
            c = np.add(start, np.multiply(vel, f)) + rng.normal(0, jitter * size, 2)
            s = size * (1 + rng.normal(0, jitter))
            boxes.append([c[0] - s / 2, c[1] - s / 2, c[0] + s / 2, c[1] + s / 2])
            ids.append(pid)
        order = rng.permutation(len(boxes))
        out.append((np.asarray(boxes, np.float32)[order], np.asarray(ids)[order]))
    return out


def run_tracker(tracker, scene) -> dict[int, dict[str, int]]:
    return id_errors([list(zip(ids, tracker.update(boxes))) for boxes, ids in scene])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kalman_keeps_one_id_per_person_at_5fps(seed):
    scene = crossing_scene(seed=seed)
    errors = run_tracker(KalmanTracker(max_age=5), scene)
    assert errors == {p: {"frames": 20 - len(PEOPLE[p][3]), "switches": 0, "fragments": 1} for p in PEOPLE}
    # the overlap-only tracker breaks every person into pieces on the same scene
    old = run_tracker(IoUTracker(max_age=5), scene)
    assert all(e["fragments"] >= 10 for e in old.values())


def test_a_track_survives_short_misses_only():
    tr = make_tracker("kalman", max_age=2)
    box = lambda x: [x, 100, x + 40, 140]  # noqa: E731
    assert tr.update([box(0)]) == [0] and tr.update([box(70)]) == [0]
    tr.update([]), tr.update([])                          # two misses: coasts on
    assert tr.update([box(280)]) == [0]                   # where its velocity put it
    tr.update([]), tr.update([]), tr.update([])           # three misses: gone
    assert tr.update([box(490)]) == [1]


def test_a_face_that_turns_back_keeps_its_id():
    """Its velocity predicts it 1.5 sizes further on; the second pass finds it where it was."""
    tr = make_tracker("kalman")
    for x in (0, 60, 120, 180):
        assert tr.update([[x, 0, x + 40, 40], [x, 300, x + 40, 340]]) == [0, 1]
    assert tr.update([[120, 0, 160, 40], [240, 300, 280, 340]]) == [0, 1]   # one turned back


def test_size_normalised_gate():
    """The same motion in face sizes matches at any scale; a jump of many sizes does not,
    nor does a face twice as large or small."""
    for scale in (0.5, 1.0, 8.0):
        tr = KalmanTracker()
        b = lambda x, s=40: [scale * x, 0, scale * (x + s), scale * s]  # noqa: E731
        assert tr.update([b(0)]) == [0] and tr.update([b(60)]) == [0] and tr.update([b(120)]) == [0]
        assert tr.update([b(400)]) == [1]                 # 7 sizes off the predicted 180
        assert tr.update([b(480, s=100)]) == [2]          # the right place for 1, 2.5x the size
    with pytest.raises(ValueError, match="tracker='sort': use one of"):
        make_tracker("sort")


def test_id_errors_counts_switches_and_fragments():
    frames = [[(7, 0), (8, 1)], [(7, 0), (8, 2)], [(7, 1), (8, 2)], [(7, 0)]]
    assert id_errors(frames) == {7: {"frames": 4, "switches": 2, "fragments": 2},
                                 8: {"frames": 3, "switches": 1, "fragments": 2}}


# -- per-person results: a video of two coloured "faces" -----------------------------------------
RED, BLUE = (230, 20, 20), (20, 20, 230)


class ColourDetector:
    """Finds the red and the blue square of a frame (one box per colour found), with a
    12 px margin, which may reach out of the frame as a real detector's boxes do."""

    def detect(self, frames):
        out = []
        for rgb in np.asarray(frames).astype(int):
            boxes = []
            for r, b in ((1, 0), (0, 1)):
                mask = (rgb[..., 0] > 150) == bool(r)
                mask &= (rgb[..., 2] > 150) == bool(b)
                mask &= rgb[..., 1] < 100
                ys, xs = np.nonzero(mask)
                if len(xs) > 20:
                    boxes.append([xs.min() - 12, ys.min() - 12, xs.max() + 13, ys.max() + 13])
            out.append(Faces(np.asarray(boxes, np.float32).reshape(-1, 4), np.ones(len(boxes), np.float32)))
        return out


class ColourNet:
    """A face network stand-in: a red face is happy, a blue one sad."""
    label_names, modalities = ["happy", "sad"], ["face"]
    preprocessing = {"face": {"image_size": 16, "in_chans": 3, "mean": [0.5] * 3, "std": [0.5] * 3}}

    def run(self, inputs, present=None, lengths=None):
        x = inputs["face"].numpy()
        d = 6 * (x[:, 0].mean(axis=(1, 2)) - x[:, 2].mean(axis=(1, 2)))
        logits = np.stack([d, -d], axis=1)
        return logits, {"face": logits}


def two_people_clip(path, frames: int = 16):
    """640x240 at 5 frames/s: a red face left to right and a blue one right to left, each
    moving 1.7 times its size per frame, crossing in the middle (the red one drawn over the
    blue); the blue one is hidden on frames 10 and 11. Returns the path."""
    video = np.full((frames, 240, 640, 3), 128, np.uint8)
    for f in range(frames):
        xr, xb = 10 + 40 * f, 606 - 40 * f
        if f not in (10, 11):
            video[f, 112:136, xb:xb + 24] = BLUE
        video[f, 100:124, xr:xr + 24] = RED
    return write_video(path, video, fps=5.0)


def colour_predictor(tracker: str = "kalman", **options) -> Predictor:
    p = Predictor(ColourNet(), fps=5.0, batch_size=64, tracker=tracker, **options)
    p._detector = ColourDetector()
    return p


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return two_people_clip(tmp_path_factory.mktemp("clip") / "two.mp4")


def test_predict_video_summarises_each_person(clip):
    res = colour_predictor().predict_video(clip)
    assert res.error is None and sorted(res.tracks) == [0, 1]       # two people, two ids
    by_label = {p.label: p for p in res.people}
    assert set(by_label) == {"happy", "sad"}
    red, blue = by_label["happy"], by_label["sad"]
    assert (red.frames, blue.frames) == (16, 14)                     # blue hidden twice
    assert red.start == blue.start == 0.0 and red.end == blue.end == pytest.approx(3.0)
    assert red.n_windows == len(res.tracks[red.id]) and all(w.track_id == red.id for w in res.tracks[red.id])
    assert red.probs == pytest.approx(np.mean([w.probs for w in res.tracks[red.id]], axis=0))
    # every sighting: one box per sampled frame the face was detected in, at its time
    assert [b[0] for b in red.boxes] == pytest.approx([f / 5.0 for f in range(16)])
    assert [b[0] for b in blue.boxes] == pytest.approx([f / 5.0 for f in range(16) if f not in (10, 11)])
    for f, (t, x1, y1, x2, y2) in enumerate(red.boxes):   # the detector's box (12 px margin)
        expected = [max(40 * f - 2, 0), 88, min(40 * f + 46, 640), 136]   # clipped to the frame
        assert [x1, y1, x2, y2] == pytest.approx(expected, abs=0.05)
    assert res.brief_tracks == 0
    # the thumbnail is one of the person's sightings, at a sampled time
    assert red.thumb_box[0] < red.thumb_box[2] and 0 <= red.thumb_t <= res.duration
    assert all(0 <= v <= 640 for v in red.thumb_box + blue.thumb_box)  # inside the frame
    assert res.people == sorted(res.people, key=lambda p: -p.frames)
    # the clip: every person's windows (not the longest track's), one timeline window per time
    every = [w.probs for ws in res.tracks.values() for w in ws]
    assert res.probs == pytest.approx(np.mean(every, axis=0))
    assert len({w.start for w in res.windows}) == len(res.windows) and all(w.track_id is None for w in res.windows)
    d = json.loads(json.dumps(res.to_dict()))
    assert {p["id"] for p in d["people"]} == {0, 1} and set(d["tracks"]) == {"0", "1"}
    assert [PersonResult(**p) for p in d["people"]] == res.people      # the JSONL round trip
    assert all(v == round(v, 1) for p in d["people"] for b in p["boxes"] for v in b[1:])   # 0.1 px
    # the overlap-only tracker gives each of them a new id on (almost) every frame; as one-frame
    # fragments those are not people (brief tracks) unless every track is kept
    assert len(colour_predictor("iou", min_person_frames=1).predict_video(clip).people) > 8
    iou = colour_predictor("iou").predict_video(clip)
    assert len(iou.people) < 8 and iou.brief_tracks > 0
    with pytest.raises(ValueError, match="tracker='nope'"):
        Predictor(ColourNet(), tracker="nope")


def test_predict_writes_people_to_jsonl_and_csv(clip, tmp_path, monkeypatch):
    from omegaconf import OmegaConf
    import emomm.predict as cli
    monkeypatch.setattr(cli, "resolve_ckpts", lambda *a, **k: "stub.ckpt")
    monkeypatch.setattr(cli, "load_predictor", lambda *a, **k: colour_predictor())
    cfg = OmegaConf.create({"paths": {"output_dir": str(tmp_path), "log_dir": str(tmp_path)}, "ckpt_path": "x",
                            "backend": "torch", "device": "cpu", "predictor": {}, "inputs": [str(clip)],
                            "out": None, "timeline_png": False})
    assert cli.predict(cfg) == 0
    (record,) = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert len(record["people"]) == 2 and {p["label"] for p in record["people"]} == {"happy", "sad"}
    rows = list(csv.DictReader(open(tmp_path / "people.csv")))
    assert [r["id"] for r in rows] == [str(p["id"]) for p in record["people"]]
    assert rows[0]["input"] == str(clip) and rows[0]["label"] == record["people"][0]["label"]
    assert float(rows[0]["confidence"]) == pytest.approx(record["people"][0]["confidence"], abs=1e-4)
    assert len(rows[0]["thumb_box"].split()) == 4
    assert record["brief_tracks"] == 0 and all(len(p["boxes"]) == p["frames"] for p in record["people"])
    assert {r["frames"] for r in rows} == {str(p["frames"]) for p in record["people"]}
    (summary,) = csv.DictReader(open(tmp_path / "summary.csv"))
    assert summary["faces"] == "2" and summary["label"] == record["label"]


def test_web_api_answers_per_person(clip):
    from fastapi.testclient import TestClient
    from emomm.serve.app import ServeSettings, create_app
    from emomm.serve.engine import ServeEngine
    client = TestClient(create_app(ServeEngine(colour_predictor()), ServeSettings()))
    r = client.post("/api/predict/video", files={"file": ("two.mp4", clip.read_bytes())})
    assert r.status_code == 200, r.text
    d = r.json()
    assert {p["label"] for p in d["people"]} == {"happy", "sad"}
    for p in d["people"]:
        assert {"id", "start", "end", "frames", "n_windows", "label", "confidence", "probs", "thumb_t",
                "thumb_box", "views", "timeline"} <= set(p)
        assert len(p["timeline"]) == p["n_windows"] and all(len(w["box"]) == 4 for w in p["timeline"])
        assert len(p["boxes"]) == p["frames"] and all(len(b) == 5 for b in p["boxes"])
        assert p["boxes"][0][0] == p["start"] and p["boxes"][-1][0] == p["end"]
        assert p["confidence"] == pytest.approx(max(p["probs"]))
    assert len(d["timeline"]) == len({w["t"] for w in d["timeline"]})   # one clip curve over everyone
    assert d["brief_tracks"] == 0


def test_live_picks_its_tracker_by_name():
    from emomm.live.stream import LivePipeline
    assert isinstance(LivePipeline(ColourNet(), ColourDetector()).tracker, KalmanTracker)   # the default
    assert isinstance(LivePipeline(ColourNet(), ColourDetector(), tracker="iou").tracker, IoUTracker)
    with pytest.raises(ValueError, match="tracker='sort'"):
        LivePipeline(ColourNet(), ColourDetector(), tracker="sort")


def red_with_a_flash(path, frames: int = 16, flash=(5,)):
    """640x240 at 5 frames/s: the red face walking left to right all along, and a blue
    "face" (a false detection) on the frames ``flash`` only. Returns the path."""
    video = np.full((frames, 240, 640, 3), 128, np.uint8)
    for f in range(frames):
        video[f, 100:124, 10 + 40 * f:34 + 40 * f] = RED
        if f in flash:
            video[f, 30:54, 500:524] = BLUE
    return write_video(path, video, fps=5.0)


def test_a_one_frame_track_is_not_a_person(tmp_path):
    clip = red_with_a_flash(tmp_path / "flash.mp4")
    res = colour_predictor().predict_video(clip)
    assert [p.label for p in res.people] == ["happy"] and res.brief_tracks == 1
    assert list(res.tracks) == [res.people[0].id]
    assert res.label == "happy" and res.probs == pytest.approx(res.people[0].probs)   # the clip: red alone
    kept = colour_predictor(min_person_frames=1).predict_video(clip)                  # every track kept
    assert sorted(p.label for p in kept.people) == ["happy", "sad"] and kept.brief_tracks == 0
    # a track of two frames is a person at the default (2), not at 3
    two = red_with_a_flash(tmp_path / "two.mp4", flash=(5, 6))
    assert len(colour_predictor().predict_video(two).people) == 2
    assert colour_predictor(min_person_frames=3).predict_video(two).brief_tracks == 1


def test_only_brief_tracks_say_so_and_a_short_clip_keeps_its_faces(tmp_path):
    video = np.full((16, 240, 640, 3), 128, np.uint8)
    video[5, 30:54, 500:524] = BLUE
    res = colour_predictor().predict_video(write_video(tmp_path / "one.mp4", video, fps=5.0))
    assert res.people == [] and res.label is None and res.brief_tracks == 1
    assert "only brief face tracks (1" in res.error and "min_person_frames=1" in res.error
    # a clip of one sampled frame: its face is a person (nothing longer could be)
    res = colour_predictor().predict_video(write_video(tmp_path / "short.mp4", video[5:6], fps=5.0))
    assert [p.label for p in res.people] == ["sad"] and res.brief_tracks == 0
