"""The model zoo (issue 41): an entry built by the build code from a tiny checkpoint loads
(checksums, no pickle) and predicts; ``zoo:NAME`` resolves wherever a checkpoint is taken; a
changed weight file is refused; bundles fuse any subset of their members; cards render; the
shipped zoo keeps to its size budget. A test-only zoo folder ($EMOMM_ZOO_DIR) stands in for
the real weights."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

import emomm.zoo as zoo
from emomm.inference.bundle import BundlePredictor
from emomm.inference.predictor import Predictor
from emomm.utils.runtime import resolve_ckpt, resolve_ckpts
from emomm.utils.safe_load import CheckpointError
from emomm.utils.zoo_files import PACKAGED_ZOO, ZOO_DIR_ENV, read_card
from emomm.zoo.__main__ import main as zoo_main
from emomm.zoo.build import SIZE_BUDGET, package, run_matches, zoo_size
from emomm.zoo.bundles import bundle_card, choose_weights, fuse, member_probs, write_bundle
from emomm.zoo.cards import render_markdown, summary_row
from emomm.zoo.packaging import PARITY_TOL
from emomm.zoo.recipes import Recipe
from tests.serve_helpers import TINY_FACE, tiny_face_checkpoint

TINY = Recipe(name="tiny-face", modality="face", train=tuple(TINY_FACE), data_dir="synthetic",
              input="32x32 synthetic faces", training_data={"dataset": "synthetic", "licence": "none needed"},
              intended_use="tests", limitations=("synthetic faces only",))
FAKE_EVAL = {1: {"metrics": {"acc": 0.5, "uar": 0.4}, "calibration": {"ece_before": 0.2, "ece_after": 0.05,
                                                                      "temperature": 1.7}},
             2: {"metrics": {"acc": 0.7, "uar": 0.6}}}


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    """A zoo folder holding ``tiny-face``, packaged by the build code from a tiny trained checkpoint."""
    base = tmp_path_factory.mktemp("zoo")
    ckpt = tiny_face_checkpoint(base)
    root = base / "zoo"
    package(TINY, ckpt, root / "tiny-face", FAKE_EVAL, [1, 2], None, "test")
    return root


@pytest.fixture
def use_zoo(tiny_zoo, monkeypatch):
    monkeypatch.setenv(ZOO_DIR_ENV, str(tiny_zoo))
    return tiny_zoo


def test_built_entry_loads_checked_and_predicts(use_zoo):
    card = zoo.card("tiny-face")
    assert zoo.names() == ["tiny-face"]
    w = card["files"]["weights"]
    assert w["dtype"] == ("float16" if w["parity_max_prob_diff"] <= PARITY_TOL else "float32")
    assert (use_zoo / "tiny-face" / "weights.safetensors").read_bytes()[8:9] == b"{"  # safetensors header, no pickle
    json.loads((use_zoo / "tiny-face" / "hparams.json").read_text())
    # figures from the evaluations: mean and spread over seeds, the first seed's calibration
    assert card["metrics"]["mean"]["acc"] == pytest.approx(0.6) and card["metrics"]["std"]["acc"] == pytest.approx(0.1414, abs=1e-3)
    assert card["calibration"]["temperature"] == 1.7 and card["latency"]["ms_per_input"] > 0
    assert card["recipe"]["command"].endswith("seed=1") and card["recipe"]["shipped_seed"] == 1
    module = zoo.load("zoo:tiny-face")
    assert not module.training and module.label_names == card["labels"]
    p = Predictor.from_pretrained("tiny-face", detector="none")
    r = p.predict_sample(face=np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8))
    assert r.label in card["labels"] and abs(sum(r.probs) - 1) < 1e-4


def test_tampered_weights_are_refused_naming_the_file(tiny_zoo, tmp_path, monkeypatch):
    import shutil
    root = tmp_path / "zoo"
    shutil.copytree(tiny_zoo, root)
    monkeypatch.setenv(ZOO_DIR_ENV, str(root))
    weights = root / "tiny-face" / "weights.safetensors"
    good = weights.read_bytes()
    data = bytearray(good)
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    for load in (lambda: zoo.load("tiny-face"), lambda: Predictor.from_pretrained("tiny-face")):
        with pytest.raises(CheckpointError, match="weights.safetensors: refused to load: its SHA-256") as err:
            load()
        assert "rebuild the entry" in str(err.value)
    weights.write_bytes(good)
    zoo.load("tiny-face")
    (root / "tiny-face" / "hparams.json").write_text("{}")
    with pytest.raises(CheckpointError, match="hparams.json: refused to load"):
        zoo.load("tiny-face")


def test_unknown_name_lists_the_zoo(use_zoo):
    with pytest.raises(CheckpointError, match="zoo:nope: no such model.*tiny-face"):
        resolve_ckpt("zoo:nope", ".")
    with pytest.raises(CheckpointError, match="no such model"):
        zoo.load("../tiny-face")
    with pytest.raises(ValueError, match="backend=torch"):
        resolve_ckpts("zoo:tiny-face", ".", backend="onnxruntime")


def test_zoo_resolves_in_every_entry_point(use_zoo, cfg_factory, tmp_path):
    from emomm.inference.onnx_export import export
    from emomm.live.model_loader import load_classifier
    from emomm.runs.ensembling import resolve_run
    from emomm.runs.evaluation import evaluate
    from emomm.serve.engine import ServeEngine

    folder = use_zoo / "tiny-face"
    assert resolve_ckpt("zoo:tiny-face", ".") == folder == resolve_run("zoo:tiny-face")
    assert resolve_ckpts(["zoo:tiny-face", "zoo:tiny-face"], ".") == [folder, folder]  # predict, ensembles
    assert load_classifier("zoo:tiny-face").label_names == zoo.card("tiny-face")["labels"]  # live
    assert ServeEngine.from_checkpoint(resolve_ckpts("zoo:tiny-face", ".")).predictor.label_names  # serve
    meta = export(ckpt_path=resolve_ckpt("zoo:tiny-face", "."), out_dir=tmp_path / "exp", format="torchscript")
    assert meta  # export
    res = evaluate(cfg_factory(["ckpt_path=zoo:tiny-face", "split=val", "debug=limit"], config_name="eval"))
    assert res["ckpt_path"] == str(folder) and "acc" in res["metrics"]  # eval (personalize: resolve_ckpt too)


def test_python_m_emomm_zoo_lists_and_shows(use_zoo, capsys):
    zoo_main([])
    out = capsys.readouterr().out
    assert "tiny-face" in out and "acc 60.0 ± 14.1 (val, 2 seeds)" in out
    zoo_main(["show", "tiny-face"])
    assert "# tiny-face" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        zoo_main(["show", "nope"])
    assert "no such model" in capsys.readouterr().err


def test_card_renders_every_section():
    card = {"name": "m", "kind": "model", "modality": "voice", "labels": ["a", "b"], "input": "16 kHz speech",
            "training_data": {"licence": "CC BY-NC-SA 4.0"}, "recipe": {"command": "python -m emomm.train x=1"},
            "metrics": {"split": "val", "per_seed": {1: {"uar": 0.5}, 2: {"uar": 0.7}}, "mean": {"uar": 0.6},
                        "std": {"uar": 0.1}},
            "calibration": {"ece_before": 0.12}, "groups": {"female": 0.6}, "occlusion": {"lower": 0.3},
            "files": {"weights": {"file": "w", "bytes": 2_000_000, "dtype": "float16", "sha256": "ab",
                                  "parity_max_prob_diff": 2e-4}},
            "latency": {"ms_per_input": 1.25}, "intended_use": "research", "limitations": ["acted speech"]}
    md = render_markdown(card)
    for text in ("# m", "16 kHz speech", "CC BY-NC-SA 4.0", "`python -m emomm.train x=1`", "| uar | 60.0 | 10.0 | 50.0 / 70.0 |",
                 "ece_before: 0.12", "female: 0.6", "lower: 0.3", "| w | 2,000,000 | float16 | `ab` |", "2.00e-04",
                 "ms_per_input: 1.25", "## Intended use", "- acted speech"):
        assert text in md, text
    assert summary_row(card) | {} == {"name": "m", "kind": "model", "modality": "voice",
                                      "validation": "uar 60.0 ± 10.0 (val, 2 seeds)", "size": "2.0 MB",
                                      "cpu ms": "1.2", "licence": "CC BY-NC-SA 4.0"}


FER = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
RAVDESS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


def test_bundle_maps_labels_scales_and_fuses_any_subset():
    card = bundle_card("face-voice", FER, [{"name": "f", "modality": "face", "labels": FER, "weight": 0.75},
                                           {"name": "v", "modality": "voice", "labels": RAVDESS, "weight": 0.25,
                                            "temperature": 2.0}])
    assert card["members"][1]["label_map"]["calm"] == "neutral" and "calm" in card["label_mapping"]
    voice = np.zeros((1, 8))
    voice[0, :2] = [0.5, 0.5]                       # neutral + calm
    mv = member_probs(card, card["members"][1], RAVDESS, voice)
    assert mv[0, FER.index("neutral")] == pytest.approx(1.0, abs=1e-4)
    sharp = np.array([[0.8, 0.2, 0, 0, 0, 0, 0]])
    assert member_probs(card, card["members"][1] | {"label_map": card["members"][0]["label_map"]}, FER, sharp)[0, 0] \
        == pytest.approx(np.sqrt(0.8) / (np.sqrt(0.8) + np.sqrt(0.2)), abs=1e-4)   # T=2: p ** (1/2), renormalised
    mf = np.eye(7)[[3]]
    assert fuse(card, {"f": mf})[0, 3] == 1.0                     # face only
    assert fuse(card, {"v": mv})[0, 6] == pytest.approx(1.0, abs=1e-4)  # voice only
    both = fuse(card, {"f": mf, "v": mv})[0]
    assert both[3] == pytest.approx(0.75) and both[6] == pytest.approx(0.25, abs=1e-4)
    with pytest.raises(ValueError, match="no member had an input"):
        fuse(card, {})
    with pytest.raises(ValueError, match="'contempt' maps onto none"):
        bundle_card("x", FER, [{"name": "c", "modality": "face", "labels": ["contempt"]}])


def test_bundle_weights_are_chosen_on_validation_data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 200)
    good = np.full((200, 7), 0.02)
    good[np.arange(200), y] = 0.88                  # an informative member
    noise = rng.dirichlet(np.ones(7), 200)          # an uninformative one
    card = bundle_card("b", FER, [{"name": "f", "modality": "face", "labels": FER},
                                  {"name": "v", "modality": "voice", "labels": FER}])
    weights, nll = choose_weights(card, {"f": good, "v": noise}, y, step=0.1)
    assert weights["f"] > weights["v"] and sum(weights.values()) == pytest.approx(1)
    assert nll < -np.mean(np.log(fuse(card, {"f": good, "v": noise}, {"f": 0.5, "v": 0.5})[np.arange(200), y]))


class _VoiceStub:
    """A voice member answering RAVDESS's labels (calm most likely)."""
    label_names = RAVDESS

    def predict_sample(self, voice=None, sr=None):
        from types import SimpleNamespace
        probs = [0.1, 0.6, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05]
        return SimpleNamespace(label_names=RAVDESS, probs=probs)


