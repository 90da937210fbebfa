"""Voice modality: RAVDESS / CREMA-D on tiny generated trees, speaker-independent splits,
log-mel + masking, both voice encoders, synthetic voice, and fast_dev_run end to end."""
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from emomm.data.core.collate import collate_samples
from emomm.data.datasets.cremad import CremadDataModule
from emomm.data.datasets.ravdess import RavdessDataModule
from emomm.data.core.speakers import parse_cremad_name
from emomm.labels import CREMAD, RAVDESS, RAVDESS_7
from emomm.train import train
from tests.conftest import SHARED_DATA
from tests.voice_fixtures import write_cremad_tree, write_ravdess_tree

TINY_SSL = ("{model_type:wav2vec2,hidden_size:32,num_hidden_layers:2,num_attention_heads:2,"
            "intermediate_size:37,conv_dim:[8,8],conv_kernel:[10,3],conv_stride:[5,2],"
            "num_conv_pos_embeddings:16,num_conv_pos_embedding_groups:2,mask_time_prob:0.0}")
TINY_SSL_DICT = dict(model_type="wav2vec2", hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=37, conv_dim=(8, 8), conv_kernel=(10, 3), conv_stride=(5, 2),
                     num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, mask_time_prob=0.0)
SMALL_CNN = ["model.encoders.voice.channels=[8,16]", "model.encoders.voice.lstm_hidden=16",
             "model.encoders.voice.proj_dim=16", "model.encoders.voice.attention_hidden=16"]


@pytest.fixture(scope="module")
def ravdess(tmp_path_factory):
    root = tmp_path_factory.mktemp("ravdess")
    return root, write_ravdess_tree(root)


def total(dm) -> int:
    """Clips over all splits (test counted once when it is the validation split)."""
    splits = ["train", "val"] + ([] if dm.splits["test"] is dm.splits["val"] else ["test"])
    return sum(len(dm.splits[s]) for s in splits)


def rav(root, **kw):
    kw.setdefault("duration", 0.5)
    return RavdessDataModule(root=str(root), batch_size=4, load_workers=2, **kw)


# -- RAVDESS ------------------------------------------------------------------------------
def test_ravdess_tree_is_read_with_its_quirks(ravdess, caplog):
    root, info = ravdess
    dm = rav(root)
    with caplog.at_level(logging.INFO):
        dm.setup()
    # 6 actors x 8 speech clips + the audio track of one 01- mp4 (the corrupt file is extra).
    assert sum(dm.data_sizes[s] for s in ("train", "val", "test")) == info["speech"]
    assert dm.label_names == list(RAVDESS) and dm.num_classes == 8
    # The corrupt file is skipped with a warning that names it; the bad name is reported.
    assert [Path(e.split(":")[0]) for e in dm.skipped] == [info["corrupt"]]
    assert str(info["corrupt"]) in caplog.text and "could not be read" in caplog.text
    assert len(dm.malformed) == 1 and str(info["malformed"]) in dm.malformed[0]
    assert str(info["malformed"]) in caplog.text and "RAVDESS" in dm.malformed[0]
    assert dm.video_only == 1 and str(info["video_only"]) not in caplog.text
    # 48 kHz stereo wav, 16 kHz flac and the mp4's 44.1 kHz AAC all arrive as 16 kHz mono.
    all_paths = [p for s in ("train", "val", "test") for p in dm.splits[s].paths]
    assert str(info["av_file"]) in all_paths
    for split in ("train", "val"):
        ds = dm.splits[split]
        for i in range(len(ds)):
            x = ds[i]["inputs"]["voice"]
            assert x.shape == (8000,) and x.dtype == torch.float32
    # The stereo file (channels at 1.0 and 0.5 x a 0.3 tone) is mixed down to their mean.
    ds = next(dm.splits[s] for s in ("train", "val", "test")
              if any(p.endswith("03-01-05-01-01-01-01.wav") for p in dm.splits[s].paths))
    stereo = ds.wave(next(i for i, p in enumerate(ds.paths) if p.endswith("03-01-05-01-01-01-01.wav")))
    assert np.abs(stereo.astype(np.float32)).max() == pytest.approx(0.225, abs=0.02)
    assert dm.preprocessing == {"voice": {"sample_rate": 16000, "duration": 0.5, "pad": True, "trim_db": None}}


