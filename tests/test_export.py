"""emomm.export: ONNX / TorchScript export of a tiny trained checkpoint, parity with PyTorch
(fp32 and int8), the ONNX Runtime runner (without torch), voice/video graphs, bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from emomm.inference.onnx_export import ExportError, export
from emomm.inference.onnx_runner import OnnxRunner
from emomm.models.module import EmotionModule

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model/face_encoder=timm", "model.encoders.face.backbone=resnet10t", "face.image_size=32"]
OPT = {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3}


@pytest.fixture(scope="session")
def face_ckpt(tmp_path_factory) -> Path:
    """A tiny face model trained for a few epochs on synthetic faces (mirror TTA on, so the
    export must bake the two views into its graph)."""
    from emomm.train import train
    from tests.conftest import make_cfg

    out = tmp_path_factory.mktemp("export_run")
    cfg = make_cfg("train", out, TINY + ["data.n_train=112", "data.n_val=100", "data.n_test=14",
                                         "data.batch_size=28", "trainer.max_epochs=3", "test=false",
                                         # lr 3e-3: not a constant classifier after 3 epochs, whatever the seed
                                         # draws (at 1e-3, 3 seeds of 4 gave one class on the whole split)
                                         "model.optimizer.lr=3e-3",
                                         "model.tta_hflip=[face]", "logger=csv"])
    train(cfg)
    return out / "checkpoints" / "best.ckpt"


@pytest.fixture(scope="session")
def val_batches(face_ckpt):
    model = EmotionModule.load_from_checkpoint(face_ckpt, map_location="cpu").eval()
    dm = instantiate(model.hparams.data)
    dm.setup("validate")
    return model, list(dm.val_dataloader())


@pytest.fixture(scope="session")
def onnx_export(face_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("export_onnx")
    meta = export(ckpt_path=face_ckpt, out_dir=out, format="onnx", quantize="int8")
    return out, meta


def torch_probs(model, batch) -> np.ndarray:
    with torch.no_grad():
        return model(batch).float().softmax(-1).numpy()


def test_export_writes_model_and_metadata(onnx_export, face_ckpt):
    out, meta = onnx_export
    assert (out / "model.onnx").stat().st_size > 100_000 and (out / "model.int8.onnx").is_file()
    disk = json.loads((out / "model.json").read_text())
    assert disk["label_names"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert disk["modalities"] == ["face"] and disk["preprocessing"]["face"]["image_size"] == 32
    assert disk["inputs"] == [{"name": "face", "dtype": "float32", "shape": ["batch", 1, 32, 32]}]
    assert disk["opset"] == 18 and disk["tta"]["hflip"] == ["face"]
    assert disk["sizes_bytes"]["int8"] < 0.5 * disk["sizes_bytes"]["fp32"]
    assert disk["check"]["fp32_max_abs_prob_diff"] <= 1e-4


def test_onnx_fp32_matches_pytorch_on_the_validation_split(onnx_export, val_batches):
    out, _ = onnx_export
    model, batches = val_batches
    runner = OnnxRunner.from_export(out)
    assert runner.label_names == model.label_names and runner.modalities == ["face"]
    worst = 0.0
    for batch in batches:
        got = runner.probs(batch["inputs"])
        worst = max(worst, float(np.abs(got - torch_probs(model, batch)).max()))
    assert worst <= 1e-4
    # The TTA views are in the graph: without them the model predicts differently.
    with torch.no_grad():
        plain = model.net(batches[0]["inputs"]).softmax(-1).numpy()
    assert np.abs(plain - runner.probs(batches[0]["inputs"])).max() > 1e-4


def test_onnx_int8_agrees_with_fp32_argmax(onnx_export, val_batches):
    out, _ = onnx_export
    _, batches = val_batches
    fp32, int8 = OnnxRunner.from_export(out), OnnxRunner.from_export(out, precision="int8")
    a = np.concatenate([fp32.probs(b["inputs"]).argmax(-1) for b in batches])
    q = np.concatenate([int8.probs(b["inputs"]).argmax(-1) for b in batches])
    assert len(a) == 100
    assert (a == q).mean() >= 0.99, f"int8 agrees on {(a == q).mean():.1%} of argmax"
    # The model is not constant (otherwise agreement would prove nothing).
    assert len(set(a.tolist())) > 1


def test_static_int8_calibrates_on_the_validation_split(face_ckpt, val_batches, tmp_path):
    meta = export(ckpt_path=face_ckpt, out_dir=tmp_path, quantize="int8", quantize_method="static",
                  calibration={"max_samples": 32})
    assert meta["quantize"] == {"type": "int8", "method": "static"}
    import onnx
    ops = {n.op_type for n in onnx.load(str(tmp_path / "model.int8.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    _, batches = val_batches
    a = OnnxRunner.from_export(tmp_path).probs(batches[0]["inputs"]).argmax(-1)
    q = OnnxRunner.from_export(tmp_path, precision="int8").probs(batches[0]["inputs"]).argmax(-1)
    assert (a == q).mean() >= 0.9


def test_torchscript_export_matches(face_ckpt, val_batches, tmp_path):
    meta = export(ckpt_path=face_ckpt, out_dir=tmp_path, format="torchscript")
    model, batches = val_batches
    loaded = torch.jit.load(str(tmp_path / "model.pt"))
    x = batches[0]["inputs"]["face"]
    with torch.no_grad():
        got = loaded(x)[0].softmax(-1).numpy()
    assert np.abs(got - torch_probs(model, batches[0])).max() <= 1e-5
    assert meta["files"] == {"torchscript": "model.pt"}


def small_module(encoders, fusion="IdentityFusion", **kw) -> EmotionModule:
    torch.manual_seed(0)
    return EmotionModule(label_names=["a", "b", "c"], encoders=encoders,
                         fusion={"_target_": f"emomm.models.fusion.{fusion}"}, optimizer=OPT, **kw).eval()


VOICE = {"_target_": "emomm.models.encoders.voice_cnn_lstm.VoiceEncoder", "sample_rate": 16000, "channels": [8, 16],
         "lstm_hidden": 16, "proj_dim": 16, "attention_hidden": 16}
FACE = {"_target_": "emomm.models.encoders.face_timm.FaceEncoder", "backbone": "resnet10t", "in_chans": 1}


def video_enc(temporal):
    return {"_target_": "emomm.models.encoders.video_temporal.VideoEncoder", "backbone": "resnet10t",
            "hidden_size": 32, "num_layers": 1, "temporal": temporal}


def test_voice_graph_matches_the_stft_model_at_any_length(tmp_path):
    """The DFT-convolution log-mel front end reproduces torch.stft's, for other lengths too."""
    m = small_module({"voice": VOICE}, preprocessing={"voice": {"sample_rate": 16000, "duration": 1.0}})
    export(module=m, out_dir=tmp_path)
    runner = OnnxRunner.from_export(tmp_path)
    rng = np.random.default_rng(0)
    for n in (16000, 23456):
        t = np.arange(n) / 16000
        wave = (0.3 * np.sin(2 * np.pi * 220 * t)[None] + 0.05 * rng.standard_normal((2, n))).astype(np.float32)
        batch = {"inputs": {"voice": torch.from_numpy(wave)}, "lengths": {}, "present": {}}
        assert np.abs(runner.probs(batch["inputs"]) - torch_probs(m, batch)).max() <= 1e-4


