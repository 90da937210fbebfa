"""LoRA fine-tuning of a text transformer (issue 41, ``model/text_encoder=minilm_lora``) and the
``text-meld`` zoo entry it ships as: adapters + head only, the frozen base read again at load.
A tiny random BERT saved as a local "pretrained" folder stands in for MiniLM."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict
from safetensors.torch import load_file

import emomm.zoo as zoo
from emomm.inference.predictor import Predictor
from emomm.models.encoders.text_transformer import TextEncoder
from emomm.models.module import EmotionModule
from emomm.train import train
from emomm.utils.safe_load import CheckpointError
from emomm.utils.zoo_files import PACKAGED_ZOO, ZOO_DIR_ENV, read_card
from emomm.zoo.build import package
from emomm.zoo.recipes import RECIPES, Recipe
from tests import test_text

meld_root, vocab_file = test_text.meld_root, test_text.vocab_file  # the tiny MELD and WordPiece fixtures
LORA = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["query", "value"]}
TINY_TEXT = Recipe(name="tiny-text", modality="text", train=("experiment=meld_text_lora",), data_dir="meld",
                   input="English utterances", training_data={"dataset": "tiny MELD", "licence": "none needed"},
                   intended_use="tests", limitations=("tiny",))


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT saved as a local pretrained model folder."""
    from transformers import AutoConfig, AutoModel
    cfg = dict(test_text.TINY_BERT)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_bert")
    AutoModel.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg)).save_pretrained(folder)
    return folder


def lora_cfg(cfg_factory, meld_root, tiny_bert_dir, vocab_file, extra=()):
    """``experiment=meld_text_lora`` on the tiny MELD, its MiniLM swapped for the tiny BERT."""
    cfg = cfg_factory(["experiment=meld_text_lora", f"data.root={meld_root}", "data.batch_size=4",
                       "trainer.max_epochs=1", "debug=limit", *test_text.MELD_FIT, *extra])
    with open_dict(cfg):
        t = cfg.model.encoders.text
        t.model_name_or_path, t.tokenizer, t.max_length = str(tiny_bert_dir), str(vocab_file), 32
        t.lora = dict(LORA)
    return cfg


def test_lora_freezes_the_base_and_trains_only_adapters(tiny_bert_dir, vocab_file):
    enc = TextEncoder(model_name_or_path=str(tiny_bert_dir), tokenizer=str(vocab_file), max_length=32, lora=LORA)
    trainable = {n for n, p in enc.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable) and enc.finetune == "lora"
    assert {n.split(".")[-4] for n in trainable} == {"query", "value"}  # ...query.lora_A.default.weight
    # lora_B starts at zero: the model starts as the pretrained one
    plain = TextEncoder(model_name_or_path=str(tiny_bert_dir), tokenizer=str(vocab_file), max_length=32).eval()
    x = ["hey ross what is it", {"text": "i am so happy", "context": "what?"}]
    assert torch.allclose(enc.eval()(x), plain(x), atol=1e-6)
    # the frozen base can be read again; the adapters cannot
    keys = enc.pretrained_state_keys()
    assert keys and not any("lora_" in k for k in keys) and keys | {f"model.{n}" for n in
                                                                   (k[len("model."):] for k in trainable)} >= set(enc.state_dict())
    # full fine-tuning with frozen token embeddings: those are left out; all trained: nothing
    frozen_emb = TextEncoder(model_name_or_path=str(tiny_bert_dir), tokenizer=str(vocab_file), freeze_embeddings=True)
    assert frozen_emb.pretrained_state_keys() == {"model.embeddings.word_embeddings.weight"}
    assert TextEncoder(model_name_or_path=str(tiny_bert_dir), tokenizer=str(vocab_file)).pretrained_state_keys() == set()
    # a random model (config) cannot be read again: nothing is left out
    rand = TextEncoder(model_name_or_path=None, config=test_text.TINY_BERT, tokenizer=str(vocab_file), lora=LORA)
    assert rand.pretrained_state_keys() == set()


def test_lora_bad_settings_name_the_option(tiny_bert_dir, vocab_file):
    with pytest.raises(ValueError, match="unknown key.*rank"):
        TextEncoder(model_name_or_path=str(tiny_bert_dir), tokenizer=str(vocab_file), lora={"rank": 8})
    with pytest.raises(ValueError, match="target_modules.*linear layers are named"):
        TextEncoder(model_name_or_path=str(tiny_bert_dir), tokenizer=str(vocab_file),
                    lora={"r": 4, "target_modules": ["q_proj"]})


