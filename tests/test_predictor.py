"""The inference engine: Predictor on each modality from generated files, preprocessing
parity with the datasets, tracking, and the predict CLI with a bad file among good ones."""
import json
import subprocess
import sys

import numpy as np
import pytest
import skimage
import soundfile as sf
import torch

from emomm import Predictor
from emomm.inference.batch import expand_inputs, media_kind
from emomm.inference.preprocess import Preprocessor
from emomm.inference.tracking import IoUTracker
from emomm.media.video import write_video
from tests.test_faces import ASTRONAUT_BOX, iou

MM = ["modality=multimodal", "modalities=[face,voice,text]", "fusion=late", "model/face_encoder=timm",
      "model.encoders.face.backbone=resnet10t", "face.image_size=32", "face.in_chans=3", "voice.duration=1.0",
      "data.n_train=28", "data.n_val=7", "data.n_test=7", "data.batch_size=7", "debug=limit",
      "trainer.max_epochs=1"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny face + voice + text checkpoint trained on the synthetic data."""
    from emomm.train import train
    from tests.conftest import make_cfg
    out = tmp_path_factory.mktemp("mm")
    return train(make_cfg("train", out, MM + ["test=false"]))["best_ckpt"]


@pytest.fixture(scope="module")
def predictor(ckpt):
    return Predictor.from_checkpoint(ckpt, batch_size=4)


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


def test_predict_image_finds_the_face_with_landmarks(predictor, astronaut, tmp_path):
    from PIL import Image
    path = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut).save(path)
    res = predictor.predict_image(path)
    assert res.error is None and len(res.faces) == 1 and (res.width, res.height) == (512, 512)
    face = res.faces[0]
    assert iou(face.box, ASTRONAUT_BOX) > 0.8
    assert np.asarray(face.landmarks).shape == (5, 2)
    assert sum(face.probs) == pytest.approx(1.0, abs=1e-5) and face.label in res.label_names
    json.dumps(res.to_dict())
    blank = predictor.predict_image(np.full((120, 160, 3), 127, np.uint8))
    assert res.note is None and blank.faces == [] and blank.error == "no face found"


def test_a_crop_of_the_training_size_is_not_detected_again(predictor, ckpt, astronaut):
    """The checkpoint was trained on ready-made 32 px crops (synthetic faces, like FER2013's
    48 px): an image of about that size is used whole, with a note, not re-detected."""
    import cv2
    assert predictor.crop_size == 32
    whole = Predictor.from_checkpoint(ckpt, detector="none")   # the documented whole-image path
    for side in (32, 44):   # a flat crop MTCNN finds no face in, and a crop of the astronaut's face
        crop = np.full((side, side, 3), 127, np.uint8) if side == 32 else \
            cv2.resize(astronaut[20:220, 130:330], (side, side))
        res = predictor.predict_image(crop)
        assert res.error is None and len(res.faces) == 1 and res.faces[0].box == [0.0, 0.0, side, side], res
        assert f"the {side}x{side} image is a face crop" in res.note and "predictor.detector=mtcnn" in res.note
        assert np.allclose(res.faces[0].probs, whole.predict_image(crop).faces[0].probs, atol=1e-6)
    detect = Predictor.from_checkpoint(ckpt, detector="mtcnn")   # asked for: detection as before
    res = detect.predict_image(np.full((32, 32, 3), 127, np.uint8))
    assert detect.crop_size == 0 and res.note is None and res.error == "no face found"


def test_predict_text_single_list_and_empty(predictor):
    one = predictor.predict_text("What a lovely surprise!")
    many = predictor.predict_text(["What a lovely surprise!", "leave me alone"])
    assert one.probs == pytest.approx(many[0].probs, abs=1e-6) and len(many) == 2
    with pytest.raises(ValueError, match="empty text"):
        predictor.predict_text("   ")


def test_predict_audio_windows_cover_the_recording(predictor, tmp_path):
    sr = 44100
    t = np.arange(int(3.3 * sr)) / sr
    wav = tmp_path / "speech.wav"
    sf.write(wav, (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(3 * t))).astype(np.float32), sr)
    res = predictor.predict_audio(wav)
    starts = [w.start for w in res.windows]
    assert res.kind == "audio" and res.duration == pytest.approx(3.3, abs=0.01)
    assert starts == sorted(starts) and starts[0] == 0.0 and res.windows[-1].end == pytest.approx(3.3, abs=0.01)
    assert len(res.windows) == 6  # 1 s windows, 0.5 s hop, plus the tail
    assert res.probs == pytest.approx(np.mean([w.probs for w in res.windows], axis=0), abs=1e-6)
    with pytest.raises(ValueError, match="sample rate"):
        predictor.predict_audio(np.zeros(100))


def test_predict_video_tracks_the_face_and_reads_the_audio(predictor, astronaut, tmp_path):
    frames = [np.roll(astronaut, 3 * i, axis=1) for i in range(20)]   # the face drifts right
    sr = 16000
    audio = (0.2 * np.sin(2 * np.pi * 180 * np.arange(2 * sr) / sr)).astype(np.float32)
    path = tmp_path / "clip.mp4"
    write_video(path, np.stack(frames), fps=10.0, audio=audio, audio_rate=sr)
    res = predictor.predict_video(path)
    assert res.kind == "video" and res.error is None
    assert list(res.tracks) == [0]                           # one face, one stable id
    assert len(res.tracks[0]) >= 2 and all(w.track_id == 0 for w in res.tracks[0])
    # the clip timeline: one window per time, over the people in it (here one)
    assert [w.probs for w in res.windows] == [w.probs for w in res.tracks[0]]
    assert all(w.track_id is None for w in res.windows)
    # face windows fused with the window's audio track; the text head has nothing to say
    assert res.audio and set(res.modality_probs) == {"face", "voice"}
    boxes = [w.box[0] for w in res.tracks[0]]
    assert boxes == sorted(boxes)                            # the box follows the drift
    (person,) = res.people                                   # the per-person summary
    assert person.id == 0 and person.n_windows == len(res.tracks[0]) and person.frames == 10   # 2 s at fps=5
    assert person.start == 0.0 and person.end == pytest.approx(1.8)
    assert person.probs == pytest.approx(res.probs, abs=1e-6) and person.label == res.label
    json.dumps(res.to_dict())


def test_predict_sample_masks_what_is_missing(predictor, astronaut):
    crop = astronaut[62:172, 181:268]
    text_only = predictor.predict_sample(text="so happy")
    both = predictor.predict_sample(text="so happy", face=crop)
    assert text_only.present == ["text"] and both.present == ["face", "text"]
    # late fusion of the text alone = the text head's own prediction
    assert text_only.probs == pytest.approx(text_only.modality_probs["text"], abs=1e-5)
    assert both.probs != pytest.approx(text_only.probs, abs=1e-6)
    with pytest.raises(ValueError, match="takes"):
        predictor.predict_sample(video=np.zeros((2, 8, 8, 3), np.uint8))


def test_preprocessing_is_the_datasets_own(tmp_path):
    """The predictor's voice input for a file equals the voice dataset's eval sample."""
    from emomm.data.pipelines.waveforms import AudioDataset, ClipOptions
    from emomm.data.pipelines.transforms import FaceTransform
    from emomm.media.audio import load_audio
    opts = ClipOptions(sample_rate=16000, duration=1.5, pad=True, trim_db=30)
    sr = 22050
    wave = np.concatenate([np.zeros(sr // 2), 0.5 * np.sin(np.arange(2 * sr) / 7.0), np.zeros(sr // 3)])
    path = tmp_path / "a.wav"
    sf.write(path, wave.astype(np.float32), sr)
    want = AudioDataset([path], [0], opts)[0]["inputs"]["voice"]
    prep = Preprocessor({"voice": opts.describe(), "face": FaceTransform(32, 1).describe()})
    w, rate = load_audio(path, 16000)
    assert torch.equal(prep.voice(w, rate), want)
    img = np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    assert torch.equal(prep.face(img), FaceTransform(32, 1)(img))


def test_wrong_modality_is_a_clear_error():
    class VoiceOnly:
        label_names, modalities = ["a", "b"], ["voice"]
        preprocessing = {"voice": {"sample_rate": 16000, "duration": 1.0}}

    p = Predictor(VoiceOnly())
    with pytest.raises(ValueError, match=r"takes \['voice'\]; it cannot predict from images"):
        p.predict_image(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="cannot predict from text"):
        p.predict_text("hi")


def test_tracker_keeps_ids_and_drops_stale_tracks():
    tr = IoUTracker(iou=0.3, max_age=1)
    assert tr.update([[0, 0, 10, 10], [50, 50, 60, 60]]) == [0, 1]
    assert tr.update([[52, 51, 62, 61], [1, 0, 11, 10]]) == [1, 0]   # order of boxes does not matter
    assert tr.update([]) == []
    assert tr.update([[0, 0, 10, 10]]) == [0]                           # one miss: still alive
    tr.update([]), tr.update([])
    assert tr.update([[0, 0, 10, 10]]) == [2]                           # gone after max_age: new id


def test_media_kind_reads_bytes_not_names(tmp_path):
    fake = tmp_path / "photo.wav"
    from PIL import Image
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(fake, format="PNG")
    assert media_kind(fake) == "image"
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.txt").write_text("hello")
    (tmp_path / "d" / "ignore.bin").write_bytes(b"\0")
    assert [p.name for p in expand_inputs([str(tmp_path / "d")])] == ["x.txt"]
    assert [p.name for p in expand_inputs([str(tmp_path / "*.wav")])] == ["photo.wav"]


def test_predict_cli_bad_file_among_good_ones(ckpt, astronaut, tmp_path):
    from PIL import Image
    good = tmp_path / "in"
    good.mkdir()
    Image.fromarray(astronaut).save(good / "face.png")
    (good / "note.txt").write_text("I am thrilled")
    sf.write(good / "voice.wav", (0.1 * np.sin(np.arange(20000) / 5.0)).astype(np.float32), 16000)
    (good / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(good / "noface.png")
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "emomm.predict", f"ckpt_path={ckpt}", f"inputs=[{good}]",
                           f"hydra.run.dir={out}", "timeline_png=true"], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    by = {p["input"].split("/")[-1]: p for p in lines}
    assert set(by) == {"face.png", "note.txt", "voice.wav", "broken.jpg", "noface.png"}
    assert "broken.jpg" in by["broken.jpg"]["error"] and by["noface.png"]["error"] == "no face found"
    assert len(by["face.png"]["faces"]) == 1 and by["note.txt"]["label"] in by["note.txt"]["label_names"]
    assert by["voice.wav"]["windows"] and (out / "voice_timeline.png").is_file()
    assert len((out / "summary.csv").read_text().splitlines()) == 6


def test_web_live_frame_shows_simple_and_hybrid_views(predictor, astronaut):
    """The web app's live frame for a face + voice model: face alone, voice alone, fused."""
    from emomm.serve.engine import ServeEngine
    engine = ServeEngine(predictor, None, None)
    wave = (0.3 * np.sin(np.arange(16000) / 3.0)).astype(np.float32)
    voice = engine.live_audio(wave, 16000)
    out = engine.live_frame(astronaut, voice, (wave, 16000))
    assert len(out["faces"]) == 1
    views = out["faces"][0]["views"]
    assert set(views) == {"fused", "face", "voice"} and views["voice"] == voice["probs"]
    assert views["fused"] == pytest.approx(out["faces"][0]["probs"]) and views["fused"] != pytest.approx(views["face"])
    # no audio yet: the fused head (voice masked) beside the face's own head, each named as it is
    alone = engine.live_frame(astronaut)["faces"][0]
    assert set(alone["views"]) == {"fused", "face"} and alone["views"]["fused"] == alone["probs"]


class _FixedRunner:
    """A runner that returns the same logits for every sample of a batch."""

    def __init__(self, fused, heads=None, labels=("a", "b", "c"), prep=None):
        self.label_names, self.modalities = list(labels), ["text"]
        self.preprocessing = prep or {"text": {}}
        self.fused, self.heads = np.array(fused, np.float32), heads or {}

    def run(self, inputs, present=None, lengths=None):
        n = len(inputs["text"])
        return np.tile(self.fused, (n, 1)), {m: np.tile(np.array(v, np.float32), (n, 1)) for m, v in self.heads.items()}


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_ensemble_runner_averages_probabilities_not_logits():
    from emomm.inference.runner import EnsembleRunner
    a = _FixedRunner([4.0, 0.0, 0.0], heads={"text": [0.0, 2.0, 0.0]})
    b = _FixedRunner([0.0, 0.0, 1.0], heads={})
    fused, heads = EnsembleRunner([a, b]).run({"text": ["x", "y"]})
    want = (_softmax(np.array([4.0, 0, 0])) + _softmax(np.array([0, 0, 1.0]))) / 2
    np.testing.assert_allclose(_softmax(fused), np.tile(want, (2, 1)), rtol=1e-5)
    # mean logits would give [1.33, 0, 0.5] -> another distribution
    assert not np.allclose(_softmax(fused[0]), _softmax(np.array([2.0, 0.0, 0.5])), atol=1e-3)
    assert heads == {}  # a head only one member has is left out


def test_ensemble_of_mismatched_checkpoints_is_refused():
    from emomm.inference.runner import EnsembleRunner
    with pytest.raises(ValueError, match="two or more"):
        EnsembleRunner([_FixedRunner([0, 0, 0])])
    with pytest.raises(ValueError, match="other label_names"):
        EnsembleRunner([_FixedRunner([0, 0, 0]), _FixedRunner([0, 0, 0], labels=("a", "c", "b"))])
    with pytest.raises(ValueError, match="other preprocessing"):
        EnsembleRunner([_FixedRunner([0, 0, 0]), _FixedRunner([0, 0, 0], prep={"text": {"max_length": 9}})],
                       names=["x.ckpt", "y.ckpt"])


def test_predict_cli_with_a_list_of_checkpoints_predicts_as_their_ensemble(ckpt, tmp_path):
    """``python -m emomm.predict ckpt_path=[a,b]``, composed and run in-process (the CLI's
    own code path, without two more interpreter starts)."""
    from emomm.predict import predict
    from tests.conftest import make_cfg
    (tmp_path / "note.txt").write_text("I am thrilled")
    single = Predictor.from_checkpoint(ckpt).predict_text("I am thrilled")
    out = tmp_path / "run"
    out.mkdir()
    cfg = make_cfg("predict", out, [f"ckpt_path=[{ckpt},{ckpt}]", f"inputs=[{tmp_path / 'note.txt'}]"])
    assert predict(cfg) == 0
    line = json.loads((out / "predictions.jsonl").read_text())
    # two copies of one model: the ensemble's probabilities are that model's
    np.testing.assert_allclose(line["probs"], single.probs, rtol=1e-4, atol=1e-6)
    cfg = make_cfg("predict", out, [f"ckpt_path=[{ckpt},{ckpt}]", "backend=onnxruntime",
                                    f"inputs=[{tmp_path / 'note.txt'}]"])
    with pytest.raises(ValueError, match="needs backend=torch"):
        predict(cfg)


def _colored_pixels(png, left: float) -> int:
    """Pixels with a clear hue (the class lines and markers) in the left ``left`` of the chart
    (the legend stays upper right)."""
    from PIL import Image
    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    part = rgb[:, : int(rgb.shape[1] * left)]
    return int(((part.max(axis=2) - part.min(axis=2)) > 60).sum())


def test_timeline_png_shows_one_window_and_one_panel_per_face(tmp_path):
    from emomm.inference.batch import plot_timeline, summary_row
    names = ["angry", "happy", "sad"]
    win = {"start": 0.0, "end": 1.0, "probs": [0.2, 0.7, 0.1], "label": "happy", "confidence": 0.7}
    one = {"input": "clip.wav", "kind": "audio", "label_names": names, "label": "happy", "duration": 4.0,
           "windows": [win], "probs": win["probs"]}
    plot_timeline(one, tmp_path / "one.png")
    assert _colored_pixels(tmp_path / "one.png", 0.3) > 20     # the window's markers (was an empty chart)
    video = {**one, "input": "street.mp4", "kind": "video", "tracks": {"1": [win], "2": [win, {**win, "start": 2.0,
                                                                                                 "end": 3.0}]}}
    plot_timeline(video, tmp_path / "video.png")
    from PIL import Image
    assert Image.open(tmp_path / "video.png").height > Image.open(tmp_path / "one.png").height   # two panels
    assert summary_row(video)["faces"] == 2 and summary_row(one)["faces"] is None   # people tracked in the clip
