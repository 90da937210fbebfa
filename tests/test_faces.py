"""emomm.faces: MTCNN on a real photograph, crops, missing-face policies, the crop cache and
`python -m emomm.prepare` (cache hits, interrupted runs, clips without a face)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from emomm.media.video import write_video
from emomm.faces import (FaceCropper, FaceCropStore, FaceDetector, GivenBoxDetector, HaarDetector,
                         MTCNNDetector, crop_face)
from emomm.faces.crop import eye_angle
from emomm.faces.mtcnn_nets import detect_faces, load_nets, snapped_min_face

# The astronaut photograph (Eileen Collins, NASA, public domain) ships with scikit-image.
# Reference box measured with facenet-pytorch 2.5.3's own `MTCNN().detect(img)` (default
# settings): x1, y1, x2, y2 = 181.05, 62.16, 267.75, 172.05 (score 0.999998). It matches the
# face an observer outlines (hairline to chin, ear to ear), and OpenCV's Haar cascade - an
# unrelated detector - boxes the same face at (177, 67, 270, 160), IoU 0.86 with it.
ASTRONAUT_BOX = np.array([181.05, 62.16, 267.75, 172.05])


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_importing_faces_loads_no_torch():
    """Haar, BlazeFace and cached crops need no torch: MTCNN's networks (emomm.faces.mtcnn_nets)
    load on first use, and the detector factory imports every detector module."""
    code = ("import sys\nimport emomm.faces, emomm.faces.crop_store, emomm.faces.detectors\n"
            "assert emomm.faces.build_detector('haar').kind == 'haar'\n"
            "print(sorted(m for m in ('torch', 'torchvision', 'facenet_pytorch') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def mtcnn():
    return MTCNNDetector(min_face_frac=0.0, min_face_px=None)


class CountingDetector(FaceDetector):
    """Wraps a detector, counts calls and frames, optionally fails on call number N (1-based)."""

    def __init__(self, inner: FaceDetector, fail_on_call: int | None = None, exc=KeyboardInterrupt):
        super().__init__()
        self.inner, self.kind, self.fail_on_call, self.exc = inner, inner.kind, fail_on_call, exc

    def _detect(self, frames, source, frame_indices):
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise self.exc()
        return self.inner.detect(frames, source, frame_indices)

    def settings(self):
        return self.inner.settings()


# -- detection ------------------------------------------------------------------------------
def test_faces_mtcnn_weights_ship_with_the_package():
    import facenet_pytorch

    data = Path(facenet_pytorch.__file__).parent / "data"
    for name in ("pnet.pt", "rnet.pt", "onet.pt"):
        assert (data / name).stat().st_size > 10_000, name
    load_nets()  # the autouse network guard of conftest fails any download attempt


def test_faces_mtcnn_finds_the_astronaut(astronaut, mtcnn):
    faces = mtcnn.detect(astronaut)[0]
    assert len(faces) == 1 and faces.scores[0] > 0.99
    box = faces.boxes[0]
    assert np.abs(box - ASTRONAUT_BOX).max() < 2.0
    assert iou(box, ASTRONAUT_BOX) > 0.95
    (lex, ley), (rex, rey), (nx, ny), (mlx, mly), (mrx, mry) = faces.landmarks[0]
    assert box[0] < lex < nx < rex < box[2] and max(ley, rey) < ny < min(mly, mry) < box[3]
    # The default pipeline setting (smallest face 1/5 of the image) finds the same face.
    fast = MTCNNDetector().detect(astronaut)[0]
    assert len(fast) == 1 and iou(fast.boxes[0], ASTRONAUT_BOX) > 0.9


def test_faces_haar_finds_the_astronaut(astronaut):
    faces = HaarDetector().detect(astronaut)[0]
    assert len(faces) >= 1
    best = faces.boxes[np.argmax((faces.boxes[:, 2] - faces.boxes[:, 0]))]
    assert iou(best, ASTRONAUT_BOX) > 0.75


def test_faces_batched_mtcnn_gives_facenet_boxes_frame_by_frame(astronaut):
    """One batched call == facenet-pytorch's MTCNN on each frame alone (same boxes)."""
    from facenet_pytorch import MTCNN

    frames = [cv2.resize(astronaut, (256, 256)), cv2.resize(astronaut[40:440, 60:460], (256, 256)),
              np.ascontiguousarray(cv2.resize(astronaut, (256, 256))[:, ::-1])]
    ours = detect_faces(np.stack(frames), load_nets())
    ref = MTCNN()
    for frame, (boxes, scores, points) in zip(frames, ours):
        rb, rs, rp = ref.detect(frame, landmarks=True)
        assert len(boxes) == len(rb) >= 1
        order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        np.testing.assert_allclose(boxes[order], np.asarray(rb, np.float32), atol=0.01)
        np.testing.assert_allclose(points[order], np.asarray(rp, np.float32), atol=0.01)
    assert snapped_min_face(60) == pytest.approx(20 / 0.709 ** 3)