def test_bundle_predictor_with_each_subset_of_modalities(use_zoo):
    face_labels = zoo.card("tiny-face")["labels"]
    card = bundle_card("face-voice", face_labels, [{"name": "tiny-face", "modality": "face", "labels": face_labels},
                                                   {"name": "voice", "modality": "voice", "labels": RAVDESS}])
    write_bundle(use_zoo.parent / "bundle_zoo" / "face-voice", card)
    assert read_card(use_zoo.parent / "bundle_zoo" / "face-voice")["kind"] == "bundle"
    b = BundlePredictor(card, {"tiny-face": Predictor.from_pretrained("tiny-face", detector="none"),
                               "voice": _VoiceStub()})
    crop = np.full((32, 32, 3), 128, np.uint8)
    face_only = b.predict_sample(face=crop)
    assert face_only.present == ["face"] and list(face_only.members) == ["tiny-face"]
    assert face_only.probs == pytest.approx(face_only.members["tiny-face"].probs)
    voice_only = b.predict_sample(voice=np.zeros(16000, np.float32), sr=16000)
    assert voice_only.label == "neutral" and voice_only.members["voice"].own_label_names == RAVDESS
    both = b.predict_sample(face=crop, voice=np.zeros(16000, np.float32), sr=16000)
    expect = (np.asarray(face_only.probs) + np.asarray(voice_only.probs)) / 2
    assert both.probs == pytest.approx(expect.tolist(), abs=1e-6) and set(both.members) == {"tiny-face", "voice"}
    with pytest.raises(ValueError, match="takes"):
        b.predict_sample(text="hi")