def test_ravdess_splits_are_speaker_independent(ravdess):
    root, info = ravdess
    tested = []
    for fold in range(5):
        dm = rav(root, fold=fold)
        dm.setup()
        spk = {s: set(dm.splits[s].speakers) for s in ("train", "val", "test")}
        assert not spk["train"] & spk["val"] and not spk["train"] & spk["test"] and not spk["val"] & spk["test"]
        assert spk["train"] | spk["val"] | spk["test"] == set(info["actors"])
        assert dm.split_speakers["test"] == sorted(spk["test"])
        tested += sorted(spk["test"])
    assert sorted(tested) == info["actors"]   # 5-fold CV tests every actor exactly once

    dm = rav(root, train_speakers=[1, 2, 3, 4], val_speakers=[5, 6], test_speakers=[])
    dm.setup()
    assert set(dm.splits["train"].speakers) == {1, 2, 3, 4} and dm.splits["test"] is dm.splits["val"]
    with pytest.raises(ValueError, match="speaker 4 is in both"):
        rav(root, train_speakers=[1, 2, 3, 4], val_speakers=[4, 5]).setup()
    with pytest.raises(ValueError, match="data.fold=7"):
        rav(root, fold=7).setup()
    with pytest.raises(ValueError, match="give one of them"):
        rav(root, fold=1, val_speakers=[5, 6], test_speakers=[]).setup()


def test_ravdess_calm_merge_and_song(ravdess):
    root, info = ravdess
    eight = rav(root)
    eight.setup()
    seven = rav(root, merge_calm=True)
    seven.setup()
    assert seven.label_names == list(RAVDESS_7) and seven.num_classes == 7
    for split in ("train", "val"):
        a, b = eight.splits[split], seven.splits[split]
        assert a.paths == b.paths
        for path, la, lb in zip(a.paths, a.labels, b.labels):
            name = RAVDESS[la]
            assert RAVDESS_7[lb] == ("neutral" if name == "calm" else name), path
    assert eight.class_counts("train")[RAVDESS.index("calm")] > 0
    assert seven.class_counts("train")[RAVDESS_7.index("neutral")] == \
        eight.class_counts("train")[RAVDESS.index("calm")] + eight.class_counts("train")[RAVDESS.index("neutral")]

    song = rav(root, include_song=True, song_train_only=False)  # song in every split
    song.setup()
    assert total(song) - total(eight) == info["song"]
    no_av = rav(root, include_audio_video=False)
    no_av.setup()
    assert total(eight) - total(no_av) == 1


def test_whole_clips_make_padded_batches_with_lengths(ravdess):
    root, _ = ravdess
    dm = RavdessDataModule(root=str(root), fold=0, duration=None, batch_size=6, load_workers=2,
                           augment={"speed": [0.9, 1.1], "speed_p": 1.0, "gain_db": 3})
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    x, lengths = batch["inputs"]["voice"], batch["lengths"]["voice"]
    assert x.shape[0] == 6 and lengths.max() == x.shape[1] and len(set(lengths.tolist())) > 1
    for i, n in enumerate(lengths.tolist()):
        assert torch.all(x[i, n:] == 0)
    # No crop in eval either: the clip's full decoded length.
    ds = dm.splits["val"]
    assert len(ds[0]["inputs"]["voice"]) == len(ds.wave(0))


def test_missing_root_and_empty_tree_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        rav(tmp_path / "nope").setup()
    (tmp_path / "empty" / "Actor_01").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no usable clips"):
        rav(tmp_path / "empty").setup()