@pytest.mark.parametrize("temporal", ["transformer", "lstm"])
def test_video_graph_matches_with_padded_clips(tmp_path, temporal):
    m = small_module({"video": video_enc(temporal)},
                     preprocessing={"video": {"image_size": 32, "in_chans": 3, "num_frames": 4}})
    meta = export(module=m, out_dir=tmp_path)
    runner = OnnxRunner.from_export(tmp_path)
    x = torch.randn(3, 4, 3, 32, 32)
    lengths = torch.tensor([4, 4, 2]) if temporal == "transformer" else torch.tensor([4, 4, 4])
    batch = {"inputs": {"video": x}, "lengths": {"video": lengths}, "present": {}}
    got = runner.probs(batch["inputs"], lengths={"video": lengths})
    assert np.abs(got - torch_probs(m, batch)).max() <= 1e-4
    if temporal == "lstm":   # packed (shorter) clips are refused, not silently mis-scored
        assert meta["full_length"] == ["video"]
        with pytest.raises(ValueError, match="full-length"):
            runner.run({"video": x}, lengths={"video": torch.tensor([4, 4, 2])})
    with pytest.raises(ValueError, match="axis 1"):
        runner.run({"video": torch.randn(1, 5, 3, 32, 32)})


@pytest.mark.parametrize("fusion", ["ConcatFusion", "AttentionFusion", "LateFusion"])
def test_multimodal_graph_honours_presence_masks(tmp_path, fusion):
    m = small_module({"face": FACE, "voice": VOICE}, fusion=fusion,
                     preprocessing={"face": {"image_size": 32, "in_chans": 1},
                                    "voice": {"sample_rate": 16000, "duration": 1.0}})
    export(module=m, out_dir=tmp_path)
    runner = OnnxRunner.from_export(tmp_path)
    inputs = {"face": torch.randn(2, 1, 32, 32), "voice": 0.1 * torch.randn(2, 16000)}
    present = {"face": torch.tensor([True, True]), "voice": torch.tensor([True, False])}
    batch = {"inputs": inputs, "lengths": {}, "present": present}
    assert np.abs(runner.probs(inputs, present=present) - torch_probs(m, batch)).max() <= 1e-4
    assert np.abs(runner.probs(inputs) - runner.probs(inputs, present=present)).max() > 1e-6
    # Each modality's own head comes out too (the "simple" predictions beside the fused one).
    _, per = runner.run(inputs, present=present)
    with torch.no_grad():
        ref = m.net.forward_all(inputs, present)
    assert set(per) == {"face", "voice"}
    for mod in per:
        assert np.abs(per[mod] - ref.modality_logits[mod].numpy()).max() <= 1e-4