def test_faces_eye_line_alignment(astronaut, mtcnn):
    h, w = astronaut.shape[:2]
    tilted = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((224, 117), 20, 1.0), (w, h))
    faces = mtcnn.detect(tilted)[0]
    angle = eye_angle(faces.landmarks[0])
    assert -20 < angle < -10  # 2.7 degrees upright, minus the 20 degree turn
    cropper = FaceCropper(mtcnn, size=128, margin=0.3, align=True)
    aligned = cropper.crop_frames(tilted).crops[0]
    plain = FaceCropper(mtcnn, size=128, margin=0.3).crop_frames(tilted).crops[0]
    assert abs(eye_angle(mtcnn.detect(aligned)[0].landmarks[0])) < 4
    assert abs(eye_angle(mtcnn.detect(plain)[0].landmarks[0])) > 10


def test_faces_crop_geometry():
    frame = (np.arange(100 * 120 * 3) % 251).astype(np.uint8).reshape(100, 120, 3)
    np.testing.assert_array_equal(crop_face(frame, [10, 20, 40, 50], 30), frame[20:50, 10:40])
    out = crop_face(frame, [-10, -10, 20, 20], 30)            # half outside: black padding
    assert out[:10, :10].max() == 0
    np.testing.assert_array_equal(out[10:, 10:], frame[:20, :20])
    wide = crop_face(frame, [10, 20, 70, 50], 32, margin=0.5)  # square, 60 * 1.5 = 90 px side
    assert wide.shape == (32, 32, 3)


# -- missing faces ---------------------------------------------------------------------------
def _boxes_fn(missing):
    def fn(source, idx):
        return [None if i in missing else [10 + i, 10, 50 + i, 50] for i in idx]
    return fn


@pytest.mark.parametrize("policy", ["reuse", "drop", "mark"])
def test_faces_missing_face_policies(policy):
    frames = np.full((6, 64, 64, 3), 128, np.uint8)
    cropper = FaceCropper(GivenBoxDetector(_boxes_fn({0, 3, 4})), size=16, missing=policy)
    out = cropper.crop_frames(frames)
    assert out.stats["frames_missing"] == 3 and out.stats["faces_found"] == 3
    if policy == "reuse":
        assert len(out) == 6 and out.stats["frames_reused"] == 3
        np.testing.assert_array_equal(out.boxes[0], out.boxes[1])  # leading frame: next box
        np.testing.assert_array_equal(out.boxes[3], out.boxes[2])  # later frames: previous box
        np.testing.assert_array_equal(out.boxes[4], out.boxes[2])
        assert out.found.tolist() == [False, True, True, False, False, True]
    elif policy == "drop":
        assert out.frame_index.tolist() == [1, 2, 5] and out.stats["frames_dropped"] == 3
    else:
        assert len(out) == 6 and out.crops[[0, 3, 4]].max() == 0 and out.crops[1].min() == 128
        assert np.isnan(out.boxes[0]).all()


def test_faces_clip_without_any_face_is_flagged():
    out = FaceCropper(GivenBoxDetector(_boxes_fn(set(range(4)))), size=16).crop_frames(
        np.zeros((4, 32, 32, 3), np.uint8))
    assert out.stats["no_face"] and out.stats["faces_found"] == 0 and len(out) == 4