def test_build_adopts_only_runs_of_exactly_the_recipe(tmp_path):
    def run(name, overrides, seed=1, ckpt=True):
        d = tmp_path / name
        (d / ".hydra").mkdir(parents=True)
        (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        (d / "config.yaml").write_text(yaml.safe_dump({"seed": seed}))
        if ckpt:
            (d / "checkpoints").mkdir()
            (d / "checkpoints" / "best.ckpt").write_bytes(b"x")
        return d
    wanted = ["experiment=fer2013_fast", "seed=1"]
    assert run_matches(run("same", ["seed=1", "experiment=fer2013_fast", "data.root=/d"]), wanted) is None
    assert "trained with" in run_matches(run("other", ["experiment=fer2013_fast", "seed=1", "trainer.max_epochs=2"]), wanted)
    assert "seed 2" in run_matches(run("seed", ["experiment=fer2013_fast", "seed=1"], seed=2), wanted)
    assert "still training" in run_matches(run("unfinished", wanted, ckpt=False), wanted)
    assert "overrides.yaml" in run_matches(tmp_path, wanted)


def test_shipped_zoo_keeps_to_its_size_budget():
    total = zoo_size(PACKAGED_ZOO)
    on_disk = sum(p.stat().st_size for p in PACKAGED_ZOO.glob("*/*") if p.name in ("weights.safetensors", "hparams.json"))
    assert on_disk <= total <= SIZE_BUDGET
    for folder in PACKAGED_ZOO.iterdir():
        if (folder / "card.yaml").is_file():
            card = read_card(folder)
            assert card["name"] == folder.name
            for f in (card.get("files") or {}).values():
                assert (folder / f["file"]).stat().st_size == f["bytes"]


def test_the_build_evaluation_command_composes(cfg_factory, tmp_path):
    """The options emomm.zoo.build gives emomm.eval (calibration, occlusion, the data moved
    under --data-root) compose against eval's config: ``data.root`` alone was refused there."""
    from emomm.zoo.build import eval_overrides
    from emomm.zoo.recipes import RECIPES
    cfg = cfg_factory(eval_overrides(RECIPES["face-fer2013"], tmp_path / "best.ckpt", tmp_path / "datasets"),
                      config_name="eval")
    assert cfg.calibrate is True and cfg.data.root == str(tmp_path / "datasets" / "fer2013")


def test_a_one_seed_card_shows_no_spread_and_nll_as_it_is():
    card = {"name": "m", "kind": "model", "metrics": {"split": "val", "per_seed": {1: {"acc": 0.7, "nll": 0.93}},
                                                       "mean": {"acc": 0.7, "nll": 0.93}, "std": {"acc": 0.0, "nll": 0.0}}}
    text = render_markdown(card)
    assert "| acc | 70.0 | - | 70.0 |" in text and "| nll | 0.930 | - | 0.930 |" in text


MELD = ["neutral", "joy", "sadness", "anger", "surprise", "fear", "disgust"]


def fake_member(root, name, modality, labels, temperature=None, calibrated=False):
    """A zoo entry's card (and hparams.json) only: what a bundle's build reads of its members."""
    from emomm.zoo.cards import write_card
    folder = root / name
    folder.mkdir(parents=True)
    hp = {"hyper_parameters": {"calibration": {"temperature": temperature} if calibrated else None}}
    (folder / "hparams.json").write_text(json.dumps(hp))
    card = {"name": name, "kind": "model", "modality": modality, "labels": labels,
            "training_data": {"licence": f"{name} licence"}}
    if temperature:
        card["calibration"] = {"temperature": temperature}
    write_card(folder, card)
    return folder


def test_bundle_build_cli_takes_members_cards_and_says_why_the_weights(tmp_path, capsys):
    from emomm.zoo.build import main as build_main
    root = tmp_path / "zoo"
    fake_member(root, "face-fer2013", "face", FER, temperature=0.8, calibrated=True)
    with pytest.raises(SystemExit, match="zoo:voice-ravdess is not in the zoo.*python -m emomm.zoo.build voice-ravdess"):
        build_main(["face-voice", "--out", str(root)])
    fake_member(root, "voice-ravdess", "voice", RAVDESS, temperature=1.5)
    build_main(["face-voice", "--out", str(root)])
    card = read_card(root / "face-voice")
    assert card["kind"] == "bundle" and card["labels"] == FER and card["modality"] == "face+voice"
    face, voice = card["members"]
    assert (face["name"], face["temperature"], face["temperature_in_model"]) == ("face-fer2013", 0.8, True)
    assert (voice["name"], voice["temperature"], voice["temperature_in_model"]) == ("voice-ravdess", 1.5, False)
    assert voice["label_map"]["calm"] == "neutral" and voice["label_map"]["fearful"] == "fear"
    assert face["weight"] == voice["weight"] == 0.5
    assert card["weights_chosen_on"]["how"] == "equal" and "no validation data pairs" in card["weights_chosen_on"]["why"]
    assert "'calm'" in card["label_mapping"] and "voice-ravdess licence" in card["training_data"]["licence"]
    md = (root / "face-voice" / "card.md").read_text()
    assert "## Weights chosen on" in md and "calm -> neutral" in md
    fake_member(root, "text-meld", "text", MELD, temperature=1.2, calibrated=True)
    build_main(["face-voice-text", "--out", str(root)])
    text = read_card(root / "face-voice-text")["members"][2]
    assert text["label_map"]["joy"] == "happy" and text["label_map"]["sadness"] == "sad"
    assert [m["weight"] for m in read_card(root / "face-voice-text")["members"]] == pytest.approx([1 / 3] * 3)


def test_bundle_weights_from_paired_validation_predictions(tmp_path):
    from emomm.zoo.bundles import build_bundle
    root = tmp_path / "zoo"
    fake_member(root, "f", "face", FER)
    fake_member(root, "v", "voice", RAVDESS)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 100)
    good = np.full((100, 7), 0.02)
    good[np.arange(100), y] = 0.88
    build_bundle("fv", root, members=["f", "v"], paired=({"f": good, "v": rng.dirichlet(np.ones(8), 100)}, y))
    card = read_card(root / "fv")
    weights = {m["name"]: m["weight"] for m in card["members"]}
    assert weights["f"] > weights["v"] and card["weights_chosen_on"]["n"] == 100