def test_text_models_are_refused_with_a_reason(tmp_path):
    class Text(torch.nn.Module):
        out_dim = 4

        def forward(self, x, lengths=None):
            return torch.zeros(len(x), 4)

    m = small_module({"face": FACE}, preprocessing={"face": {"image_size": 32, "in_chans": 1}})
    m.net.encoders["text"] = Text()
    with pytest.raises(ExportError, match="backend=torch"):
        export(module=m, out_dir=tmp_path)
    with pytest.raises(ExportError, match="format"):
        export(module=m, out_dir=tmp_path, format="tflite")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export(ckpt_path=tmp_path / "nope.ckpt", out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="emomm.export"):
        OnnxRunner.from_export(tmp_path / "empty")


def test_cli_export_and_runner_without_torch(face_ckpt, onnx_export, tmp_path):
    """`python -m emomm.export` works, and an export runs in a process that never imports torch."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "cli"
    r = subprocess.run([sys.executable, "-m", "emomm.export", f"ckpt_path={face_ckpt}", f"out_dir={out}",
                        f"hydra.run.dir={tmp_path / 'hydra'}"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((out / "model.json").read_text())["files"] == {"fp32": "model.onnx"}
    code = ("import sys, numpy as np\n"
            "from emomm.inference.onnx_runner import OnnxRunner\n"
            f"r = OnnxRunner.from_export({str(onnx_export[0])!r}, precision='int8')\n"
            "p = r.probs({'face': np.zeros((2, 1, 32, 32), np.float32)})\n"
            "assert p.shape == (2, 7) and abs(p.sum() - 2) < 1e-4\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-2000:]


def test_predictor_on_the_export_matches_the_checkpoint(face_ckpt, onnx_export):
    """`Predictor(backend=onnxruntime)` gives the checkpoint's probabilities for face crops."""
    from emomm.inference import Predictor
    crops = np.random.default_rng(0).integers(0, 255, (5, 64, 64, 3), dtype=np.uint8)
    p_torch = Predictor.from_checkpoint(face_ckpt)
    p_onnx = Predictor.from_checkpoint(onnx_export[0], backend="onnxruntime")
    assert p_onnx.label_names == p_torch.label_names and p_onnx.modalities == ["face"]
    assert np.abs(p_onnx.classify_faces(crops) - p_torch.classify_faces(crops)).max() <= 1e-4


# -- every declared shape (issue 42): voice lengths, subsets of modalities, batch sizes --------
FACE_VOICE_PREP = {"face": {"image_size": 32, "in_chans": 1}, "voice": {"sample_rate": 16000, "duration": 1.0}}


def subset_present(subset, modalities, b):
    return {m: torch.full((b,), m in subset, dtype=torch.bool) for m in modalities}


def test_face_voice_export_runs_every_declared_shape(tmp_path):
    """Cross-modal attention (the default fusion) with voice of any length, face-only and
    voice-only samples, batches of 1 and 3: ONNX Runtime gives PyTorch's probabilities. The
    graph used to bake the exported voice length into an attention reshape."""
    m = small_module({"face": FACE, "voice": VOICE}, fusion="AttentionFusion", preprocessing=FACE_VOICE_PREP)
    meta = export(module=m, out_dir=tmp_path)
    runner = OnnxRunner.from_export(tmp_path)
    rng = np.random.default_rng(0)
    for b in (1, 3):
        for n in (640, 5000, 16000, 27000):
            for subset in (("face", "voice"), ("face",), ("voice",)):
                inputs = {"face": torch.from_numpy(rng.standard_normal((b, 1, 32, 32), np.float32)),
                          "voice": torch.from_numpy(0.1 * rng.standard_normal((b, n), np.float32))}
                present = subset_present(subset, ("face", "voice"), b)
                batch = {"inputs": inputs, "lengths": {}, "present": present}
                got = runner.probs(inputs, present=present)
                assert np.abs(got - torch_probs(m, batch)).max() <= 1e-4, (b, n, subset)
    # a face-only sample the way the Predictor sends it: no voice input at all
    face = torch.randn(1, 1, 32, 32)
    only = {"inputs": {"face": face}, "lengths": {}, "present": {"voice": torch.tensor([False])}}
    assert np.abs(runner.probs({"face": face}) - torch_probs(m, only)).max() <= 1e-4
    # the check tried the shortest voice the encoder takes; the export left the module as it was
    # (PyTorch's side of the parity is the STFT encoder, not the export adapter)
    assert any("voice length=640" in c for c in meta["check"]["cases"])
    assert type(m.net.encoders["voice"]).__name__ == "VoiceEncoder"


