"""The `voice-ravdess` zoo ensemble's CNN member `voice-ravdess-cnn` (issue 41) and what its choice by cross-validation needs: the
shipped entry loads (checksum, safetensors, no pickle) without `make models`' files, its
card's recipe and cross-validation compose, it predicts on a generated wav; the GE2E encoder
freezes its first N layers; `data.val_speakers=[]` refits on every speaker; the zoo build
adopts only a finished cross-validation of exactly the recipe and fits the temperature on
out-of-fold logits."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

import emomm.zoo as zoo
from emomm.data.core.speakers import speaker_splits
from emomm.data.datasets.ravdess import RavdessDataModule
from emomm.inference.predictor import Predictor
from emomm.models.encoders.speaker_ge2e import GE2EVoiceEncoder
from emomm.utils.zoo_files import PACKAGED_ZOO, ZOO_DIR_ENV, read_card
from emomm.zoo.build import cv_matches, oof_calibration, train_command
from emomm.zoo.recipes import RECIPES
from tests.voice_fixtures import tone, write_ravdess_tree

RECIPE = RECIPES["voice-ravdess-cnn"]
RAVDESS_LABELS = ["neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise"]


@pytest.fixture
def packaged_zoo(monkeypatch, tmp_path):
    """The zoo inside the package, with no GE2E file where `make models` puts it."""
    monkeypatch.setenv(ZOO_DIR_ENV, str(PACKAGED_ZOO))
    empty = tmp_path / "no_models"
    empty.mkdir()
    monkeypatch.setenv("EMOMM_MODELS_DIR", str(empty))
    return PACKAGED_ZOO


def test_voice_entry_loads_from_safetensors_without_the_model_files(packaged_zoo):
    folder = packaged_zoo / "voice-ravdess-cnn"
    assert (folder / "weights.safetensors").read_bytes()[8:9] == b"{"  # safetensors header, no pickle
    module = zoo.load("voice-ravdess-cnn")  # checks both files' SHA-256 against the card
    assert module.label_names == RAVDESS_LABELS
    from safetensors.torch import load_file
    stored = load_file(folder / "weights.safetensors")
    own = module.state_dict()
    assert stored and all(torch.equal(own[k].float(), v.float()) for k, v in stored.items())  # every weight ships inside
    assert module.temperatures and module.temperatures["temperature"] == pytest.approx(
        read_card(folder)["calibration"]["temperature"])


def test_voice_entry_predicts_on_a_generated_wav(packaged_zoo, tmp_path):
    rng = np.random.default_rng(0)
    wav = tmp_path / "speech.wav"
    sf.write(wav, np.concatenate([tone(f, 16000, 0.5, rng) for f in (180, 240, 200, 260)]), 16000)
    res = Predictor.from_pretrained("voice-ravdess").predict_audio(wav)
    assert res.error is None and res.label in RAVDESS_LABELS
    assert len(res.probs) == 8 and sum(res.probs) == pytest.approx(1.0, abs=1e-4)


def test_voice_card_reports_the_cross_validation_and_its_recipe_composes(cfg_factory):
    card = read_card(PACKAGED_ZOO / "voice-ravdess-cnn")
    m = card["metrics"]
    assert len(m["per_fold"]) == 5 and m["headline"] == "uar" and 0 < m["std"]["uar"] < m["mean"]["uar"]
    assert card["recipe"]["command"] == train_command(RECIPE, RECIPE.seeds[0])
    assert "non-commercial" in card["training_data"]["weights"] and "CC BY-NC-SA 4.0" in card["training_data"]["licence"]
    assert card["groups"]["source"] == "ravdess_sex" and set(card["groups"]["groups"]) == {"female", "male"}
    cal = card["calibration"]
    assert cal["fitted_on"]["split"] == "out-of-fold" and cal["temperature"] > 0
    train = cfg_factory([*RECIPE.train, "seed=1"])
    assert train.data.val_speakers == [] and train.data.train_speakers is None
    assert train.callbacks.model_checkpoint is None and train.trainer.max_epochs == 100
    cv = cfg_factory(list(RECIPE.cv), config_name="cv", subdir="cv")
    assert cv.folds == 5 and cv.trainer.max_epochs == train.trainer.max_epochs


def test_ge2e_freezes_its_first_n_layers():
    def frozen(freeze):
        enc = GE2EVoiceEncoder(weights="random", freeze=freeze)
        return [not any(p.requires_grad for p in layer.parameters()) for layer in enc.lstm]
    assert frozen(True) == [True, True] and frozen(False) == [False, False] and frozen(1) == [True, False]
    enc = GE2EVoiceEncoder(weights="random", freeze=1).train()
    assert not enc.lstm[0].training and enc.lstm[1].training
    with pytest.raises(ValueError, match="freeze=3"):
        GE2EVoiceEncoder(weights="random", freeze=3)


def test_empty_val_speakers_validate_on_the_training_speakers(tmp_path):
    assert speaker_splits([1, 2, 3], val=[], test=[]) == {"train": [1, 2, 3], "val": [], "test": []}
    with pytest.raises(ValueError, match="no speakers present"):
        speaker_splits([1, 2, 3], train=[1, 2], val=[9])
    write_ravdess_tree(tmp_path, actors=range(1, 5))
    dm = RavdessDataModule(root=str(tmp_path), train_speakers=None, val_speakers=[], test_speakers=[],
                           batch_size=4, cache=False)
    dm.setup("fit")
    speakers = {k: sorted(set(d.speakers)) for k, d in dm.splits.items()}
    assert speakers == {"train": [1, 2, 3, 4], "val": [1, 2, 3, 4], "test": [1, 2, 3, 4]}
    assert dm.splits["train"].train and not dm.splits["val"].train  # validation clips are not augmented


def test_build_adopts_only_a_finished_cross_validation_of_the_recipe(tmp_path):
    def sweep(name, extra=(), folds=5, last=True):
        for k in range(folds):
            run = tmp_path / name / f"fold_{k}"
            (run / ".hydra").mkdir(parents=True)
            (run / ".hydra" / "overrides.yaml").write_text(
                yaml.safe_dump([f"fold={k}", *RECIPE.cv, "data.root=/d", *extra]))
            if last:
                (run / "checkpoints").mkdir()
                (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
        return tmp_path / name
    assert cv_matches(sweep("same"), RECIPE) is None
    assert "trained with" in cv_matches(sweep("other", ["trainer.max_epochs=3"]), RECIPE)
    assert "fold_4" in cv_matches(sweep("short", folds=4), RECIPE)
    assert "no checkpoints/last.ckpt" in cv_matches(sweep("running", last=False), RECIPE)


def test_out_of_fold_temperature_lowers_the_ece_of_an_overconfident_model():
    g = torch.Generator().manual_seed(0)
    folds = {}
    for k in range(5):
        labels = torch.randint(0, 4, (200,), generator=g)
        pred = torch.where(torch.rand(200, generator=g) < 0.6, labels, torch.randint(0, 4, (200,), generator=g))
        folds[k] = (8.0 * torch.nn.functional.one_hot(pred, 4).float(), labels)  # ~60% right, ~100% sure
    cal = oof_calibration(folds)
    assert cal["temperature"] > 1 and cal["n"] == 1000
    assert cal["calibrated"]["ece"] < cal["uncalibrated"]["ece"] / 3
    assert cal["calibrated_cross_fitted"]["ece"] < cal["uncalibrated"]["ece"] / 3


def test_the_ensemble_serves_with_its_card_and_face_voice_takes_it_alone_or_with_a_face(packaged_zoo):
    """The shipped voice-ravdess ensemble in the web app (its card on the Model tab) and as
    face-voice's voice member: voice alone gives the ensemble's own answer with calm merged into
    neutral; a face and a voice give the equal-weight mean of the two members' answers."""
    from emomm.inference.bundle import BundlePredictor
    from emomm.serve.engine import ServeEngine
    from emomm.utils.runtime import resolve_ckpts
    engine = ServeEngine.from_checkpoint(resolve_ckpts("zoo:voice-ravdess", "."))
    assert engine.info()["card"]["kind"] == "ensemble" and engine.modalities == ["voice"]
    wave = np.random.default_rng(3).normal(size=32000).astype(np.float32) * 0.1
    own = np.asarray(Predictor.from_pretrained("voice-ravdess").classify_audio(wave, 16000)).reshape(-1)
    b = BundlePredictor.from_pretrained("face-voice", detector="none")
    voice_only = np.asarray(b.classify_audio(wave, 16000)).reshape(-1)
    names = read_card(PACKAGED_ZOO / "face-voice")["labels"]
    assert voice_only[names.index("neutral")] == pytest.approx(own[0] + own[1], abs=1e-5)   # neutral + calm
    assert voice_only[names.index("angry")] == pytest.approx(own[RAVDESS_LABELS.index("angry")], abs=1e-5)
    crops = np.random.default_rng(4).integers(0, 255, (1, 48, 48, 3), dtype=np.uint8)
    fused, each = b.classify_fused(crops, wave, 16000, with_own=True)
    np.testing.assert_allclose(fused, (each["face"] + each["voice"]) / 2, atol=1e-6)