# -- CREMA-D ----------------------------------------------------------------------------------
def test_cremad_parsing_and_datamodule(tmp_path, caplog):
    n = parse_cremad_name("AudioWAV/1001_DFA_ANG_XX.wav")
    assert (n.actor, n.sentence, n.emotion, n.level) == (1001, "DFA", "angry", "unspecified")
    info = write_cremad_tree(tmp_path / "cremad")
    dm = CremadDataModule(root=str(tmp_path / "cremad"), batch_size=4, duration=0.4, load_workers=2)
    dm.setup()
    assert dm.label_names == list(CREMAD)
    sizes = dm.data_sizes
    assert sizes["train"] + sizes["val"] + sizes["test"] == info["clips"]
    assert len(dm.malformed) == 1 and "1001_DFA_XYZ_XX.wav" in dm.malformed[0]
    paths = [p for s in ("train", "val", "test") for p in dm.splits[s].paths]
    assert str(info["flv"]) in paths and str(info["mp3"]) not in paths   # wav copy preferred
    spk = {s: set(dm.splits[s].speakers) for s in ("train", "val", "test")}
    assert spk["test"] == {1001, 1002} and spk["val"] == {1003, 1004}
    assert not spk["train"] & (spk["val"] | spk["test"])
    flv_split = next(s for s in ("train", "val", "test") if str(info["flv"]) in dm.splits[s].paths)
    ds = dm.splits[flv_split]
    i = ds.paths.index(str(info["flv"]))
    assert ds.labels[i] == CREMAD.index("sad") and ds[i]["inputs"]["voice"].shape == (6400,)


@pytest.mark.skipif(not (SHARED_DATA / "cremad_sample").is_dir(), reason="real CREMA-D sample not here")
def test_cremad_real_sample_flv_and_mp3():
    dm = CremadDataModule(root=str(SHARED_DATA / "cremad_sample"), fold=None, train_speakers=[1001],
                          val_speakers=[1002], test_speakers=[], batch_size=6, load_workers=2)
    dm.setup()
    assert dm.data_sizes["train"] == 6 and dm.data_sizes["val"] == 6 and not dm.skipped
    assert sorted(dm.splits["train"].labels) == list(range(6))
    assert all(p.endswith(".flv") for p in dm.splits["train"].paths)
    wave = dm.splits["val"].wave(0)
    assert 1.0 < len(wave) / 16000 < 5.0 and np.abs(wave).max() > 0.01


# -- encoders -----------------------------------------------------------------------------------
def test_voice_encoder_ignores_padding_in_eval_and_masks_in_train():
    from emomm.models.encoders.voice_cnn_lstm import VoiceEncoder
    torch.manual_seed(0)
    enc = VoiceEncoder(channels=[8, 16], proj_dim=16, lstm_hidden=16, attention_hidden=16,
                       frontend={"n_mels": 32}, specaugment={"freq_masks": 1, "time_masks": 1})
    x = torch.randn(3, 16000) * 0.1
    lengths = torch.tensor([16000, 9001, 5555])
    x[1, 9001:] = 0
    x[2, 5555:] = 0
    enc.train()
    for _ in range(3):
        enc(x, lengths)   # BatchNorm statistics move away from their initial values
    enc.eval()
    with torch.no_grad():
        batched = enc(x, lengths)
        alone = torch.cat([enc(x[i:i + 1, :n]) for i, n in enumerate(lengths.tolist())])
        # Garbage in the padding is masked out as well.
        noisy = x.clone()
        noisy[1, 9001:] = 1.0
        assert torch.allclose(enc(noisy, lengths), batched, atol=1e-5)
    assert batched.shape == (3, enc.out_dim) and enc.out_dim == 32
    assert torch.allclose(batched, alone, atol=1e-5)
    # Without the mask, padding would change the embedding: the test can fail.
    with torch.no_grad():
        assert not torch.allclose(enc(x)[2], alone[2], atol=1e-3)


def test_channels_last_is_the_same_model_and_loads_nchw_weights():
    """NHWC is a memory layout only: an NCHW-trained state dict loads into the NHWC encoder
    and gives the same embeddings and gradients (without dropout: NHWC draws the conv
    dropout's masks in another order, so seeded runs differ)."""
    from emomm.models.encoders.voice_cnn_lstm import VoiceEncoder
    kw = dict(channels=[8, 16], proj_dim=16, lstm_hidden=16, attention_hidden=16, frontend={"n_mels": 32},
              specaugment=None, conv_dropout=0.0, dropout=0.0)
    torch.manual_seed(0)
    nchw = VoiceEncoder(channels_last=False, **kw)
    nhwc = VoiceEncoder(channels_last=True, **kw)
    nhwc.load_state_dict(nchw.state_dict())
    conv = nhwc.blocks[1][0].weight   # (the first block has one input channel: both layouts agree)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    x, lengths = torch.randn(3, 16000) * 0.1, torch.tensor([16000, 9001, 5555])
    for enc in (nchw, nhwc):
        enc.eval()
    with torch.no_grad():
        assert torch.allclose(nchw(x, lengths), nhwc(x, lengths), atol=1e-5)
    grads = []
    for enc in (nchw, nhwc):
        enc.train()
        enc(x, lengths).square().sum().backward()
        grads.append(enc.blocks[0][0].weight.grad)
    assert grads[0].abs().max() > 0.1 and torch.allclose(grads[0], grads[1], atol=2e-4)