def test_a_member_calibrated_in_its_model_is_not_scaled_twice():
    card = bundle_card("b", FER, [{"name": "f", "modality": "face", "labels": FER, "temperature": 2.0,
                                   "temperature_in_model": True}])
    p = np.array([[0.8, 0.2, 0, 0, 0, 0, 0]])
    np.testing.assert_allclose(member_probs(card, card["members"][0], FER, p), p, atol=1e-9)


class _LiveVoiceStub(_VoiceStub):
    modalities, preprocessing, backend = ["voice"], {"voice": {"duration": 2.0}}, "torch"

    def classify_audio(self, wave, sr):
        self.calls = getattr(self, "calls", 0) + 1
        return np.array([0.1, 0.6, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05])


def test_bundle_answers_live_and_serve_with_each_subset(use_zoo):
    from emomm.serve.engine import ServeEngine
    face_labels = zoo.card("tiny-face")["labels"]
    card = bundle_card("face-voice", face_labels, [{"name": "tiny-face", "modality": "face", "labels": face_labels},
                                                   {"name": "voice", "modality": "voice", "labels": RAVDESS}])
    face = Predictor.from_pretrained("tiny-face", detector="none")
    voice = _LiveVoiceStub()
    b = BundlePredictor(card, {"tiny-face": face, "voice": voice})
    crops = np.random.default_rng(1).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    own_face = face.classify_faces(crops)
    np.testing.assert_allclose(b.classify_faces(crops), own_face, atol=1e-6)          # face only
    assert face_labels[int(np.argmax(b.classify_audio(np.zeros(16000), 16000)))] == "neutral"  # voice only: calm
    np.testing.assert_allclose(b.classify_fused(crops, None, 16000), own_face, atol=1e-6)
    wave = np.random.default_rng(2).normal(size=16000).astype(np.float32)
    fused, own = b.classify_fused(crops, wave, 16000, with_own=True)                  # both
    np.testing.assert_allclose(fused, (own["face"] + own["voice"]) / 2, atol=1e-6)
    assert set(own) == {"face", "voice"} and own["voice"].shape == (2, len(face_labels))
    calls = voice.calls
    b.classify_fused(crops, wave.copy(), 16000)
    assert voice.calls == calls, "the same voice window is not classified again every frame"
    engine = ServeEngine(b, use_zoo / "tiny-face")
    assert engine.modalities == ["face", "voice"] and engine.label_names == face_labels
    assert engine.audio_window_s == 2.0 and engine.info()["card"]["name"] == "tiny-face"
    img = b.predict_image(np.full((32, 32, 3), 128, np.uint8))
    assert img.label_names == face_labels and len(img.faces[0].probs) == len(face_labels)