# -- cache and prepare -----------------------------------------------------------------------
def face_clip(path: Path, n: int = 6, face: bool = True, size=(120, 160), audio: np.ndarray | None = None) -> Path:
    """A small clip of the astronaut's face drifting across a grey frame (or no face), with
    ``audio`` (float mono at 16 kHz) as its sound track when given."""
    h, w = size
    src = cv2.resize(skimage.data.astronaut()[30:210, 150:300], (75, 90))
    frames = np.full((n, h, w, 3), 110, np.uint8)
    rng = np.random.default_rng(0)
    for t in range(n):
        if face:
            x, y = 20 + 6 * t, 15
            frames[t, y: y + 90, x: x + 75] = src
        else:
            frames[t] = rng.integers(90, 130, (h, w, 3), dtype=np.uint8)
    return write_video(path, frames, fps=10, audio=audio)


@pytest.fixture(scope="module")
def cremad_clips(tmp_path_factory):
    """Three CREMA-D named clips with a face, one without (real FLV files)."""
    root = tmp_path_factory.mktemp("cremad")
    for i, emo in enumerate(["ANG", "HAP", "SAD"]):
        face_clip(root / f"10{i + 1:02d}_DFA_{emo}_XX.flv")
    face_clip(root / "1004_DFA_NEU_XX.flv", face=False)
    return root


_RUNS = iter(range(1000))


def _prepare_cfg(cfg_factory, root, cache, extra=()):
    return cfg_factory([f"data.root={root}", f"faces.cache_dir={cache}", "faces.workers=0",
                        "video.sampling.num_frames=4", "faces.progress=false", *extra],
                       config_name="prepare", subdir=f"prep-{next(_RUNS)}")


def test_faces_prepare_reports_and_second_run_hits_the_cache(cfg_factory, cremad_clips, tmp_path, monkeypatch):
    import emomm.faces.crop_store as pipeline
    from emomm.prepare import prepare

    made = []
    real_build = pipeline.build_detector

    def counting_build(name, **opts):
        made.append(CountingDetector(real_build(name, **opts)))
        return made[-1]

    monkeypatch.setattr(pipeline, "build_detector", counting_build)
    cache = tmp_path / "cache"
    report = prepare(_prepare_cfg(cfg_factory, cremad_clips, cache))
    assert report["clips"] == 4 and report["built"] == 4 and report["failed"] == 0
    assert report["frames"] == 16 and report["faces_found"] == 12
    assert report["clips_no_face"] == 1 and report["no_face_files"][0].endswith("1004_DFA_NEU_XX.flv")
    assert sum(d.calls for d in made) == 4              # one detector call per clip (batched)
    assert len(list(cache.glob("*/*.npz"))) == 4
    made.clear()
    again = prepare(_prepare_cfg(cfg_factory, cremad_clips, cache))
    assert again["cached"] == 4 and again["built"] == 0 and again["clips_no_face"] == 1
    assert sum(d.calls for d in made) == 0              # no detector was even built
    # A modified file gets a new entry, the others are still cached.
    os.utime(cremad_clips / "1001_DFA_ANG_XX.flv", ns=(1, 1))
    touched = prepare(_prepare_cfg(cfg_factory, cremad_clips, cache))
    assert touched["built"] == 1 and touched["cached"] == 3


