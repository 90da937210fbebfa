"""emomm.live headless: a generated video file as the camera and a WAV as the microphone ->
JSONL timeline and annotated video; tracking IDs, detect-every-N, smoothing, VAD gating,
face + voice fusion, bad sources."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from emomm.faces import Faces, FaceDetector
from emomm.faces.blazeface import default_model_path
from emomm.inference import Predictor
from emomm.inference.runner import TorchRunner
from emomm.live.model_loader import load_classifier
from emomm.live.stream import LivePipeline, open_video
from emomm.live.voice_input import FileAudioSource, VoiceWindow, open_audio
from emomm.media.video import write_video

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model/face_encoder=timm", "model.encoders.face.backbone=resnet10t", "face.image_size=32"]
HAVE_BLAZEFACE = default_model_path().is_file()


@pytest.fixture(scope="session")
def live_ckpt(tmp_path_factory) -> Path:
    from emomm.train import train
    from tests.conftest import make_cfg

    out = tmp_path_factory.mktemp("live_run")
    train(make_cfg("train", out, TINY + ["data.n_train=28", "data.n_val=14", "data.batch_size=14",
                                         "trainer.max_epochs=1", "test=false"]))
    return out / "checkpoints" / "best.ckpt"


def moving_face_frames(n: int = 24) -> np.ndarray:
    """640x480 frames with the astronaut's head (224 px) sliding right 4 px per frame."""
    head = cv2.resize(skimage.data.astronaut()[20:260, 110:350], (224, 224), interpolation=cv2.INTER_AREA)
    frames = np.full((n, 480, 640, 3), 80, np.uint8)
    for i in range(n):
        x = 60 + 4 * i
        frames[i, 120:344, x:x + 224] = head
    return frames


def write_wav(path: Path, seconds: float = 1.0, sr: int = 16000) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    # a voiced-speech-like signal: 140 Hz pulse train with formant-ish harmonics, syllable envelope
    sig = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 12))
    sig *= 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) * 0.2
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(sr)
        w.writeframes((np.clip(sig, -1, 1) * 32767).astype(np.int16).tobytes())
    return path