def test_default_model_is_the_bundle_when_built_else_the_face_model(tmp_path, monkeypatch):
    from emomm.utils.safe_load import CheckpointNotFoundError
    root = tmp_path / "zoo"
    root.mkdir()
    monkeypatch.setenv(ZOO_DIR_ENV, str(root))
    with pytest.raises(CheckpointNotFoundError, match="none of the default models"):
        zoo.default_checkpoint(None)
    fake_member(root, "face-fer2013", "face", FER)
    assert zoo.default_checkpoint("a.ckpt") == ("a.ckpt", None)
    path, said = zoo.default_checkpoint(None)
    assert path == "zoo:face-fer2013" and "using zoo:face-fer2013" in said
    write_bundle(root / "face-voice", bundle_card("face-voice", FER, [
        {"name": "face-fer2013", "modality": "face", "labels": FER},
        {"name": "voice-ravdess", "modality": "voice", "labels": RAVDESS}]))
    assert zoo.default_name() == "face-fer2013", "a bundle whose member is missing is not the default"
    fake_member(root, "voice-ravdess", "voice", RAVDESS)
    assert zoo.default_checkpoint(None)[0] == "zoo:face-voice"


def test_the_model_tab_shows_a_zoo_entrys_card(use_zoo):
    from emomm.serve.engine import ServeEngine
    engine = ServeEngine.from_checkpoint(use_zoo / "tiny-face", backend="torch")
    card = engine.info()["card"]
    assert card["name"] == "tiny-face" and card["training_data"]["licence"] == "none needed"
    assert card["metrics"]["mean"]["acc"] == pytest.approx(0.6) and card["metrics"]["seeds"] == 2
    assert card["markdown"].startswith("# tiny-face") and card["limitations"] == ["synthetic faces only"]
    assert engine.checkpoint_name == "tiny-face"


