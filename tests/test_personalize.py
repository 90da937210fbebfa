"""Personalisation: shot selection, adapter fitting, the adapter file and the Predictor using it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from emomm.data.core.group_sources import SampleMeta
from emomm.inference.adapter import PersonAdapter
from emomm.personalize import fit_adapter, fit_logit_affine, select_shots
from tests.voice_fixtures import TONE_HZ, ravdess_name, tone

SMALL_CNN = ["model.encoders.voice.channels=[8,16]", "model.encoders.voice.lstm_hidden=16",
             "model.encoders.voice.proj_dim=16", "model.encoders.voice.attention_hidden=16"]
LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


def write_tree(root: Path, actors=range(1, 6), seconds: float = 0.3) -> Path:
    """RAVDESS speech files (16 kHz FLAC) for every emotion, statement 01, repetitions 01 and
    02. Actor 5 (the person to adapt to) speaks every emotion a tone higher than the others."""
    rng = np.random.default_rng(0)
    for actor in actors:
        d = root / f"Actor_{actor:02d}"
        d.mkdir(parents=True, exist_ok=True)
        for emotion in range(1, 9):
            hz = TONE_HZ[emotion] * (1.12 if actor == 5 else 1.0)
            for rep in (1, 2):
                sf.write(d / f"{ravdess_name(emotion, actor, repetition=rep)}.flac", tone(hz, 16000, seconds, rng), 16000)
    return root


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny voice model trained for a few batches on actors 1-4 (actor 5 = validation/test)."""
    from tests.conftest import make_cfg
    from emomm.train import train
    base = tmp_path_factory.mktemp("personalize")
    root = write_tree(base / "ravdess")
    (base / "run").mkdir()
    cfg = make_cfg("train", base / "run", ["modality=voice", "data=ravdess", f"data.root={root}", "data.batch_size=8",
                                           "data.load_workers=1", "data.fold=null", "data.train_speakers=[1,2,3,4]",
                                           "data.val_speakers=[5]", "data.test_speakers=[]", "voice.duration=0.3",
                                           "trainer.max_epochs=6", "callbacks.early_stopping=null",
                                           "model.optimizer.lr=0.01", "model.encoders.voice.frontend.normalize=utterance_global", *SMALL_CNN])
    train(cfg)
    return root, Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt", base


def test_select_shots_protocols():
    names = [ravdess_name(e, 17, intensity=i, statement=s, repetition=r)
             for e in (1, 3) for i in ((1,) if e == 1 else (1, 2)) for s in (1, 2) for r in (1, 2)]
    meta = [SampleMeta(f"/d/{n}.wav", 17) for n in reversed(names)]  # order must not matter
    labels = [0 if Path(m.path).stem.split("-")[2] == "01" else 1 for m in meta]
    adapt, held = select_shots(meta, labels, 2, "ravdess_repetition")
    stems = [Path(meta[i].path).stem for i in adapt]
    # first 2 per class among repetition 01, by name: intensity 01 statements 01 then 02
    assert stems == ["03-01-01-01-01-01-17", "03-01-01-01-02-01-17", "03-01-03-01-01-01-17", "03-01-03-01-02-01-17"]
    assert all(Path(meta[i].path).stem.split("-")[5] == "02" for i in held) and len(held) == len(meta) // 2
    adapt, held = select_shots(meta, labels, 1, "first")
    assert len(adapt) == 2 and set(adapt).isdisjoint(held) and len(adapt) + len(held) == len(meta)
    with pytest.raises(ValueError, match="protocol"):
        select_shots(meta, labels, 1, "random")


def test_logit_affine_lowers_the_adaptation_loss():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 2)
    z = rng.normal(0, 1, (8, 4)).astype(np.float32)
    z[:, 2] += 2.0  # the model over-predicts class 2 for this person
    ce = lambda logits: float(torch.nn.functional.cross_entropy(torch.as_tensor(logits), torch.as_tensor(y)))  # noqa: E731
    scale, bias = fit_logit_affine(z, y, steps=100)
    assert ce(z * scale.numpy() + bias.numpy()) < ce(z)
    assert bias[2] < 0  # the over-predicted class is pushed down