def test_faces_interrupted_prepare_resumes(cremad_clips, tmp_path):
    sources = sorted(cremad_clips.glob("*.flv"))
    faces = {"detector": "haar", "cache_dir": str(tmp_path / "cache"), "progress": False}
    det = CountingDetector(HaarDetector(), fail_on_call=3)    # Ctrl-C during the third clip
    store = FaceCropStore(faces, {"num_frames": 4}, detector=det)
    with pytest.raises(KeyboardInterrupt):
        store.prepare(sources)
    done = sorted(tmp_path.glob("cache/*/*.npz"))
    assert len(done) == 2 and not list(tmp_path.glob("cache/*/.*.tmp"))
    assert all(store.cache.load(s) is not None for s in sources[:2])
    # A run killed mid-write leaves a temporary file, never a half entry...
    stale = done[0].parent / f".{done[0].stem}x.deadbeef.999999.npz.tmp"
    stale.write_bytes(b"PK\x03\x04 half an npz")
    # ...and an entry damaged afterwards (a disk error) is detected and rebuilt.
    victim = store.cache.path(sources[1])
    victim.write_bytes(victim.read_bytes()[:100])
    det2 = CountingDetector(HaarDetector())
    store2 = FaceCropStore(faces, {"num_frames": 4}, detector=det2)
    report = store2.prepare(sources)
    assert not stale.exists()
    assert det2.calls == 3 and report["built"] == 3 and report["cached"] == 1  # 2 missing + 1 damaged
    assert store2.get(sources[1]).crops.shape == (4, 112, 112, 3) and det2.calls == 3
    # A damaged entry found while training is rebuilt on use.
    victim.write_bytes(victim.read_bytes()[:-50])
    assert store2.get(sources[1]).crops.shape == (4, 112, 112, 3) and det2.calls == 4


def test_faces_unreadable_file_is_reported_not_fatal(tmp_path):
    good = face_clip(tmp_path / "a.mp4")
    bad = tmp_path / "b.mp4"
    bad.write_bytes(b"\x00" * 500)
    store = FaceCropStore({"detector": "none", "cache_dir": str(tmp_path / "c"), "progress": False}, {})
    report = store.prepare([good, bad], workers=0)
    assert report["built"] == 1 and report["failed"] == 1 and "b.mp4" in next(iter(report["failed_files"]))


def test_faces_parallel_prepare_uses_worker_processes(tmp_path):
    clips = [face_clip(tmp_path / f"c{i}.mp4", n=4) for i in range(3)]
    store = FaceCropStore({"detector": "haar", "cache_dir": str(tmp_path / "c"), "progress": True}, {})
    report = store.prepare(clips, workers=2)
    assert report["workers"] == 2 and report["built"] == 3 and report["faces_found"] == 12
    metas = [store.cache.load(c).meta for c in clips]
    assert all(m["settings"]["detector"] == "haar" and m["kind"] == "video" for m in metas)


def test_faces_cache_key_follows_file_and_settings(tmp_path):
    clip = face_clip(tmp_path / "a.mp4", n=2)
    base = {"detector": "none", "cache_dir": str(tmp_path / "c")}
    key = FaceCropStore(base, {"num_frames": 2}).cache.key(clip)
    assert FaceCropStore(base, {"num_frames": 2}).cache.key(clip) == key
    assert FaceCropStore({**base, "size": 64}, {"num_frames": 2}).cache.key(clip) != key
    assert FaceCropStore(base, {"num_frames": 3}).cache.key(clip) != key
    assert FaceCropStore({**base, "detector": "mtcnn"}, {"num_frames": 2}).cache.key(clip) != key
    mt = {**base, "detector": "mtcnn"}
    assert FaceCropStore({**mt, "mtcnn": {"min_face_frac": 0.1}}, {}).cache.key(clip) != \
        FaceCropStore(mt, {}).cache.key(clip)
    assert FaceCropStore({**base, "workers": 7, "progress": False}, {"num_frames": 2}).cache.key(clip) == key
    os.utime(clip, ns=(1, 1))
    assert FaceCropStore(base, {"num_frames": 2}).cache.key(clip) != key


def test_faces_cache_entry_contents(tmp_path, astronaut):
    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    store = FaceCropStore({"cache_dir": str(tmp_path / "c"), "size": 64, "mtcnn": {"min_face_frac": 0.0}})
    entry = store.get(photo)
    assert entry.crops.shape == (1, 64, 64, 3) and entry.found.all()
    assert iou(entry.boxes[0], ASTRONAUT_BOX) > 0.95 and np.isfinite(entry.landmarks).all()
    assert entry.meta["kind"] == "image" and entry.meta["settings"]["size"] == 64
    key_before = store.cache.key(photo)
    assert FaceCropStore({"cache_dir": str(tmp_path / "c"), "size": 64, "cache_key": "content"}).cache.key(photo) \
        != key_before
    json.dumps(entry.meta)  # plain JSON
