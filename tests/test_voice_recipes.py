"""Issue 14 (voice + text): multi-window evaluation, speed perturbation by resampling, VTLP,
RAVDESS song as train-only data, MELD following turns, and epoch-defined recipes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from emomm.data.pipelines.waveforms import ClipOptions, WaveAugment, resample_speed
from emomm.data.datasets.meld import read_meld_csv
from emomm.models.encoders.text_transformer import encode_batch
from emomm.models.encoders.text_scratch import train_tokenizer
from emomm.models.module import EmotionModule
from emomm.models.eval_views import WindowSpec, split_windows, window_starts
from emomm.train import train
from tests.test_text import meld_row, write_meld_csv
from tests.test_voice import SMALL_CNN, rav
from tests.voice_fixtures import write_ravdess_tree

SR = 8000
TINY_VOICE = {"_target_": "emomm.models.encoders.voice_cnn_lstm.VoiceEncoder", "sample_rate": SR,
              "frontend": {"n_mels": 16, "normalize": "utterance_global"}, "specaugment": None,
              "channels": [4, 8], "proj_dim": 8, "lstm_hidden": 8, "attention_hidden": 8}


def tiny_module(eval_windows=None, pad=False) -> EmotionModule:
    torch.manual_seed(0)
    voice = {"sample_rate": SR, "duration": 1.0, "pad": pad, "trim_db": None}
    if eval_windows:
        voice["eval_windows"] = eval_windows
    return EmotionModule(["a", "b", "c"], encoders={"voice": TINY_VOICE},
                         fusion={"_target_": "emomm.models.fusion.IdentityFusion"},
                         optimizer={"_target_": "torch.optim.AdamW", "_partial_": True},
                         preprocessing={"voice": voice}).eval()


def voice_batch(waves: list[torch.Tensor]) -> dict:
    n = max(len(w) for w in waves)
    x = torch.stack([torch.nn.functional.pad(w, (0, n - len(w))) for w in waves])
    return {"inputs": {"voice": x}, "lengths": {"voice": torch.tensor([len(w) for w in waves])},
            "present": {"voice": torch.ones(len(waves), dtype=torch.bool)}}


# -- multi-window evaluation -------------------------------------------------------------------
def test_window_count_for_known_lengths():
    assert window_starts(5 * SR, 3 * SR, SR) == [0, SR, 2 * SR]
    assert window_starts(int(5.5 * SR), 3 * SR, SR) == [0, SR, 2 * SR, int(2.5 * SR)]   # tail window
    assert window_starts(2 * SR, 3 * SR, SR) == [0]
    assert window_starts(3 * SR, 3 * SR, SR) == [0]
    for pad in (False, True):
        spec = WindowSpec.from_preprocessing({"voice": {"sample_rate": SR, "duration": 3.0, "pad": pad,
                                                        "eval_windows": {"hop_s": 1.0}}})
        assert (spec.win, spec.hop) == (3 * SR, SR)
        wins, wlen, owner = split_windows(torch.randn(2, 5 * SR), torch.tensor([5 * SR, 2 * SR]), spec)
        assert wins.shape == (4, 3 * SR) and owner.tolist() == [0, 0, 0, 1]
        # a short clip keeps its length, or is zero-padded to a window as with voice.pad: true
        assert wlen.tolist() == [3 * SR, 3 * SR, 3 * SR, 3 * SR if pad else 2 * SR]
    assert WindowSpec.from_preprocessing({"voice": {"duration": 3.0}}) is None


def test_multi_window_gives_one_prediction_per_clip_and_matches_single_crop_for_short_clips():
    g = torch.Generator().manual_seed(0)
    short, long = torch.randn(int(0.6 * SR), generator=g), torch.randn(int(2.5 * SR), generator=g)
    windowed = tiny_module({"hop_s": 0.5})
    single = tiny_module(None)
    single.load_state_dict(windowed.state_dict())
    with torch.no_grad():
        out = windowed.outputs(voice_batch([short, long]))
        assert out["fused"].shape == (2, 3)                          # one prediction per clip
        alone = single.outputs(voice_batch([short]))["fused"][0]
        assert torch.allclose(out["fused"][0], alone, atol=1e-5)     # short clip: one window = itself
        # the long clip: the mean of the logits of its windows (0, .5, 1, 1.5 s; 1 s each)
        pieces = [long[s:s + SR] for s in range(0, int(1.5 * SR) + 1, SR // 2)]
        mean = single.outputs(voice_batch(pieces))["fused"].mean(0)
        assert torch.allclose(out["fused"][1], mean, atol=1e-5)
        # and not simply the centre crop
        centre = single.outputs(voice_batch([long[int(0.75 * SR):int(1.75 * SR)]]))["fused"][0]
        assert not torch.allclose(out["fused"][1], centre, atol=1e-4)
    windowed.train()  # training never windows: the batch passes as it is
    assert windowed.outputs(voice_batch([short, long]))["fused"].shape == (2, 3)


def test_eval_data_serve_whole_clips_only_with_windows():
    wave = np.random.default_rng(0).normal(size=5 * SR).astype(np.float32)
    crop = ClipOptions(sample_rate=SR, duration=1.0, pad=False)
    whole = ClipOptions(sample_rate=SR, duration=1.0, pad=False, eval_windows={"hop_s": 0.5})
    assert len(crop.to_model_input(wave, False, None, None)) == SR
    assert len(whole.to_model_input(wave, False, None, None)) == 5 * SR
    assert len(whole.to_model_input(wave, True, None, np.random.default_rng(0))) == SR  # train: crops
    assert whole.describe()["eval_windows"] == {"window_s": 1.0, "hop_s": 0.5}
    assert "eval_windows" not in crop.describe()
    with pytest.raises(ValueError, match="hop_s"):
        ClipOptions(duration=1.0, eval_windows={"hop_s": 0})


def test_predict_audio_overall_is_the_mean_of_window_logits():
    from emomm.inference.predictor import Predictor, softmax
    from emomm.inference.runner import TorchRunner
    module = tiny_module({"hop_s": 0.5})
    p = Predictor(TorchRunner(module))
    assert (p.audio_window_s, p.audio_hop_s) == (1.0, 0.5)
    wave = np.random.default_rng(1).normal(size=int(2.5 * SR)).astype(np.float32) * 0.1
    res = p.predict_audio(wave, SR)
    assert len(res.windows) == 4
    pieces = [torch.from_numpy(wave[s:s + SR]) for s in range(0, int(1.5 * SR) + 1, SR // 2)]
    with torch.no_grad():
        logits = module.outputs(voice_batch(pieces), windows=False)["fused"].numpy()
    np.testing.assert_allclose(res.probs, softmax(logits.mean(0)), atol=1e-3)
    np.testing.assert_allclose(p.classify_audio(wave, SR), res.probs, atol=1e-5)  # same windows


# -- augmentation ------------------------------------------------------------------------------
@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturbation_by_resampling_changes_length_and_pitch(factor):
    t = np.arange(SR) / SR
    wave = np.sin(2 * np.pi * 400 * t).astype(np.float32)
    out = resample_speed(wave, factor)
    assert abs(len(out) - SR / factor) <= 1
    peak_hz = np.argmax(np.abs(np.fft.rfft(out))) * SR / len(out)
    assert abs(peak_hz - 400 * factor) < 3
    aug = WaveAugment(gain_db=0, shift_s=0, speed=None, speed_choices=[factor])
    assert aug.active and len(aug.perturb_speed(wave, np.random.default_rng(0))) == len(out)
    assert resample_speed(wave, 1.0) is not None and len(resample_speed(wave, 1.0)) == SR
    with pytest.raises(ValueError, match="not both"):
        WaveAugment(speed=[0.9, 1.1], speed_choices=[0.9, 1.0])


def test_vtlp_warps_the_filterbank_and_is_identity_at_one():
    from emomm.models.encoders.voice_cnn_lstm import LogMelFrontend, vtlp_filterbank
    fe = LogMelFrontend(sample_rate=16000, n_mels=32, vtlp={"alpha": [0.9, 1.1]})
    fb = fe.mel.mel_scale.fb                                        # [F, M]
    warped = vtlp_filterbank(fb, torch.tensor([1.0, 1.1, 0.9]), 16000)
    assert torch.allclose(warped[0], fb, atol=1e-6)
    bins = torch.arange(fb.shape[0], dtype=torch.float)[:, None]
    centroid = lambda b: (b * bins).sum(0) / b.sum(0).clamp_min(1e-9)  # noqa: E731
    m = 10  # a filter well below the 4.8 kHz boundary: it reads source bins f = c / alpha
    assert centroid(warped[1])[m] < centroid(fb)[m] < centroid(warped[2])[m]
    assert abs(float(centroid(warped[1])[m] / centroid(fb)[m]) - 1 / 1.1) < 0.05
    # eval: the plain filterbank; train: a random warp per clip
    x = torch.randn(2, 16000)
    fe.eval()
    plain = LogMelFrontend(sample_rate=16000, n_mels=32).eval()
    assert torch.allclose(fe(x)[0], plain(x)[0], atol=1e-5)
    fe.train()
    assert not torch.allclose(fe(x)[0], plain(x)[0], atol=1e-3)


# -- RAVDESS song -------------------------------------------------------------------------------
def test_song_clips_join_train_only(tmp_path):
    write_ravdess_tree(tmp_path, actors=range(1, 6))
    kw = dict(train_speakers=[1, 2, 3], val_speakers=[4], test_speakers=[5])
    is_song = lambda p: Path(p).name.split("-")[1] == "02"  # noqa: E731
    dm = rav(tmp_path, include_song=True, **kw)
    dm.setup("fit")
    assert sum(map(is_song, dm.splits["train"].paths)) == 6        # 2 per training actor
    assert not any(map(is_song, dm.splits["val"].paths + dm.splits["test"].paths))
    assert len(dm.splits["val"]) == 8
    both = rav(tmp_path, include_song=True, song_train_only=False, **kw)
    both.setup("fit")
    assert sum(map(is_song, both.splits["val"].paths)) == 2
    speech = rav(tmp_path, **kw)
    speech.setup("fit")
    assert not any(map(is_song, speech.splits["train"].paths))


# -- MELD following turns -------------------------------------------------------------------------
def test_meld_future_turns_follow_in_order_and_truncation_keeps_the_utterance(tmp_path):
    rows = [meld_row(1, "hey ross", "Rachel", "neutral", "neutral", 0, 0),
            meld_row(2, "what is it", "Ross", "surprise", "negative", 0, 1),
            meld_row(3, "i am so happy", "Rachel", "joy", "positive", 0, 2),
            meld_row(4, "this is gross", "Ross", "disgust", "negative", 0, 3),
            meld_row(5, "and sad", "Rachel", "sadness", "negative", 0, 4),
            meld_row(6, "other dialogue", "Joey", "neutral", "neutral", 1, 0)]
    path = write_meld_csv(tmp_path / "train_sent_emo.csv", rows)
    p = read_meld_csv(path, context_turns=1, future_turns=2)
    assert p["texts"][2] == "Rachel: i am so happy"
    assert p["contexts"][2] == "Ross: what is it || Ross: this is gross | Rachel: and sad"
    assert p["contexts"][4] == "Ross: this is gross"                # last turn: no future
    assert p["contexts"][0] == "|| Ross: what is it | Rachel: i am so happy"
    assert p["contexts"][5] == ""                                   # a new dialogue
    assert read_meld_csv(path, future_turns=1, speakers=False)["contexts"][1] == "|| i am so happy"
    assert read_meld_csv(path)["contexts"] is None

    tok = train_tokenizer([r[1] for r in rows] * 3 + ["ross rachel"] * 3, vocab_size=200, min_frequency=1)
    x = [{"text": p["texts"][2], "context": p["contexts"][2]}]
    full = [tok.id_to_token(i) for i in encode_batch(tok, x, 64, 0)["input_ids"][0].tolist()]
    words = [t for t in full if t.isalpha()]
    # target first, then past, then the following turns in dialogue order
    assert " ".join(words).startswith("rachel i am so happy")
    order = [words.index(w) for w in ("what", "gross", "sad")]
    assert order == sorted(order)
    short = [tok.id_to_token(i) for i in encode_batch(tok, x, 14, 0)["input_ids"][0].tolist()]
    assert len(short) == 14 and short[:2] == full[:2] and "happy" in short and "what" not in short
    assert "sad" in short                              # the oldest (past) turn is cut first


def test_voice_techniques_train_and_evaluate_end_to_end(cfg_factory, tmp_path):
    """Every switch on at once (multi-window eval, resampled speed, VTLP, song in train),
    through the real training entry point: one prediction per validation clip."""
    root = tmp_path / "rav"
    write_ravdess_tree(root, actors=range(1, 5), seconds=0.6)
    cfg = cfg_factory(["experiment=ravdess_voice", f"data.root={root}", "data.batch_size=4",
                       "data.train_speakers=[1,2]", "data.val_speakers=[3]", "data.test_speakers=[4]",
                       "data.include_song=true", "voice.duration=0.3", "voice.trim_db=null",
                       "voice.eval_windows={hop_s: 0.1}", "voice.augment.speed=null",
                       "voice.augment.speed_choices=[0.9,1.0,1.1]",
                       "model.encoders.voice.frontend.vtlp={alpha: [0.9, 1.1]}",
                       "model.encoders.voice.frontend.n_mels=32", "model.encoders.voice.time_pool=2",
                       "trainer.max_epochs=1", *SMALL_CNN])
    summary = train(cfg)
    assert summary["data_sizes"]["val"] == 8 and summary["data_sizes"]["train"] == 16 + 4 + 1
    assert 0.0 <= summary["test"]["uar"] <= 1.0
    ckpt = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt", weights_only=False)
    assert ckpt["hyper_parameters"]["preprocessing"]["voice"]["eval_windows"] == {"window_s": 0.3, "hop_s": 0.1}


def test_eval_windows_override_scores_a_centre_crop_checkpoint_by_all_windows(cfg_factory, tmp_path, monkeypatch):
    """``python -m emomm.eval eval_windows={hop_s: ...}`` turns multi-window scoring on for a
    checkpoint trained without it (and ``false`` turns it off again): the evaluation data
    serve whole clips and the model sees several windows per clip."""
    import emomm.models.eval_views as eval_views
    from emomm.eval import evaluate

    root = tmp_path / "rav"
    write_ravdess_tree(root, actors=range(1, 5), seconds=0.6)
    cfg = cfg_factory(["experiment=ravdess_voice", f"data.root={root}", "data.batch_size=4",
                       "data.train_speakers=[1,2]", "data.val_speakers=[3]", "data.test_speakers=[4]",
                       "voice.duration=0.3", "voice.trim_db=null", "model.encoders.voice.frontend.n_mels=32",
                       "model.encoders.voice.time_pool=2", "trainer.max_epochs=1", *SMALL_CNN])
    best = train(cfg)["best_ckpt"]
    counted: list[tuple[int, int]] = []
    real_split = eval_views.split_windows

    def counting(wave, lengths, spec):
        out = real_split(wave, lengths, spec)
        lens = [wave.shape[1]] * wave.shape[0] if lengths is None else lengths.tolist()
        counted.append((wave.shape[0], out[0].shape[0], sum(len(window_starts(n, spec.win, spec.hop)) for n in lens)))
        return out

    monkeypatch.setattr(eval_views, "split_windows", counting)
    on = evaluate(cfg_factory([f"ckpt_path={best}", "split=val", "eval_windows={hop_s: 0.1}"],
                              config_name="eval", subdir="eval_on"))
    clips, wins, expected = map(sum, zip(*counted))
    assert on["eval_windows"] == {"hop_s": 0.1} and clips == 8 and 0 <= on["metrics"]["uar"] <= 1
    # >= 0.6 s clips, 0.3 s windows every 0.1 s: at least 4 windows (0, 0.1, 0.2, 0.3 s) each
    assert wins == expected >= 4 * clips
    counted.clear()
    off = evaluate(cfg_factory([f"ckpt_path={best}", "split=val", "eval_windows=false"],
                               config_name="eval", subdir="eval_off"))
    assert off["eval_windows"] is None and counted == [] and 0 <= off["metrics"]["uar"] <= 1