def test_log_mel_frontend_frames_and_normalisation():
    from emomm.models.encoders.voice_cnn_lstm import LogMelFrontend, SpecAugment
    fe = LogMelFrontend(sample_rate=16000, n_mels=40, win_ms=25, hop_ms=10, f_max=7600, normalize="utterance")
    assert (fe.win, fe.hop, fe.n_fft) == (400, 160, 512)
    x = torch.randn(2, 16000)
    lengths = torch.tensor([16000, 8000])
    feats, flen = fe(x, lengths)
    assert feats.shape == (2, 40, 101) and flen.tolist() == [101, 51]
    valid = feats[1, :, :51]
    assert torch.allclose(valid.mean(-1), torch.zeros(40), atol=1e-4)
    assert torch.allclose(valid.std(-1, unbiased=False), torch.ones(40), atol=1e-2)
    assert torch.all(feats[1, :, 51:] == 0)
    # Dataset-level statistics accumulate in training only and are stored in the state dict.
    ds = LogMelFrontend(n_mels=40, normalize="dataset")
    ds.train()
    ds(x, lengths)
    assert ds.stat_count.item() == 152 and "stat_mean" in ds.state_dict()
    mean = ds.stat_mean.clone()
    ds.eval()
    ds(x * 10, lengths)
    assert torch.equal(ds.stat_mean, mean)
    # SpecAugment changes only valid frames, only in training.
    sa = SpecAugment(freq_masks=2, freq_width=8, time_masks=2, time_width=10)
    sa.eval()
    assert torch.equal(sa(feats, flen), feats)
    sa.train()
    aug = sa(feats + 5, flen)
    assert not torch.equal(aug, feats + 5) and torch.equal(aug[1, :, 51:], feats[1, :, 51:] + 5)
    with pytest.raises(ValueError, match="normalize"):
        LogMelFrontend(normalize="per-speaker")