def test_an_export_that_fails_a_declared_shape_is_refused_and_writes_nothing(tmp_path, monkeypatch):
    """The check tries every declared shape: a graph that bakes the voice length (the
    exporter's own multi-head attention, as before the fix) is refused, naming the case,
    and neither a new folder nor files in an existing export folder are left behind."""
    from emomm.inference import export_graph

    m = small_module({"face": FACE, "voice": VOICE}, fusion="AttentionFusion", preprocessing=FACE_VOICE_PREP)
    monkeypatch.setattr(export_graph, "shape_agnostic", lambda module: module, raising=False)
    fresh = tmp_path / "fresh"
    with pytest.raises(ExportError, match=r"fails on inputs it declares \(batch=1, voice length=640.*nothing was"):
        export(module=m, out_dir=fresh)
    assert not fresh.exists()
    # over a previous export: it stays whole (model files and model.json), nothing is added
    old = tmp_path / "old"
    monkeypatch.undo()
    export(module=m, out_dir=old)
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    monkeypatch.setattr(export_graph, "shape_agnostic", lambda module: module, raising=False)
    with pytest.raises(ExportError, match="voice length"):
        export(module=m, out_dir=old, quantize="int8")
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before


def test_an_export_that_disagrees_with_pytorch_is_refused(tmp_path):
    m = small_module({"face": FACE, "voice": VOICE}, fusion="ConcatFusion", preprocessing=FACE_VOICE_PREP)
    with pytest.raises(ExportError, match=r"disagrees with the PyTorch model on batch=1.*> tolerance"):
        export(module=m, out_dir=tmp_path / "x", tolerance=-1.0)
    assert not (tmp_path / "x").exists()


@pytest.fixture(scope="session")
def face_voice_ckpt(tmp_path_factory) -> Path:
    """A tiny face + voice model (the default fusion: cross-modal attention) on synthetic data."""
    from emomm.train import train
    from tests.conftest import make_cfg

    out = tmp_path_factory.mktemp("export_mm_run")
    train(make_cfg("train", out, ["modality=multimodal", "modalities=[face,voice]", *TINY, "data.n_train=14",
                                  "data.n_val=7", "data.n_test=7", "data.batch_size=7", "trainer.max_epochs=1",
                                  "test=false"]))
    return out / "checkpoints" / "best.ckpt"


def test_static_int8_and_live_run_a_face_voice_export_on_short_voice(face_voice_ckpt, tmp_path):
    """`quantize=int8 quantize_method=static` calibrates on the checkpoint's data and its graph
    runs on a shorter voice window and on face-only input; `live backend=onnxruntime` fuses a
    1 s voice window (shorter than the training clips) into the face scores."""
    from emomm.live.model_loader import load_classifier
    from emomm.live.stream import LivePipeline
    from emomm.live.voice_input import VoiceWindow
    from tests.test_live import BoxDetector, moving_face_frames

    meta = export(ckpt_path=face_voice_ckpt, out_dir=tmp_path, quantize="int8", quantize_method="static",
                  calibration={"max_samples": 7, "batch_size": 7})
    assert meta["modalities"] == ["face", "voice"] and "int8_max_abs_prob_diff" in meta["check"]
    duration = meta["preprocessing"]["voice"]["duration"]
    assert duration > 1.0
    int8 = OnnxRunner.from_export(tmp_path, precision="int8")
    rng = np.random.default_rng(0)
    for n in (4000, 16000):
        p = int8.probs({"face": rng.standard_normal((3, 1, 32, 32), np.float32),
                        "voice": (0.1 * rng.standard_normal((3, n))).astype(np.float32)})
        assert p.shape == (3, 7) and np.allclose(p.sum(-1), 1, atol=1e-4)
    assert int8.probs({"face": np.zeros((1, 1, 32, 32), np.float32)}).shape == (1, 7)

    clf = load_classifier(tmp_path, backend="onnxruntime")
    pipe = LivePipeline(clf, BoxDetector(), voice=VoiceWindow(window_s=1.0, vad=lambda c: 1.0), voice_every_s=0.0,
                        ema=0.0)
    frame = moving_face_frames(1)[0]
    silent = pipe.process(frame, 0.0, None).faces[0]["probs"]
    res = pipe.process(frame, 0.1, (0.2 * rng.standard_normal(16000)).astype(np.float32))
    assert res.voice["speech"] and len(res.voice["probs"]) == 7
    assert np.abs(np.array(res.faces[0]["probs"]) - np.array(silent)).max() > 1e-6
