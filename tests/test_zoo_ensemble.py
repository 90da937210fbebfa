"""A zoo ensemble (``kind: ensemble``, issue 41: ``voice-ravdess`` is the CNN + GE2E mean): it
loads its members, each checked, and predicts their mean; a changed member is refused naming
its file; entry points that need one model refuse it with one line naming its members; a
bundle takes it as a member; the fold-by-fold ensemble scores are the shared function's."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import emomm.zoo as zoo
from emomm.inference.bundle import BundlePredictor
from emomm.inference.predictor import Predictor
from emomm.utils.safe_load import CheckpointError
from emomm.utils.zoo_files import PACKAGED_ZOO, ZOO_DIR_ENV, read_card
from emomm.zoo.bundles import build_bundle
from emomm.zoo.cards import write_card
from emomm.zoo.ensembles import ensemble_fold_scores, scores
from emomm.zoo.recipes import ENSEMBLES
from tests.test_zoo import FAKE_EVAL, TINY
from emomm.zoo.build import package
from tests.serve_helpers import tiny_face_checkpoint


@pytest.fixture(scope="module")
def ens_zoo(tmp_path_factory):
    """A zoo with two tiny face models (the second's weights shifted) and their ensemble ``tiny-ens``."""
    base = tmp_path_factory.mktemp("enszoo")
    ckpt = tiny_face_checkpoint(base)
    other = base / "other.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    g = torch.Generator().manual_seed(0)
    state["state_dict"] = {k: v + 0.5 * torch.randn(v.shape, generator=g) if v.is_floating_point() and "running" not in k else v
                           for k, v in state["state_dict"].items()}
    torch.save(state, other)
    root = base / "zoo"
    for name, path in (("tiny-a", ckpt), ("tiny-b", other)):
        package(TINY, path, root / name, FAKE_EVAL, [1, 2], None, "test")
        card = read_card(root / name)
        card["name"] = name
        write_card(root / name, card)
    members = [{"name": n, "modality": "face", "weight": 0.5, "temperature": 1.0, "temperature_in_model": True,
                "weights_sha256": read_card(root / n)["files"]["weights"]["sha256"]} for n in ("tiny-a", "tiny-b")]
    (root / "tiny-ens").mkdir()
    write_card(root / "tiny-ens", {"name": "tiny-ens", "kind": "ensemble", "modality": "face",
                                   "labels": read_card(root / "tiny-a")["labels"], "members": members})
    return root


@pytest.fixture
def use_ens(ens_zoo, monkeypatch):
    monkeypatch.setenv(ZOO_DIR_ENV, str(ens_zoo))
    return ens_zoo


FACE = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)


def test_ensemble_predicts_the_mean_of_its_checked_members(use_ens):
    got = Predictor.from_pretrained("tiny-ens", detector="none").predict_sample(face=FACE).probs
    a, b = (np.asarray(Predictor.from_pretrained(n, detector="none").predict_sample(face=FACE).probs)
            for n in ("tiny-a", "tiny-b"))
    assert not np.allclose(a, b, atol=1e-3)  # the members differ, so the mean is not either one
    assert got == pytest.approx(((a + b) / 2).tolist(), abs=1e-5)
    # the same through ckpt_path=zoo:NAME (predict / serve / live resolve it to the entry's folder)
    from emomm.live.model_loader import load_classifier
    same = load_classifier("zoo:tiny-ens", backend="auto")
    same.detector_name = "none"
    assert len(same.runner.runners) == 2


def test_a_changed_member_is_refused_naming_the_file(ens_zoo, tmp_path, monkeypatch):
    root = tmp_path / "zoo"
    shutil.copytree(ens_zoo, root)
    monkeypatch.setenv(ZOO_DIR_ENV, str(root))
    weights = root / "tiny-b" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="tiny-b/weights.safetensors: refused to load"):
        Predictor.from_pretrained("tiny-ens", detector="none")
    # a member rebuilt with other weights (card and file agree) is not the member the ensemble was built with
    card = read_card(root / "tiny-b")
    card["files"]["weights"]["sha256"] = "0" * 64
    write_card(root / "tiny-b", card)
    with pytest.raises(ValueError, match="tiny-b/card.yaml: zoo:tiny-b has weights 0+, not the"):
        Predictor.from_pretrained("tiny-ens", detector="none")


def test_one_model_entry_points_refuse_an_ensemble_naming_its_members(use_ens, cfg_factory, tmp_path):
    with pytest.raises(CheckpointError, match="zoo:tiny-ens is a mean ensemble of zoo:tiny-a, zoo:tiny-b, not one model"):
        zoo.load("tiny-ens")
    from emomm.runs.evaluation import evaluate
    cfg = cfg_factory(["ckpt_path=zoo:tiny-ens", f"paths.output_dir={tmp_path}"], config_name="eval")
    with pytest.raises(CheckpointError, match="give one of its members"):
        evaluate(cfg)


def test_a_bundle_takes_an_ensemble_as_a_member(ens_zoo, tmp_path, monkeypatch):
    root = tmp_path / "zoo"
    shutil.copytree(ens_zoo, root)
    monkeypatch.setenv(ZOO_DIR_ENV, str(root))
    folder = build_bundle("face-pair", root, members=["tiny-ens", "tiny-a"])
    b = BundlePredictor.from_folder(folder, detector="none")
    assert len(b.members["tiny-ens"].runner.runners) == 2
    r = b.predict_sample(face=FACE)
    assert set(r.members) == {"tiny-ens", "tiny-a"} and sum(r.probs) == pytest.approx(1.0, abs=1e-4)


def test_fold_scores_are_of_the_members_mean_on_the_same_clips():
    y = np.array([0, 1, 1, 0])
    a = np.array([[.9, .1], [.6, .4], [.6, .4], [.4, .6]])
    b = np.array([[.9, .1], [.1, .9], [.1, .9], [.9, .1]])
    ids = ["w", "x", "y", "z"]
    got = ensemble_fold_scores({"a": {0: (a, y, ids)}, "b": {0: (b, y, ids)}})
    assert got[0] == scores((a + b) / 2, y) and got[0]["uar"] == 1.0 and scores(a, y)["uar"] == 0.25
    with pytest.raises(ValueError, match="different clips"):
        ensemble_fold_scores({"a": {0: (a, y, ids)}, "b": {0: (b, y, ids[::-1])}})


def test_shipped_voice_ravdess_is_the_ensemble_of_its_two_recipes():
    card = read_card(PACKAGED_ZOO / "voice-ravdess")
    assert card["kind"] == "ensemble" and [m["name"] for m in card["members"]] == list(ENSEMBLES["voice-ravdess"].members)
    assert len(card["metrics"]["per_fold"]) == 5 and card["metrics"]["headline"] == "uar"
    assert "temperature" in card["method"] and card["calibration"]["shipped"]["ece"] >= 0
    for m in card["members"]:
        assert read_card(PACKAGED_ZOO / m["name"])["files"]["weights"]["sha256"] == m["weights_sha256"]
