"""Training techniques as callbacks (emomm/callbacks/): how they are switched on and combined,
and checkpoints written while they were constructor options of the module keep loading."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from emomm.callbacks.freeze_encoders import FreezeEncoders
from emomm.callbacks.ogm_ge import OGMGE


def test_techniques_combine_as_a_list(cfg_factory):
    cfg = cfg_factory(["callbacks=[ema,freeze_encoders,ogm_ge]", "callbacks.freeze_encoders.epochs={face: 2}",
                       "callbacks.ogm_ge.alpha=0.3"])
    cbs = cfg.callbacks
    assert cbs.ema._target_ == "emomm.callbacks.ema.EMA"
    assert cbs.freeze_encoders._target_ == "emomm.callbacks.freeze_encoders.FreezeEncoders"
    assert cbs.freeze_encoders.epochs == {"face": 2} and cbs.ogm_ge.alpha == 0.3
    assert {"model_checkpoint", "last_checkpoint", "resume_state", "validate_last_epoch"} <= set(cbs)
    assert "freeze_epochs" not in cfg.model and "balance" not in cfg.model


@pytest.mark.parametrize("experiment, own", [("fusion_paired", {"freeze_encoders"}),
                                             ("fer2013_fast", {"lookahead", "small_crops"})])
def test_a_callbacks_choice_adds_to_the_recipes_own_techniques(cfg_factory, experiment, own):
    """A recipe's techniques are whole (with _target_) in the recipe, so ``callbacks=ema``
    on the command line adds EMA instead of silently dropping them."""
    cfg = cfg_factory([f"experiment={experiment}", "callbacks=ema"])
    assert own | {"ema", "model_checkpoint"} <= set(cfg.callbacks)
    assert all(cfg.callbacks[name]._target_.startswith("emomm.callbacks.") for name in own)


def test_model_options_that_became_callbacks_name_their_callback(cfg_factory):
    from emomm.runs.training import model_config
    cfg = cfg_factory(["+model.freeze_epochs=2"])
    with pytest.raises(ValueError, match=r"model.freeze_epochs is a callback now: use callbacks=freeze_encoders"):
        model_config(cfg)
    cfg = cfg_factory(["+model.balance={method: ogm_ge}"], subdir="b")
    with pytest.raises(ValueError, match=r"model.balance is a callback now: use callbacks=ogm_ge"):
        model_config(cfg)


def test_freezing_a_modality_the_model_lacks_is_named():
    module = nn.Module()
    module.net = nn.Module()
    module.net.encoders = nn.ModuleDict({"face": nn.Linear(2, 2)})
    with pytest.raises(ValueError, match=r"callbacks.freeze_encoders.epochs names \['voice'\]"):
        FreezeEncoders({"voice": 1}).setup(None, module, "fit")


class TwoEncoders(nn.Module):
    """What OGMGE reads of the LightningModule: ``net.encoders``, ``multimodal``,
    ``last_train_step``, ``log_dict``."""

    def __init__(self, step) -> None:
        super().__init__()
        self.net = nn.Module()
        self.net.encoders = nn.ModuleDict({"face": nn.Linear(2, 2), "voice": nn.Linear(2, 2)})
        for enc in self.net.encoders.values():
            enc.weight.grad = torch.ones(2, 2)
        self.multimodal, self.last_train_step, self.logged = True, step, {}

    def log_dict(self, values, **kwargs):
        self.logged |= values


@pytest.mark.parametrize("epoch, active", [(0, True), (1, False)])
def test_ogm_ge_slows_the_dominant_modality_while_active(epoch, active):
    from emomm.models.objective import TrainStep
    labels = torch.tensor([0, 1])
    confident, unsure = torch.tensor([[4.0, -4.0], [-4.0, 4.0]]), torch.zeros(2, 2)
    step = TrainStep({"face": confident, "voice": unsure}, {"face": torch.ones(2, dtype=torch.bool),
                                                            "voice": torch.ones(2, dtype=torch.bool)}, labels, None)
    module = TwoEncoders(step)
    trainer = type("T", (), {"current_epoch": epoch})()
    OGMGE(alpha=1.0, noise=False, end_epoch=1).on_before_optimizer_step(trainer, module, None)
    face, voice = (module.net.encoders[m].weight.grad for m in ("face", "voice"))
    assert torch.equal(voice, torch.ones(2, 2))
    if active:
        p = torch.softmax(confident, -1)[0, 0]
        coeff = 1.0 - torch.tanh(torch.tensor(float(p / 0.5) - 1.0))
        assert torch.allclose(face, torch.full((2, 2), float(coeff))) and float(coeff) < 1.0
        assert module.logged == {"train/ogm_face": pytest.approx(float(coeff)), "train/ogm_voice": 1.0}
    else:
        assert torch.equal(face, torch.ones(2, 2)) and not module.logged


def test_a_checkpoint_from_before_the_split_loads_and_predicts_the_same(tmp_path):
    """Written by the version whose encoder file was ``encoders/face.py`` and whose module took
    ``freeze_epochs`` and ``balance``: the old name is upgraded (emomm.utils.moved), the
    training-only options are dropped, and the predictions are those of the same weights."""
    from emomm.models.module import EmotionModule
    from tests.serve_helpers import tiny_face_checkpoint
    path = tiny_face_checkpoint(tmp_path)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    old = copy.deepcopy(ckpt)
    hp = old["hyper_parameters"]
    hp["encoders"]["face"]["_target_"] = "emomm.models.encoders.face.FaceEncoder"
    hp["freeze_epochs"] = {"face": 2}
    hp["balance"] = {"method": "ogm_ge", "alpha": 0.5}
    old_path = tmp_path / "old.ckpt"
    torch.save(old, old_path)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32))
    want_model = EmotionModule.load_from_checkpoint(path, map_location="cpu").eval()
    got_model = EmotionModule.load_from_checkpoint(old_path, map_location="cpu").eval()
    with torch.no_grad():
        assert torch.equal(want_model({"inputs": {"face": x}}), got_model({"inputs": {"face": x}}))
    assert "freeze_epochs" not in got_model.hparams and "balance" not in got_model.hparams