def test_the_lora_recipe_composes_as_the_full_one_with_adapters_and_text_meld_composes(cfg_factory):
    cfg = cfg_factory(["experiment=meld_text_lora", "seed=42"])
    full = cfg_factory(["experiment=meld_text"], subdir="full")
    assert cfg.model.encoders.text.lora.r == 8 and list(cfg.model.encoders.text.lora.target_modules) == \
        ["query", "key", "value", "dense"]
    assert cfg.model.optimizer.lr > full.model.optimizer.lr
    assert cfg.callbacks.model_checkpoint.monitor is None  # best.ckpt = the last epoch
    for key in ("max_epochs",):
        assert cfg.trainer[key] == full.trainer[key]
    assert cfg.text == full.text and cfg.data.batch_size == full.data.batch_size
    # text-meld is the full fine-tuning (LoRA fell short of it): its frozen token embeddings do not ship
    zoo_cfg = cfg_factory([*RECIPES["text-meld"].train, f"seed={RECIPES['text-meld'].seeds[0]}"], subdir="zoo")
    assert zoo_cfg.model.encoders.text.get("lora") is None and zoo_cfg.model.encoders.text.freeze_embeddings


@pytest.fixture
def lora_ckpt(cfg_factory, meld_root, tiny_bert_dir, vocab_file) -> Path:
    """The best.ckpt of a tiny run of the LoRA recipe."""
    cfg = lora_cfg(cfg_factory, meld_root, tiny_bert_dir, vocab_file)
    train(cfg)
    return Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"


def test_lora_recipe_trains_adapters_only_and_ships_adapters_and_head(lora_ckpt, tiny_bert_dir, tmp_path, monkeypatch):
    from transformers import AutoModel
    ckpt = lora_ckpt
    module = EmotionModule.load_from_checkpoint(ckpt, map_location="cpu").eval()
    state = module.state_dict()
    base = AutoModel.from_pretrained(str(tiny_bert_dir)).state_dict()
    prefix = "net.encoders.text.model."
    # the frozen base is the pretrained one after training, the adapters moved off zero
    for k, v in base.items():
        key = prefix + k.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias") \
            if any(f".{t}." in k for t in ("query", "value")) else prefix + k
        if key in state:
            assert torch.equal(state[key], v), key
    assert any(float(v.abs().max()) > 0 for k, v in state.items() if "lora_B" in k)
    # packaged: only adapters + head in the weights file, the base left out and read again at load
    root = tmp_path / "zoo"
    package(TINY_TEXT, ckpt, root / "tiny-text", {1: {"metrics": {"f1_weighted": 0.3}}}, [1], None, "test")
    shipped = load_file(str(root / "tiny-text" / "weights.safetensors"))
    assert shipped and not any(k.startswith(prefix) and "lora_" not in k for k in shipped)
    assert any("lora_" in k for k in shipped) and any(not k.startswith(prefix) for k in shipped)
    card = read_card(root / "tiny-text")
    assert card["files"]["weights"]["pretrained_tensors_left_out"] == len(module.pretrained_state_keys()) > 0
    monkeypatch.setenv(ZOO_DIR_ENV, str(root))
    loaded = zoo.load("tiny-text")
    x = {"inputs": {"text": ["i am so happy", "that is gross"]}}
    with torch.no_grad():
        got = torch.softmax(loaded.outputs(dict(x))["fused"], -1)
        want = torch.softmax(module.outputs(dict(x))["fused"], -1)
    tol = 1e-3 if card["files"]["weights"]["dtype"] == "float16" else 1e-6
    assert torch.allclose(got, want, atol=tol)
    r = Predictor.from_pretrained("tiny-text").predict_sample(text="I can't believe you did that!")
    assert r.label in card["labels"] and abs(sum(r.probs) - 1) < 1e-4
    # only the frozen base is filled in on load: a missing adapter or head weight stays missing
    head = next(k for k in shipped if not k.startswith(prefix))
    partial = {"state_dict": {k: v for k, v in shipped.items() if k != head}}
    loaded.on_load_checkpoint(partial)
    assert head not in partial["state_dict"] and set(partial["state_dict"]) >= module.pretrained_state_keys()
    # adapters on another base (another version of the pretrained package) are refused, naming it
    assert json.loads((root / "tiny-text" / "hparams.json").read_text())["pretrained_sha256"] == \
        module.pretrained_fingerprint()
    monkeypatch.setattr(EmotionModule, "pretrained_fingerprint", lambda self: "0" * 64)
    with pytest.raises(CheckpointError, match=f"not the one installed \\({tiny_bert_dir}\\)"):
        zoo.load("tiny-text")


@pytest.mark.skipif(not (PACKAGED_ZOO / "text-meld" / "card.yaml").is_file(), reason="text-meld not built here")
def test_shipped_text_meld_loads_offline_and_predicts(monkeypatch, cfg_factory):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(ZOO_DIR_ENV, raising=False)
    card = zoo.card("text-meld")
    cfg_factory(card["recipe"]["command"].split()[3:])  # the card's recipe composes
    assert card["files"]["weights"]["bytes"] < 5e6
    r = Predictor.from_pretrained("text-meld").predict_sample(text="I can't believe you did that!")
    assert r.label in card["labels"] and abs(sum(r.probs) - 1) < 1e-4