def test_dataset_normalisation_is_fitted_on_the_training_split(ravdess):
    from emomm.models.encoders.voice_cnn_lstm import VoiceEncoder
    root, _ = ravdess
    dm = rav(root, augment=None, duration=None)   # whole clips: deterministic
    dm.setup()
    enc = VoiceEncoder(channels=[8], proj_dim=8, lstm_hidden=8, attention_hidden=8,
                       frontend={"n_mels": 32, "normalize": "dataset"})
    enc.fit_to_data(dm, "voice")
    fe = enc.frontend
    train = dm.splits["train"]
    batch = collate_samples([train[i] for i in range(len(train))])
    x, lengths = batch["inputs"]["voice"], batch["lengths"]["voice"]
    assert bool(fe.stat_frozen) and fe.stat_count.item() == int((lengths // 160 + 1).sum())
    # Training-set features come out standardised per mel bin ...
    feats, flen = fe(x, lengths)
    valid = torch.cat([feats[i, :, :n] for i, n in enumerate(flen.tolist())], dim=1)
    assert torch.allclose(valid.mean(dim=1), torch.zeros(32), atol=1e-3)
    assert torch.allclose(valid.std(dim=1, unbiased=False), torch.ones(32), atol=1e-2)
    # ... and training no longer moves the statistics, which live in the checkpoint.
    mean = fe.stat_mean.clone()
    enc.train()
    enc(torch.randn(2, 8000))
    assert torch.equal(fe.stat_mean, mean) and "frontend.stat_frozen" in enc.state_dict()


def test_ssl_encoder_from_a_tiny_config():
    from emomm.models.encoders.speech_ssl import SpeechSSLEncoder
    torch.manual_seed(0)
    enc = SpeechSSLEncoder(model=None, config=TINY_SSL_DICT, freeze="feature_extractor", pooling="attention")
    assert enc.out_dim == 32 and not enc.pass_mask        # group-norm feature extractor
    fe = enc.backbone.feature_extractor
    assert not any(p.requires_grad for p in fe.parameters())
    assert any(p.requires_grad for p in enc.backbone.encoder.parameters())
    x, lengths = torch.randn(2, 8000), torch.tensor([8000, 5000])
    y = enc(x, lengths)
    y.sum().backward()
    assert y.shape == (2, 32) and fe.conv_layers[0].conv.weight.grad is None

    # Layer-norm extractors get the attention mask: padding then leaves embeddings unchanged.
    ln = SpeechSSLEncoder(model=None, config={**TINY_SSL_DICT, "feat_extract_norm": "layer",
                                             "do_stable_layer_norm": True},
                          freeze="all", layer="weighted", proj_dim=8).eval()
    assert ln.pass_mask and not any(p.requires_grad for p in ln.backbone.parameters())
    x[1, 5000:] = 0
    with torch.no_grad():
        batched = ln(x, lengths)
        alone = ln(x[1:, :5000])
    assert batched.shape == (2, 8)
    assert torch.allclose(batched[1], alone[0], atol=1e-4)
    ln.train()
    assert not ln.backbone.training                       # a frozen backbone stays in eval
    with pytest.raises(ValueError, match="16000"):
        SpeechSSLEncoder(model=None, config=TINY_SSL_DICT, sample_rate=8000)


def test_ssl_encoder_never_downloads(tmp_path):
    from emomm.models.encoders.speech_ssl import SpeechSSLEncoder
    with pytest.raises(OSError, match="downloads are off.*local"):
        SpeechSSLEncoder(model="nobody/not-a-real-speech-model")
    # A local folder (save_pretrained) loads offline, weights included.
    src = SpeechSSLEncoder(model=None, config=TINY_SSL_DICT)
    src.backbone.save_pretrained(tmp_path / "tiny")
    again = SpeechSSLEncoder(model=str(tmp_path / "tiny"))
    w = "encoder.layers.0.attention.q_proj.weight"
    assert torch.equal(src.backbone.state_dict()[w], again.backbone.state_dict()[w])


# -- synthetic voice ---------------------------------------------------------------------------
def test_synthetic_voice_is_deterministic_and_follows_the_emotion():
    from emomm.data.synthetic import SyntheticDataModule
    from emomm.data.synthetic.spec import draw_spec
    from emomm.data.synthetic.voice_synth import prosody_for, synthesize_voice
    a, b = synthesize_voice(draw_spec(0, 3)), synthesize_voice(draw_spec(0, 3))
    assert np.array_equal(a, b) and a.dtype == np.float32 and 1.0 < len(a) / 16000 < 5.0
    assert not np.array_equal(a[:8000], synthesize_voice(draw_spec(1, 3))[:8000])
    specs = [draw_spec(0, i) for i in range(210)]
    rng = np.random.default_rng(0)
    p = {e: [prosody_for(s, rng) for s in specs if s.emotion == e] for e in {s.emotion for s in specs}}
    mean = lambda e, k: np.mean([q[k] for q in p[e]])  # noqa: E731
    assert mean("angry", "energy") > mean("neutral", "energy") > mean("sad", "energy")
    assert mean("fear", "rate") > mean("neutral", "rate") > mean("sad", "rate")
    assert mean("surprise", "final") > 2 > mean("angry", "final")
    # Loudness shows in the audio (recording level varies, so on average only).
    rms = {e: np.mean([np.sqrt(np.mean(synthesize_voice(s) ** 2)) for s in specs[:70] if s.emotion == e])
           for e in ("angry", "sad")}
    assert rms["angry"] > 1.5 * rms["sad"]

    dm = SyntheticDataModule(modalities=["voice", "face"], n_train=14, n_val=7, n_test=7, batch_size=7,
                             options={"voice": {"sample_rate": 16000, "duration": None,
                                                "augment": {"gain_db": 3}},
                                      "face": {"image_size": 32}})
    dm.setup()
    batch = next(iter(dm.val_dataloader()))
    assert set(batch["inputs"]) == {"voice", "face"} and "voice" in batch["lengths"]
    assert dm.preprocessing["voice"] == {"sample_rate": 16000, "duration": None, "pad": True, "trim_db": None}


# -- end to end ------------------------------------------------------------------------------------
@pytest.mark.parametrize("encoder", ["cnn_lstm", "ssl"])
def test_fast_dev_run_ravdess(cfg_factory, ravdess, encoder):
    root, _ = ravdess
    enc = SMALL_CNN if encoder == "cnn_lstm" else [
        "model/voice_encoder=ssl", f"+model.encoders.voice.config={TINY_SSL}", "model.encoders.voice.model=null"]
    cfg = cfg_factory(["modality=voice", "data=ravdess", f"data.root={root}", "data.batch_size=4",
                       "voice.duration=0.5", "debug=fast_dev_run", *enc])
    summary = train(cfg)
    assert summary["label_names"] == list(RAVDESS)
    assert set(summary["test"]) >= {"acc", "uar", "f1_macro"}


@pytest.mark.parametrize("encoder", ["cnn_lstm", "ssl"])
def test_fast_dev_run_synthetic_voice(cfg_factory, encoder):
    enc = SMALL_CNN if encoder == "cnn_lstm" else [
        "model/voice_encoder=ssl", f"+model.encoders.voice.config={TINY_SSL}", "model.encoders.voice.model=null",
        "model.encoders.voice.pooling=attention"]
    # Whole variable-length clips (padded batches + lengths) for the CNN-LSTM; 1 s crops keep
    # the tiny transformer's attention cheap.
    duration = "null" if encoder == "cnn_lstm" else "1.0"
    cfg = cfg_factory(["modality=voice", "data.n_train=8", "data.n_val=4", "data.n_test=4",
                       "data.batch_size=4", f"voice.duration={duration}", "debug=fast_dev_run", *enc])
    summary = train(cfg)
    assert summary["data_sizes"] == {"train": 8, "val": 4, "test": 4}


def test_voice_configs_compose(cfg_factory):
    from hydra.utils import instantiate
    from emomm.runs.training import build_module
    cfg = cfg_factory(["experiment=ravdess_voice"])
    assert cfg.modalities == ["voice"] and cfg.data.train_speakers == list(range(1, 17))
    assert cfg.data.val_speakers == [17, 18, 19, 20] and cfg.data.fold is None
    assert cfg.model.encoders.voice._target_.endswith("VoiceEncoder")
    assert cfg.data.sample_rate == cfg.voice.sample_rate == 16000
    cfg = cfg_factory(["modality=voice", "model/voice_encoder=ssl"], subdir="ssl")
    assert cfg.model.encoders.voice.allow_download is False
    cfg = cfg_factory(["modality=voice", "data=cremad", "data.root=/nowhere"], subdir="cremad")
    dm = instantiate(cfg.data)
    module = build_module(cfg, dm)
    assert module.label_names == list(CREMAD)
    assert module.hparams.preprocessing["voice"]["sample_rate"] == 16000


def test_voice_checkpoint_evaluates_on_ravdess(cfg_factory, ravdess):
    """A synthetic-voice model (7 classes) scores RAVDESS with calm merged into neutral; the
    clip settings come from the checkpoint."""
    from emomm.eval import evaluate
    root, _ = ravdess
    cfg = cfg_factory(["modality=voice", "data.n_train=8", "data.n_val=4", "data.n_test=4",
                       "data.batch_size=4", "voice.duration=0.75", "debug=limit", *SMALL_CNN])
    train(cfg)
    ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    ecfg = cfg_factory([f"ckpt_path={ckpt}", "data=ravdess", f"data.root={root}", "data.merge_calm=true",
                        "data.batch_size=4"], config_name="eval", subdir="eval")
    result = evaluate(ecfg)
    assert result["data"]["duration"] == 0.75 and result["data"]["sample_rate"] == 16000
    assert 0.0 <= result["metrics"]["uar"] <= 1.0
    with pytest.raises(ValueError, match="calm"):
        evaluate(cfg_factory([f"ckpt_path={ckpt}", "data=ravdess", f"data.root={root}"],
                             config_name="eval", subdir="eval8"))