def test_adapter_file_loads_with_weights_only(tmp_path):
    z, y = np.eye(3, dtype=np.float32), np.arange(3)
    emb = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    for method in ("logit_affine", "prototype"):
        a = fit_adapter(method, z, emb, y, ["a", "b", "c"], person=7, shots=1)
        path = a.save(tmp_path / f"{method}.pt")
        raw = torch.load(path, weights_only=True)
        assert raw["person"] == "7" and raw["method"] == method and raw["shots"] == 1
        assert raw["label_names"] == ["a", "b", "c"] and "ckpt_sha256" in raw
        b = PersonAdapter.load(path)
        assert np.allclose(b.apply(z, emb), a.apply(z, emb))
    torch.save({"format": "something else"}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not an emomm person adapter"):
        PersonAdapter.load(tmp_path / "bad.pt")


@pytest.mark.parametrize("method", ["logit_affine", "prototype"])
def test_personalize_cli_and_predictor_with_adapter(tiny_run, cfg_factory, method):
    from emomm.inference.predictor import Predictor
    from emomm.media.audio import load_audio
    from emomm.personalize.__main__ import run
    root, ckpt, _ = tiny_run
    cfg = cfg_factory([f"ckpt_path={ckpt}", "person=5", "shots=1", f"method={method}",
                       "protocol=ravdess_repetition"], config_name="personalize", subdir=method)
    summary = run(cfg)
    out = Path(cfg.paths.output_dir)
    assert json.loads((out / "personalize.json").read_text())["n_adapt"] == 8 == summary["n_adapt"]
    assert summary["n_eval"] == 8 and 0 <= summary["uar_after"] <= 1 and summary["split"] in ("val", "test")
    assert all(f.split("-")[5] == "01" for f in summary["adapt_files"])
    if method == "prototype":  # actor 5 speaks a tone higher: its own prototypes fix most of it
        assert summary["uar_after"] > summary["uar_before"] + 0.2
    path = Path(summary["adapter"])
    raw = torch.load(path, weights_only=True)
    assert raw["ckpt_path"] == str(ckpt) and len(raw["ckpt_sha256"]) == 64 and raw["modality"] == "voice"

    plain = Predictor.from_checkpoint(ckpt)
    adapted = Predictor.from_checkpoint(ckpt, adapter=path)
    assert adapted.adapter.person == "5"
    files = [root / "Actor_05" / f for f in summary["adapt_files"]]
    labels = [int(Path(f).stem.split("-")[2]) - 1 for f in files]
    p0 = np.stack([plain.classify_audio(*load_audio(f, 16000)) for f in files])
    p1 = np.stack([adapted.classify_audio(*load_audio(f, 16000)) for f in files])
    true0, true1 = p0[np.arange(8), labels], p1[np.arange(8), labels]
    # towards the adaptation labels: higher log-probability of the true class on those clips
    assert np.log(true1).mean() > np.log(true0).mean() + 1e-3
    assert (p1.argmax(1) == labels).sum() >= (p0.argmax(1) == labels).sum()
    assert not np.allclose(p0, p1)


def test_unknown_person_and_wrong_labels_are_clear_errors(tiny_run, cfg_factory, tmp_path):
    from emomm.inference.predictor import Predictor
    from emomm.personalize.__main__ import run
    _, ckpt, _ = tiny_run
    with pytest.raises(ValueError, match="person='99' has no samples|person=99 has no samples"):
        run(cfg_factory([f"ckpt_path={ckpt}", "person=99", "shots=1"], config_name="personalize", subdir="p99"))
    bad = fit_adapter("logit_affine", np.eye(3, dtype=np.float32), None, np.arange(3), ["a", "b", "c"], 5, 1)
    with pytest.raises(ValueError, match="fitted for labels"):
        Predictor.from_checkpoint(ckpt, adapter=bad.save(tmp_path / "bad.pt"))