def test_cards_cite_the_training_commit_and_store_no_machine_data_root(tiny_zoo, tmp_path, monkeypatch):
    from emomm.utils.targets import checked_data_config
    from emomm.zoo.build import training_commit
    from emomm.zoo.packaging import neutral_data_root
    run = tiny_zoo.parent / "serve_run"    # trained by emomm.train in this session: it records its commit
    commit = json.loads((run / "metrics.json").read_text())["git_commit"]
    assert training_commit(run) == commit and (commit == "unknown" or len(commit.split("+")[0]) == 40)
    assert training_commit(tmp_path).startswith("not recorded")
    hp = {"data": {"_target_": "emomm.data.datasets.fer2013.Fer2013DataModule", "root": "/work/shared/data/fer2013"}}
    stored = neutral_data_root(hp)["data"]
    assert stored["root"] == "<data_dir>/fer2013" and hp["data"]["root"] == "/work/shared/data/fer2013"
    assert checked_data_config(stored, "x", data_dir="/elsewhere")["root"] == "/elsewhere/fer2013"
    monkeypatch.setenv("EMOMM_DATA_DIR", str(tmp_path))
    assert checked_data_config(stored, "x")["root"] == f"{tmp_path}/fer2013"
    for folder in PACKAGED_ZOO.iterdir():
        if (folder / "hparams.json").is_file():   # the shipped zoo keeps no path of the machine that built it
            root = (json.loads((folder / "hparams.json").read_text())["hyper_parameters"].get("data") or {}).get("root")
            assert root is None or root.startswith("<data_dir>/"), (folder.name, root)


