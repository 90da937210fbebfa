"""Paired multimodal data for fusion: modality contracts, synthetic reliability/missing,
audio-visual clips (frames and sound from one file), paired real corpora, MELD clips."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from emomm.data.collate import collate_samples
from emomm.data.synthetic import SyntheticDataModule
from emomm.media.video import probe, read_audio, write_video

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


# -- contract ---------------------------------------------------------------------------------
def test_require_modalities_names_dataset_missing_and_available():
    dm = SyntheticDataModule(modalities=["face"], n_train=7, n_val=7, n_test=7)
    assert dm.available_modalities == ["face", "text", "video", "voice"]
    dm.require_modalities(["face", "voice"])          # available, though not served now

    from emomm.data.fer2013 import Fer2013DataModule
    fer = Fer2013DataModule("/nonexistent")
    assert fer.available_modalities == ["face"]
    with pytest.raises(ValueError) as err:
        fer.require_modalities(["face", "voice", "text"])
    msg = str(err.value)
    assert "Fer2013" in msg and "['voice', 'text']" in msg and "it has ['face']" in msg


# -- synthetic --------------------------------------------------------------------------------
def test_synthetic_reliability_and_missing_rates_are_measurable():
    dm = SyntheticDataModule(modalities=["face", "voice", "text"], n_train=1400, n_val=7, n_test=7,
                             reliability={"face": 0.8, "voice": 0.5, "text": 0.3},
                             missing={"face": 0.2, "voice": 0.5}, seed=1)
    dm.setup()
    ds = dm.splits["train"]
    plans = [ds.plan(i) for i in range(len(ds))]
    agree = {m: np.mean([e[m] == ds.labels[i] for i, (_, e) in enumerate(plans)]) for m in dm.modalities}
    absent = {m: np.mean([m not in k for k, _ in plans]) for m in dm.modalities}
    assert abs(agree["face"] - 0.8) < 0.04 and abs(agree["voice"] - 0.5) < 0.05 and abs(agree["text"] - 0.3) < 0.05
    assert abs(absent["face"] - 0.2) < 0.04 and abs(absent["voice"] - 0.5) < 0.05 and absent["text"] == 0
    assert all(k for k, _ in plans)
    # A wrong modality expresses some *other* emotion, spread over the other classes.
    wrong = [e["text"] for i, (_, e) in enumerate(plans) if e["text"] != ds.labels[i]]
    assert len(set(wrong)) == 7
    # Seeded: same plan again, another seed differs; the served sample follows the plan.
    assert ds.plan(5) == plans[5]
    s = ds[next(i for i, (k, _) in enumerate(plans) if "voice" not in k)]
    assert "voice" not in s["inputs"] and s["inputs"]
    batch = collate_samples([ds[i] for i in range(8)])
    assert batch["present"]["face"].tolist() == ["face" in plans[i][0] for i in range(8)]
    # Every sample keeps one modality even at missing=1.
    allgone = SyntheticDataModule(modalities=["face", "text"], n_train=20, n_val=7, n_test=7, missing=1.0)
    allgone.setup()
    assert all(len(allgone.splits["val"].plan(i)[0]) == 1 for i in range(7))


def test_synthetic_defaults_unchanged_and_bad_options():
    a = SyntheticDataModule(modalities=["text"], n_train=7, n_val=7, n_test=7)
    a.setup()
    assert all(a.splits["train"].plan(i)[1]["text"] == i % 7 for i in range(7))
    with pytest.raises(ValueError, match="probabilities"):
        SyntheticDataModule(modalities=["face"], reliability=1.5)
    with pytest.raises(ValueError, match="unknown modalities"):
        SyntheticDataModule(modalities=["face"], missing={"smell": 0.1})


def test_synthetic_video_clips_carry_the_voice_decoded_from_the_file(tmp_path):
    cache = tmp_path / "syn"
    dm = SyntheticDataModule(
        modalities=["video", "voice"], n_train=3, n_val=2, n_test=2, reliability={"voice": 0.0},
        options={"video": {"image_size": 32, "num_frames": 4, "synthetic": {"clip_frames": 6, "cache_dir": str(cache)}},
                 "voice": {"duration": 1.0, "sample_rate": 16000}})
    dm.setup()
    s = dm.splits["val"][1]
    assert s["inputs"]["video"].shape == (4, 1, 32, 32) and s["inputs"]["voice"].shape == (16000,)
    assert set(dm.preprocessing) == {"video", "voice"}
    clip = next(cache.glob("*/s*/0000001_*.mp4"))
    info = probe(clip)
    assert info.audio_codec == "aac" and info.num_frames == 6
    # reliability 0 for the voice: the track in the file says another emotion than the frames.
    v_emotion, a_emotion = clip.stem.split("_")[1], clip.stem.split("_a")[-1]
    assert v_emotion != a_emotion
    # The served voice is the file's own track (centre crop of it), not a fresh synthesis.
    wave, _ = read_audio(clip, 16000)
    served = s["inputs"]["voice"].numpy()
    n = min(len(wave), 16000)
    start = max(0, (len(wave) - 16000) // 2)
    ref = wave[start:start + n] if len(wave) >= 16000 else wave
    got = served[:len(ref)] if len(wave) >= 16000 else served[(16000 - len(wave)) // 2:][:len(wave)]
    assert np.abs(got - ref).max() < 2e-3
    # Frames alone: no audio track written.
    silent = SyntheticDataModule(modalities=["video"], n_train=2, n_val=2, n_test=2,
                                 options={"video": {"image_size": 32, "num_frames": 4,
                                                    "synthetic": {"clip_frames": 6, "cache_dir": str(tmp_path / "s2")}}})
    silent.setup()
    silent.splits["test"][0]
    assert probe(next((tmp_path / "s2").glob("*/s*/*.mp4"))).audio_codec is None