@pytest.fixture(scope="module")
def camera_file(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("camera")
    return write_video(d / "camera.mp4", moving_face_frames(), fps=12.0)


class BoxDetector(FaceDetector):
    """A stand-in detector: the known box of the moving head in `moving_face_frames`."""

    kind = "known"

    def __init__(self):
        super().__init__()
        self.frame = 0

    def _detect(self, frames, source, frame_indices):
        out = []
        for _ in frames:
            x = 60 + 4 * self.frame + 60
            out.append(Faces(np.array([[x, 170, x + 110, 300]], np.float32), np.ones(1, np.float32)))
        return out


@pytest.mark.skipif(not HAVE_BLAZEFACE, reason="BlazeFace model absent: run `make models`")
def test_live_cli_headless_file_camera_and_wav_microphone(live_ckpt, camera_file, tmp_path):
    wav = write_wav(tmp_path / "mic.wav", seconds=2.0)
    out, jsonl = tmp_path / "annotated.mp4", tmp_path / "timeline.jsonl"
    env = home_env(tmp_path / "home")
    env["EMOMM_CACHE_DIR"] = str(tmp_path / "cache")   # the default backend=auto caches its ONNX export there
    r = subprocess.run([sys.executable, "-m", "emomm.live", f"ckpt_path={live_ckpt}", f"source={camera_file}",
                        f"audio={wav}", f"output={out}", f"jsonl={jsonl}", "pipeline.detect_every=4",
                        "pipeline.voice_every_s=0.25"],
                       capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["frames"] == 24 and summary["detector_calls"] == 6
    # fast by default: the classifier ran on ONNX Runtime, exported once into the cache
    assert "classifier on ONNX Runtime" in r.stderr, r.stderr[-2000:]
    assert len(list((tmp_path / "cache" / "onnx").glob("*/model.onnx"))) == 1
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert [x["frame"] for x in lines] == list(range(24))
    assert lines[1]["t"] == pytest.approx(1 / 12, abs=1e-3)
    labels = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    ids = set()
    for x in lines:
        assert len(x["faces"]) == 1, x
        f = x["faces"][0]
        ids.add(f["id"])
        assert f["label"] in labels and len(f["probs"]) == 7 and abs(sum(f["probs"]) - 1) < 1e-3
        assert f["label"] == labels[int(np.argmax(f["probs"]))]
        assert set(x) == {"t", "frame", "faces", "voice", "fps"}
        assert set(x["voice"]) == {"speech", "probs"} and isinstance(x["voice"]["speech"], bool)
    assert ids == {0}, "one face, one stable ID"
    # the box follows the head (4 px/frame to the right), also on frames between detections
    cx = np.array([(x["faces"][0]["box"][0] + x["faces"][0]["box"][2]) / 2 for x in lines])
    slope, icpt = np.polyfit(np.arange(24), cx, 1)
    assert 3 < slope < 5 and np.abs(cx - (slope * np.arange(24) + icpt)).max() < 15
    # the voice-only model head is absent (face model): voice probs stay null
    assert all(x["voice"]["probs"] is None for x in lines)
    # annotated video: every frame, source size, with the overlay drawn on it
    cap = cv2.VideoCapture(str(out))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, first = cap.read()
    assert n == 24 and ok and first.shape == (480, 640, 3)
    assert not list(tmp_path.glob("outputs")), "live stores nothing it was not asked to"
    # ... not even under $HOME: ONNX Runtime's telemetry (silero-vad's session) and
    # matplotlib's font cache (Lightning -> torchmetrics) wrote there
    assert not list((tmp_path / "home").rglob("*")), sorted((tmp_path / "home").rglob("*"))


def home_env(home: Path) -> dict[str, str]:
    """The environment of a subprocess whose $HOME is the empty folder ``home``, with none of
    the variables that would move or switch off the caches it could write there."""
    home.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HOME": str(home)}
    for var in ("DISPLAY", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "MPLCONFIGDIR", "ORT_DISABLE_TELEMETRY"):
        env.pop(var, None)
    return env


def test_onnxruntime_sessions_write_nothing_under_home(tmp_path):
    """Importing onnxruntime wrote ~/.cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,
    onnxruntime.db}: an emomm session, or any import after an entry point's defaults, writes nothing."""
    from silero_vad import data
    model = Path(data.__file__).parent / "silero_vad.onnx"
    scripts = ["import sys; from emomm.utils.ort import inference_session; inference_session(sys.argv[1])",
               "import sys; from emomm.utils.runtime import offline_defaults; offline_defaults(); "
               "import onnxruntime; onnxruntime.InferenceSession(sys.argv[1])"]
    for i, script in enumerate(scripts):
        env = home_env(tmp_path / f"home{i}")
        r = subprocess.run([sys.executable, "-c", script, str(model)], capture_output=True, text=True, env=env,
                           timeout=120, cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-2000:]
        assert not list((tmp_path / f"home{i}").rglob("*")), sorted((tmp_path / f"home{i}").rglob("*"))


def test_pipeline_detects_every_n_and_smooths(live_ckpt):
    clf = load_classifier(live_ckpt)
    det = BoxDetector()
    pipe = LivePipeline(clf, det, detect_every=3, ema=0.9)
    frames = moving_face_frames(9)
    results = []
    for i, f in enumerate(frames):
        det.frame = i
        results.append(pipe.process(f, i / 12))
    assert det.calls == 3 and [r.detected for r in results] == [i % 3 == 0 for i in range(9)]
    # between detections the box moves by the measured velocity (4 px/frame)
    assert results[4].faces[0]["box"][0] == pytest.approx(60 + 4 * 4 + 60, abs=0.5)
    # smoothing: with ema=0.9, consecutive probabilities change little
    p = np.array([r.faces[0]["probs"] for r in results])
    raw = clf.classify_faces(np.stack([cv2.resize(f[170:300, 120:230], (32, 32)) for f in frames]))
    assert np.abs(np.diff(p, axis=0)).max() <= np.abs(np.diff(raw, axis=0)).max() + 1e-6


def test_live_loads_a_list_of_checkpoints_as_their_ensemble_and_latest(live_ckpt, tmp_path):
    from emomm.inference.runner import EnsembleRunner
    crops = np.stack([cv2.resize(f[170:300, 120:230], (32, 32)) for f in moving_face_frames(3)])
    single = load_classifier(live_ckpt)
    pair = load_classifier([live_ckpt, live_ckpt])
    assert isinstance(pair.runner, EnsembleRunner)
    # two copies of one model: the ensemble's probabilities are that model's
    np.testing.assert_allclose(pair.classify_faces(crops), single.classify_faces(crops), rtol=1e-4, atol=1e-6)
    latest = load_classifier("latest", log_dir=live_ckpt.parents[1])
    np.testing.assert_allclose(latest.classify_faces(crops), single.classify_faces(crops), rtol=1e-5)
    with pytest.raises(ValueError, match="needs backend=torch"):
        load_classifier([live_ckpt, live_ckpt], backend="onnxruntime")
    with pytest.raises(FileNotFoundError, match="ckpt_path"):
        load_classifier([live_ckpt, tmp_path / "none.ckpt"])


def test_a_voice_only_model_labels_the_speech_without_face_detection():
    """The RAVDESS recipes take voice only: live classifies the audio window, never looks for
    faces, and refuses to start without audio."""
    class VoiceOnly:
        label_names, modalities, preprocessing = ["calm", "angry"], ["voice"], {}

        def classify_audio(self, wave, sr):
            return [0.2, 0.8]

        def classify_faces(self, crops):
            raise AssertionError("a voice-only model is never asked about faces")

    class CountingDetector(BoxDetector):
        calls = 0

        def _detect(self, frames, source, frame_indices):
            CountingDetector.calls += 1
            return super()._detect(frames, source, frame_indices)

    voice = VoiceWindow(window_s=1.0, min_speech=0.5, vad=lambda c: 1.0)
    pipe = LivePipeline(VoiceOnly(), CountingDetector(), voice=voice, voice_every_s=0.0)
    results = [pipe.process(f, i / 12, np.full(1333, 0.1, np.float32)) for i, f in enumerate(moving_face_frames(6))]
    assert CountingDetector.calls == 0 and all(r.faces == [] for r in results)
    assert results[-1].voice == {"speech": True, "probs": [0.2, 0.8]}
    with pytest.raises(ValueError, match="audio=mic"):
        LivePipeline(VoiceOnly(), CountingDetector(), voice=None)


def test_voice_window_gates_on_voice_activity():
    vw = VoiceWindow(window_s=1.0, min_speech=0.5, vad=lambda c: float(np.abs(c).mean() > 0.05))
    vw.push(np.zeros(16000, np.float32))
    assert not vw.speech
    vw.push(0.3 * np.ones(16000, np.float32))
    assert vw.speech and len(vw.wave) == 16000
    # the real silero-vad model ships in the package: silence is not speech
    real = VoiceWindow(window_s=0.5)
    real.push(np.zeros(8000, np.float32))
    assert not real.speech


def test_file_audio_source_follows_video_time(tmp_path):
    src = FileAudioSource(write_wav(tmp_path / "a.wav", seconds=1.0))
    assert len(src.read_until(0.25)) == 4000 and len(src.read_until(0.5)) == 4000
    assert len(src.read_until(5.0)) == 8000 and len(src.read_until(6.0)) == 0
    assert open_audio("none") is None


def test_face_and_voice_model_fuses_voice_into_face_scores():
    from emomm.models.module import EmotionModule

    torch.manual_seed(0)
    enc = {"face": {"_target_": "emomm.models.encoders.face_timm.FaceEncoder", "backbone": "resnet10t", "in_chans": 3},
           "voice": {"_target_": "emomm.models.encoders.voice_cnn_lstm.VoiceEncoder", "sample_rate": 16000,
                     "channels": [8, 16], "lstm_hidden": 16, "proj_dim": 16, "attention_hidden": 16}}
    prep = {"face": {"image_size": 32, "in_chans": 3, "mean": [0.5] * 3, "std": [0.5] * 3},
            "voice": {"sample_rate": 16000, "duration": 1.0, "pad": True, "trim_db": None}}
    m = EmotionModule(label_names=["a", "b", "c"], encoders=enc, optimizer={"_target_": "torch.optim.AdamW",
                      "_partial_": True}, fusion={"_target_": "emomm.models.fusion.ConcatFusion"},
                      preprocessing=prep).eval()
    clf = Predictor(TorchRunner(m))
    speaking = lambda c: 1.0  # noqa: E731
    pipe = LivePipeline(clf, BoxDetector(), voice=VoiceWindow(window_s=1.0, vad=speaking), voice_every_s=0.0,
                        ema=0.0)
    assert pipe.fused
    frame = moving_face_frames(1)[0]
    silent = pipe.process(frame, 0.0, None).faces[0]["probs"]
    rng = np.random.default_rng(0)
    res = pipe.process(frame, 0.1, (0.2 * rng.standard_normal(16000)).astype(np.float32))
    assert res.voice["speech"] and len(res.voice["probs"]) == 3
    assert np.abs(np.array(res.faces[0]["probs"]) - np.array(silent)).max() > 1e-5


def test_bad_sources_are_clear(tmp_path, live_ckpt):
    with pytest.raises(FileNotFoundError, match="camera index"):
        open_video(tmp_path / "missing.mp4")
    with pytest.raises(FileNotFoundError, match="audio="):
        open_audio(str(tmp_path / "missing.wav"))
    with pytest.raises(FileNotFoundError, match="ckpt_path"):
        load_classifier(tmp_path / "none.ckpt")