def test_make_serve_trains_nothing_and_make_demo_ends_with_the_zoo_command():
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "Makefile").read_text()

    def recipe(target):
        lines = text.split(f"\n{target}:", 1)[1].splitlines()[1:]
        return "\n".join(line for line in lines[: next(i for i, x in enumerate(lines) if not x.startswith("\t"))])
    serve = recipe("serve")
    assert "emomm.serve" in serve and "demo" not in serve and "emomm.train" not in serve
    assert "ckpt_path=" not in serve.replace("$(if $(CKPT),ckpt_path=$(CKPT))", "")   # the zoo's default
    demo = recipe("demo").splitlines()
    assert "emomm.train" in demo[1] and "python -m emomm.predict ckpt_path=zoo:face-fer2013 inputs=[photo.jpg]" in demo[-1]


def test_packaging_keeps_no_path_of_the_building_machine():
    from emomm.zoo.packaging import neutral_data_root
    hp = {"calibration": {"temperature": 0.8, "fitted_on": {"ckpt": "/work/main/outputs/zoo_runs/face-fer2013/seed1/checkpoints/best.ckpt",
                                                            "n": 3}},
          "data": {"root": "/work/shared/data/fer2013"}}
    out = neutral_data_root(hp)
    assert out["calibration"]["fitted_on"] == {"ckpt": "face-fer2013/seed1/checkpoints/best.ckpt", "n": 3}
    assert out["calibration"]["temperature"] == 0.8 and "/work" not in json.dumps(out)


def test_predict_takes_a_bundle(use_zoo, cfg_factory, tmp_path, monkeypatch):
    """``python -m emomm.predict ckpt_path=zoo:face-voice``: a bundle predicts through its
    members (it was refused as "not one model")."""
    import shutil

    from PIL import Image

    from emomm.predict import predict
    from emomm.zoo.cards import write_card
    root = tmp_path / "zoo"
    shutil.copytree(use_zoo, root)
    monkeypatch.setenv(ZOO_DIR_ENV, str(root))
    labels = zoo.card("tiny-face")["labels"]
    (root / "tiny-bundle").mkdir()
    write_card(root / "tiny-bundle", bundle_card("tiny-bundle", labels,
                                                 [{"name": "tiny-face", "modality": "face", "labels": labels}]))
    img = tmp_path / "face.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(img)
    out = tmp_path / "pred.jsonl"
    cfg = cfg_factory(["ckpt_path=zoo:tiny-bundle", f"inputs=[{img}]", "predictor.detector=none", f"out={out}"],
                      config_name="predict")
    assert predict(cfg) == 0
    record = json.loads(out.read_text().splitlines()[0])
    assert not record.get("error") and record["faces"][0]["label"] in labels, record
